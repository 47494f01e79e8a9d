//! The call-history search filter as a value, and its parsing from query parameters.
//!
//! Parsing is pure: the current instant and the viewer's time zone are passed in, so presets and
//! calendar dates resolve the same way in tests as in production. The filter is compiled to SQL
//! in exactly one place (`store::search`).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::call::{AttemptResult, CallKind, Direction, ScenarioKind};
use super::FieldError;

/// Default and bounds of the page size.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;
/// Talk-duration filters are bounded by one day.
pub const MAX_TALK_SECONDS: u32 = 86_400;
/// The shortest number fragment a search accepts.
pub const MIN_NUMBER_CHARS: usize = 3;

/// Which calls to show. Every list is OR within itself; all present parts are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Inclusive lower bound of `started_at`, epoch ms.
    pub from: Option<i64>,
    /// Exclusive upper bound of `started_at`, epoch ms.
    pub to: Option<i64>,
    /// `None`: any kind. `Some(empty)`: the direction and kind filters exclude each other.
    pub kinds: Option<Vec<CallKind>>,
    /// A normalised fragment of the caller's or callee's number.
    pub number: Option<String>,
    pub talk_min: Option<u32>,
    pub talk_max: Option<u32>,
    pub groups: Vec<i64>,
    pub operators: Vec<i64>,
    pub queues: Vec<i64>,
    pub campaigns: Vec<i64>,
    pub scenarios: Vec<i64>,
    pub completion_codes: Vec<i64>,
    pub tags: Vec<i64>,
    pub topics: Vec<i64>,
    pub scenario_kinds: Vec<ScenarioKind>,
    pub results: Vec<AttemptResult>,
}

/// Directory references of a filter, for checking that each id exists in the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryRef {
    Group,
    Operator,
    Queue,
    Campaign,
    Scenario,
    CompletionCode,
    Tag,
    Topic,
}

impl DirectoryRef {
    /// The query parameter that carries ids of this kind.
    pub fn param(self) -> &'static str {
        match self {
            DirectoryRef::Group => "group",
            DirectoryRef::Operator => "operator",
            DirectoryRef::Queue => "queue",
            DirectoryRef::Campaign => "campaign",
            DirectoryRef::Scenario => "scenario",
            DirectoryRef::CompletionCode => "completion_code",
            DirectoryRef::Tag => "tag",
            DirectoryRef::Topic => "topic",
        }
    }
}

impl CallFilter {
    /// Every id list of the filter with the directory it refers to.
    pub fn directory_refs(&self) -> [(DirectoryRef, &[i64]); 8] {
        [
            (DirectoryRef::Group, &self.groups),
            (DirectoryRef::Operator, &self.operators),
            (DirectoryRef::Queue, &self.queues),
            (DirectoryRef::Campaign, &self.campaigns),
            (DirectoryRef::Scenario, &self.scenarios),
            (DirectoryRef::CompletionCode, &self.completion_codes),
            (DirectoryRef::Tag, &self.tags),
            (DirectoryRef::Topic, &self.topics),
        ]
    }
}

/// A date-range preset, resolved in the viewer's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Today,
    Yesterday,
    Last7Days,
    Last30Days,
    ThisWeek,
    ThisMonth,
    LastMonth,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "today" => Preset::Today,
            "yesterday" => Preset::Yesterday,
            "last_7_days" => Preset::Last7Days,
            "last_30_days" => Preset::Last30Days,
            "this_week" => Preset::ThisWeek,
            "this_month" => Preset::ThisMonth,
            "last_month" => Preset::LastMonth,
            _ => return None,
        })
    }

    /// The calendar days `[first, end)` this preset covers, given today's date.
    pub fn days(self, today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let tomorrow = today + Days::new(1);
        let month_start = today.with_day(1).unwrap_or(today);
        match self {
            Preset::Today => (today, tomorrow),
            Preset::Yesterday => (today - Days::new(1), today),
            Preset::Last7Days => (today - Days::new(6), tomorrow),
            Preset::Last30Days => (today - Days::new(29), tomorrow),
            Preset::ThisWeek => {
                let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
                (monday, monday + Days::new(7))
            }
            Preset::ThisMonth => (month_start, month_start + Months::new(1)),
            Preset::LastMonth => (month_start - Months::new(1), month_start),
        }
    }
}

