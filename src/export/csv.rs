//! CSV: UTF-8 with a byte-order mark (so Excel reads Cyrillic), RFC 4180 quoting, `;` or `,`.

use super::{Cell, Layout};
use crate::domain::Lang;
use crate::store::export::{Names, Row};

/// Turns batches of calls into CSV bytes, the first batch preceded by the mark and the header.
pub struct CsvWriter {
    delimiter: u8,
    decimal_comma: bool,
}

impl CsvWriter {
    pub fn new(layout: &Layout, delimiter: u8) -> Self {
        CsvWriter {
            delimiter,
            // With `;` (the Russian Excel's list separator) Excel also expects a decimal comma.
            decimal_comma: delimiter == b';' && layout.lang == Lang::Ru,
        }
    }

    fn writer(&self, buf: Vec<u8>) -> csv::Writer<Vec<u8>> {
        csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .terminator(csv::Terminator::CRLF)
            .from_writer(buf)
    }

    /// The byte-order mark and the header row.
    pub fn head(&self, layout: &Layout) -> Result<Vec<u8>, csv::Error> {
        let mut out = self.writer(b"\xEF\xBB\xBF".to_vec());
        out.write_record(layout.columns.iter().map(|c| layout.header(*c, true)))?;
        out.into_inner().map_err(|e| e.into_error().into())
    }

    /// One batch of rows.
    pub fn rows(&self, layout: &Layout, names: &Names, calls: &[Row]) -> Result<Vec<u8>, csv::Error> {
        let mut out = self.writer(Vec::with_capacity(calls.len() * 160));
        for call in calls {
            let row: Vec<String> = layout.row(call, names).into_iter().map(|c| self.text(c)).collect();
            out.write_record(&row)?;
        }
        out.into_inner().map_err(|e| e.into_error().into())
    }

    fn text(&self, cell: Cell) -> String {
        match cell {
            Cell::Empty => String::new(),
            Cell::Text(s) => s,
            Cell::Time(t) => local_time(t),
            Cell::Seconds(n) | Cell::Count(n) => n.to_string(),
            Cell::Money(v) => {
                // Up to four decimals, at least two: 1.25, 0.0125.
                let mut s = format!("{v:.4}");
                while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 3 {
                    s.pop();
                }
                if self.decimal_comma {
                    s.replace('.', ",")
                } else {
                    s
                }
            }
            Cell::Result { label, .. } => label.to_string(),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS`, written directly: a million of these through `strftime` items cost a
/// noticeable share of an export.
fn local_time(t: chrono::NaiveDateTime) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
