//! Exports of the call history: the viewer's columns, in their language and time zone, written
//! as CSV or XLSX while the calls are read, never held whole in memory.

pub mod csv;
pub mod file;
pub mod files;
pub mod jobs;
pub mod walk;
pub mod xlsx;

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;

use crate::domain::{CallFilter, CallKind, Column, Direction, Lang};
use crate::store::export::{Names, Row};

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

text_enum!(Format { Csv => "csv", Xlsx => "xlsx" });

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// The CSV delimiters people may choose.
pub fn parse_delimiter(text: &str) -> Option<u8> {
    match text {
        ";" => Some(b';'),
        "," => Some(b','),
        _ => None,
    }
}

/// What one export writes: which columns, in which words and zone.
#[derive(Debug, Clone)]
pub struct Layout {
    pub columns: Vec<Column>,
    pub lang: Lang,
    pub tz: Tz,
    /// Where recordings are fetched from (`public_url`), for the Recording column.
    pub base_url: String,
}

/// One cell, typed so each format writes it natively (durations as durations in XLSX and as
/// seconds in CSV, times as dates, results with their colour).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Empty,
    /// Borrowed from the row or the names where it can be: no copy per cell.
    Text(Cow<'a, str>),
    Time(NaiveDateTime),
    Seconds(u32),
    Count(u32),
    /// Ten-thousandths of the account's currency.
    Money(i64),
    /// The link to a call's recording (written without building a string per row).
    Recording(&'a str, i64),
    Result {
        label: &'static str,
        success: bool,
    },
}

impl Layout {
    /// The header of a column; times and durations say their zone and unit.
    pub fn header(&self, column: Column, seconds_unit: bool) -> String {
        let label = column.label(self.lang);
        match column {
            Column::Time => format!("{label} ({})", self.tz.name()),
            Column::RingDuration | Column::TalkDuration if seconds_unit => match self.lang {
                Lang::Ru => format!("{label}, с"),
                Lang::En => format!("{label}, s"),
            },
            _ => label.to_string(),
        }
    }

    /// The row of one call, column by column.
    pub fn row<'a>(&'a self, call: &'a Row, names: &'a Names) -> impl Iterator<Item = Cell<'a>> + 'a {
        self.columns.iter().map(move |c| self.cell(*c, call, names))
    }

    fn local(&self, ms: i64) -> Option<NaiveDateTime> {
        DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&self.tz).naive_local())
    }

    fn local_text(&self, ms: i64) -> String {
        let mut text = String::with_capacity(19);
        if let Some(t) = self.local(ms) {
            write_datetime(&mut text, t);
        }
        text
    }

    /// The file name and the "About" lines of an export of this search, made `now`.
    pub fn describe(
        &self,
        filter: &CallFilter,
        fingerprint: &str,
        format: Format,
        now: DateTime<Utc>,
    ) -> (String, Vec<(String, String)>) {
        let from = filter.from.and_then(|ms| self.local(ms));
        let to = filter.to.and_then(|ms| self.local(ms));
        let at = now.with_timezone(&self.tz).naive_local();
        (
            file_name(from, to, at, format),
            file::about(self, fingerprint, from, to, at),
        )
    }

    fn cell<'a>(&'a self, column: Column, call: &'a Row, names: &'a Names) -> Cell<'a> {
        fn text(s: &str) -> Cell<'_> {
            if s.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(Cow::Borrowed(s))
            }
        }
        fn owned<'a>(s: String) -> Cell<'a> {
            if s.is_empty() {
                Cell::Empty
            } else {
                Cell::Text(Cow::Owned(s))
            }
        }
        let name = |map: &'a std::collections::HashMap<i64, String>, id: Option<i64>| {
            id.and_then(|id| map.get(&id)).map_or(Cell::Empty, |n| text(n))
        };
        // Lists in the order the search gives them: by name.
        let list = |map: &'a std::collections::HashMap<i64, String>, ids: &[i64]| match ids {
            [] => Cell::Empty,
            [one] => name(map, Some(*one)),
            _ => {
                let mut names: Vec<&str> = ids.iter().filter_map(|id| map.get(id)).map(String::as_str).collect();
                names.sort_unstable();
                owned(names.join(", "))
            }
        };
        let ru = self.lang == Lang::Ru;
        match column {
            Column::Time => self.local(call.started_ms).map_or(Cell::Empty, Cell::Time),
            Column::Type => text(match (call.kind.direction(), ru) {
                (Direction::Incoming, true) => "Входящий",
                (Direction::Incoming, false) => "Incoming",
                (Direction::Outgoing, true) => "Исходящий",
                (Direction::Outgoing, false) => "Outgoing",
            }),
            Column::From => text(&call.from),
            Column::To => text(&call.to),
            Column::Operator => match call.operator.and_then(|id| names.operators.get(&id)) {
                Some(n) if call.kind == CallKind::SoftphoneOutgoing => {
                    owned(format!("{n} ({})", if ru { "софтфон" } else { "softphone" }))
                }
                Some(n) => text(n),
                None => Cell::Empty,
            },
            Column::Queue => name(&names.queues, call.queue),
            Column::RingDuration => call.ring_seconds.map_or(Cell::Empty, Cell::Seconds),
            Column::TalkDuration => Cell::Seconds(call.talk_seconds),
            Column::Recording if call.has_recording => Cell::Recording(&self.base_url, call.id),
            Column::Recording => Cell::Empty,
            // Absent in the restricted view: never offered then, and empty even if asked for.
            Column::Price => call.price_e4.map_or(Cell::Empty, Cell::Money),
            Column::Scenario => name(&names.scenarios, call.scenario),
            Column::Campaign => name(&names.campaigns, call.campaign),
            Column::Result => call.result.map_or(Cell::Empty, |r| Cell::Result {
                label: r.label(self.lang),
                success: r.is_success(),
            }),
            Column::CompletionCode => match (
                call.completion_code.and_then(|id| names.completion_codes.get(&id)),
                call.callback_ms,
            ) {
                // The callback's date-time, which the page shows in a tooltip.
                (Some(n), Some(at)) => owned(format!("{n} ({})", self.local_text(at))),
                (Some(n), None) => text(n),
                (None, _) => Cell::Empty,
            },
            Column::Attempts if call.kind == CallKind::OperatorCampaign => {
                call.attempts.map_or(Cell::Empty, Cell::Count)
            }
            Column::Attempts => Cell::Empty,
            Column::Tags => list(&names.tags, &call.tags),
            Column::Topics => list(&names.topics, &call.topics),
            Column::Notes if call.notes.is_empty() => Cell::Empty,
            Column::Notes => owned(
                call.notes
                    .iter()
                    .map(|n| {
                        format!(
                            "{} {}: {}",
                            self.local_text(n.at_ms),
                            n.author.as_deref().unwrap_or("—"),
                            n.text
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS`, written directly: a million of these through `strftime` items cost a
/// noticeable share of an export.
pub fn write_datetime(out: &mut String, t: NaiveDateTime) {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

/// A file name that says what and when: `calls_2026-11-01_2026-11-25_exported_2026-11-26_0930.csv`.
pub fn file_name(
    from: Option<NaiveDateTime>,
    to_exclusive: Option<NaiveDateTime>,
    now: NaiveDateTime,
    format: Format,
) -> String {
    let day = |t: NaiveDateTime| t.format("%Y-%m-%d").to_string();
    let range = match (from, to_exclusive) {
        (Some(a), Some(b)) => {
            // The range's last day, as people say it (the API's end is exclusive).
            let last = b - chrono::Duration::milliseconds(1);
            if day(a) == day(last) {
                day(a)
            } else {
                format!("{}_{}", day(a), day(last))
            }
        }
        (Some(a), None) => format!("from_{}", day(a)),
        (None, Some(b)) => format!("until_{}", day(b - chrono::Duration::milliseconds(1))),
        (None, None) => "all".to_string(),
    };
    format!(
        "calls_{range}_exported_{}.{}",
        now.format("%Y-%m-%d_%H%M"),
        format.code()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn file_names_say_the_range_and_when() {
        let now = at(26, 9);
        assert_eq!(
            file_name(Some(at(1, 0)), Some(at(26, 0)), now, Format::Csv),
            "calls_2026-11-01_2026-11-25_exported_2026-11-26_0900.csv"
        );
        assert_eq!(
            file_name(Some(at(25, 0)), Some(at(26, 0)), now, Format::Xlsx),
            "calls_2026-11-25_exported_2026-11-26_0900.xlsx"
        );
        assert_eq!(
            file_name(None, None, now, Format::Csv),
            "calls_all_exported_2026-11-26_0900.csv"
        );
    }
}