/// A parsed search request: the filter plus paging and presentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub filter: CallFilter,
    pub limit: u32,
    pub cursor: Option<String>,
    /// The time zone the request asked for explicitly (output times are then in it).
    pub tz: Option<Tz>,
    /// A canonical text of the filter parameters; a cursor is only valid for the same text.
    pub fingerprint: String,
}

/// The parameters that are not part of the filter and so not of the cursor's fingerprint.
const PAGING_PARAMS: [&str; 2] = ["limit", "cursor"];

/// Parses query parameters (repeated keys allowed) into a search request.
pub fn parse_search(
    pairs: &[(String, String)],
    now: DateTime<Utc>,
    default_tz: Tz,
) -> Result<SearchRequest, FieldError> {
    let mut f = CallFilter::default();
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    let mut tz = None;
    let mut preset = None;
    let (mut from_raw, mut to_raw) = (None, None);
    let mut direction: Option<Vec<Direction>> = None;
    let mut kinds: Option<Vec<CallKind>> = None;

    // The time zone decides how dates are read, so it is read first.
    for (k, v) in pairs.iter().filter(|(k, _)| k == "tz") {
        tz = Some(
            v.parse::<Tz>()
                .map_err(|_| FieldError::new(k, format!("unknown time zone {v:?}")))?,
        );
    }
    let zone = tz.unwrap_or(default_tz);

    for (key, value) in pairs {
        let k = key.as_str();
        let v = value.trim();
        match k {
            "tz" => {}
            "from" => from_raw = Some(single(k, &from_raw, v)?),
            "to" => to_raw = Some(single(k, &to_raw, v)?),
            "preset" => {
                let p = Preset::parse(v).ok_or_else(|| unknown(k, v))?;
                preset = Some(p);
            }
            "direction" => direction
                .get_or_insert_with(Vec::new)
                .push(Direction::parse(v).ok_or_else(|| unknown(k, v))?),
            "kind" => kinds
                .get_or_insert_with(Vec::new)
                .push(CallKind::parse(v).ok_or_else(|| unknown(k, v))?),
            "number" => f.number = Some(parse_number(k, v)?),
            "talk_min" => f.talk_min = Some(parse_talk(k, v)?),
            "talk_max" => f.talk_max = Some(parse_talk(k, v)?),
            "group" => f.groups.push(parse_id(k, v)?),
            "operator" => f.operators.push(parse_id(k, v)?),
            "queue" => f.queues.push(parse_id(k, v)?),
            "campaign" => f.campaigns.push(parse_id(k, v)?),
            "scenario" => f.scenarios.push(parse_id(k, v)?),
            "completion_code" => f.completion_codes.push(parse_id(k, v)?),
            "tag" => f.tags.push(parse_id(k, v)?),
            "topic" => f.topics.push(parse_id(k, v)?),
            "scenario_kind" => f
                .scenario_kinds
                .push(ScenarioKind::parse(v).ok_or_else(|| unknown(k, v))?),
            "result" => f.results.push(AttemptResult::parse(v).ok_or_else(|| unknown(k, v))?),
            "limit" => {
                limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| FieldError::new(k, format!("limit must be a whole number from 1 to {MAX_LIMIT}")))?
            }
            "cursor" => cursor = Some(v.to_string()),
            _ => return Err(FieldError::new(k, format!("unknown search parameter {k:?}"))),
        }
    }

    if let (Some(min), Some(max)) = (f.talk_min, f.talk_max) {
        if min > max {
            return Err(FieldError::new("talk_min", "talk_min is greater than talk_max"));
        }
    }

    if let Some(p) = preset {
        if from_raw.is_some() || to_raw.is_some() {
            return Err(FieldError::new("preset", "give either preset or from/to, not both"));
        }
        let (first, end) = p.days(now.with_timezone(&zone).date_naive());
        f.from = Some(local_midnight(zone, first));
        f.to = Some(local_midnight(zone, end));
    } else {
        f.from = from_raw.map(|v| parse_instant("from", &v, zone)).transpose()?;
        f.to = to_raw.map(|v| parse_instant("to", &v, zone)).transpose()?;
        if let (Some(a), Some(b)) = (f.from, f.to) {
            if b <= a {
                return Err(FieldError::new("to", "to must be after from"));
            }
        }
    }

    f.kinds = match (direction, kinds) {
        (None, None) => None,
        (Some(d), None) => Some(dedup(d.iter().flat_map(|d| d.kinds().iter().copied()).collect())),
        (None, Some(k)) => Some(dedup(k)),
        (Some(d), Some(k)) => Some(dedup(k.into_iter().filter(|k| d.contains(&k.direction())).collect())),
    };
    for list in [
        &mut f.groups,
        &mut f.operators,
        &mut f.queues,
        &mut f.campaigns,
        &mut f.scenarios,
        &mut f.completion_codes,
        &mut f.tags,
        &mut f.topics,
    ] {
        list.sort_unstable();
        list.dedup();
    }
    f.results = dedup(std::mem::take(&mut f.results));
    f.scenario_kinds = dedup(std::mem::take(&mut f.scenario_kinds));

    Ok(SearchRequest {
        filter: f,
        limit,
        cursor,
        tz,
        fingerprint: fingerprint(pairs),
    })
}

/// The filter parameters in a canonical order, so the same search always gives the same text.
fn fingerprint(pairs: &[(String, String)]) -> String {
    let mut kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(k, _)| !PAGING_PARAMS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.trim()))
        .collect();
    kept.sort_unstable();
    kept.dedup();
    kept.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn single(field: &str, seen: &Option<String>, v: &str) -> Result<String, FieldError> {
    match seen {
        Some(_) => Err(FieldError::new(field, format!("{field} may be given once"))),
        None => Ok(v.to_string()),
    }
}

fn unknown(field: &str, value: &str) -> FieldError {
    FieldError::new(field, format!("unknown {field} value {value:?}"))
}

fn parse_id(field: &str, v: &str) -> Result<i64, FieldError> {
    v.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| FieldError::new(field, format!("{field} must be an id from the directory, got {v:?}")))
}

fn parse_talk(field: &str, v: &str) -> Result<u32, FieldError> {
    v.parse::<u32>().ok().filter(|s| *s <= MAX_TALK_SECONDS).ok_or_else(|| {
        FieldError::new(
            field,
            format!("{field} must be whole seconds from 0 to {MAX_TALK_SECONDS}"),
        )
    })
}

/// Normalises a number fragment: separators people type are dropped; what is left must be
/// digits (and `+`, `*`, `#`), at least three of them.
pub fn parse_number(field: &str, v: &str) -> Result<String, FieldError> {
    let cleaned: String = v
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    if let Some(bad) = cleaned
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '+' | '*' | '#')))
    {
        return Err(FieldError::new(
            field,
            format!("number may hold only digits, + * #; found {bad:?}"),
        ));
    }
    let n = cleaned.chars().count();
    if n < MIN_NUMBER_CHARS {
        return Err(FieldError::new(
            field,
            format!("number needs at least {MIN_NUMBER_CHARS} characters"),
        ));
    }
    if n > 32 {
        return Err(FieldError::new(field, "number is longer than 32 characters"));
    }
    Ok(cleaned)
}

/// Reads an RFC 3339 instant, or a `YYYY-MM-DD` date meaning local midnight in `zone`.
pub fn parse_instant(field: &str, v: &str, zone: Tz) -> Result<i64, FieldError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(local_midnight(zone, d));
    }
    Err(FieldError::new(
        field,
        format!("{field} must be an RFC 3339 instant or a YYYY-MM-DD date, got {v:?}"),
    ))
}

/// The first instant of `day` in `zone`, in epoch ms. Where a DST change skips midnight, the
/// day starts at the first instant that exists.
pub fn local_midnight(zone: Tz, day: NaiveDate) -> i64 {
    let mut t = day.and_time(NaiveTime::MIN);
    for _ in 0..4 {
        if let Some(dt) = zone.from_local_datetime(&t).earliest() {
            return dt.timestamp_millis();
        }
        t += chrono::Duration::minutes(30);
    }
    day.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn now() -> DateTime<Utc> {
        // Wednesday 2026-11-25 21:30 UTC = Thursday 00:30 in Moscow.
        Utc.with_ymd_and_hms(2026, 11, 25, 21, 30, 0).unwrap()
    }

    fn parse(q: &[(&str, &str)]) -> Result<SearchRequest, FieldError> {
        parse_search(&pairs(q), now(), chrono_tz::Europe::Moscow)
    }

    fn ms(y: i32, m: u32, d: u32, h: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap().timestamp_millis()
    }

    #[test]
    fn presets_resolve_in_the_viewers_zone() {
        let today = parse(&[("preset", "today")]).unwrap().filter;
        assert_eq!(
            (today.from, today.to),
            (Some(ms(2026, 11, 25, 21)), Some(ms(2026, 11, 26, 21)))
        );
        let utc = parse(&[("preset", "today"), ("tz", "UTC")]).unwrap().filter;
        assert_eq!(
            (utc.from, utc.to),
            (Some(ms(2026, 11, 25, 0)), Some(ms(2026, 11, 26, 0)))
        );
        let week = parse(&[("preset", "this_week")]).unwrap().filter;
        // Thursday the 26th in Moscow: the week began Monday the 23rd.
        assert_eq!(week.from, Some(ms(2026, 11, 22, 21)));
        assert_eq!(week.to, Some(ms(2026, 11, 29, 21)));
        let last_month = parse(&[("preset", "last_month")]).unwrap().filter;
        assert_eq!(
            (last_month.from, last_month.to),
            (Some(ms(2026, 9, 30, 21)), Some(ms(2026, 10, 31, 21)))
        );
        let l7 = parse(&[("preset", "last_7_days")]).unwrap().filter;
        assert_eq!(l7.from, Some(ms(2026, 11, 19, 21)));
        let y = parse(&[("preset", "yesterday")]).unwrap().filter;
        assert_eq!((y.from, y.to), (Some(ms(2026, 11, 24, 21)), Some(ms(2026, 11, 25, 21))));
    }

    #[test]
    fn dates_and_instants() {
        let f = parse(&[("from", "2026-11-01"), ("to", "2026-11-02T00:00:00Z")])
            .unwrap()
            .filter;
        assert_eq!(f.from, Some(ms(2026, 10, 31, 21)));
        assert_eq!(f.to, Some(ms(2026, 11, 2, 0)));
        assert_eq!(parse(&[("from", "yesterday-ish")]).unwrap_err().field, "from");
        assert_eq!(
            parse(&[("from", "2026-11-02"), ("to", "2026-11-01")])
                .unwrap_err()
                .field,
            "to"
        );
        assert_eq!(
            parse(&[("preset", "today"), ("from", "2026-11-01")]).unwrap_err().field,
            "preset"
        );
    }

    #[test]
    fn direction_and_kind_intersect() {
        let f = parse(&[("direction", "outgoing")]).unwrap().filter;
        assert_eq!(f.kinds.map(|k| k.len()), Some(3));
        let f = parse(&[("direction", "incoming"), ("kind", "auto_campaign")])
            .unwrap()
            .filter;
        assert_eq!(f.kinds, Some(vec![]));
        assert_eq!(parse(&[("kind", "outbound")]).unwrap_err().field, "kind");
    }

    #[test]
    fn bad_values_name_their_field() {
        for (k, v) in [
            ("number", "12"),
            ("number", "12a45"),
            ("talk_min", "-1"),
            ("talk_max", "86401"),
            ("operator", "abc"),
            ("operator", "0"),
            ("result", "Answered"),
            ("limit", "0"),
            ("limit", "501"),
            ("tz", "Mars/Olympus"),
            ("scenario_kind", "robot"),
            ("colour", "red"),
        ] {
            assert_eq!(parse(&[(k, v)]).unwrap_err().field, k, "{k}={v}");
        }
        assert_eq!(
            parse(&[("talk_min", "60"), ("talk_max", "10")]).unwrap_err().field,
            "talk_min"
        );
    }

    #[test]
    fn numbers_are_normalised_and_fingerprints_ignore_paging_and_order() {
        assert_eq!(
            parse(&[("number", "+7 (916) 12")]).unwrap().filter.number.as_deref(),
            Some("+791612")
        );
        let a = parse(&[("operator", "2"), ("operator", "1"), ("limit", "10")]).unwrap();
        let b = parse(&[("operator", "1"), ("operator", "2"), ("cursor", "x")]).unwrap();
        assert_eq!(a.filter.operators, vec![1, 2]);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, parse(&[("operator", "1")]).unwrap().fingerprint);
    }
}
