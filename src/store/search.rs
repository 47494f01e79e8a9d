//! Finding calls: the one place where a `CallFilter` becomes SQL, keyset paging with signed
//! cursors, exact counts, and the call as the API returns it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;

use super::counts::{self, Bucket, DAY_MS, HOUR_MS};
use super::{dialect, StoreError};
use crate::domain::record::{FlowStep, Money};
use crate::domain::{
    AttemptResult, CallFilter, CallKind, CallScope, Direction, FieldError, ScenarioKind, SearchRequest,
};

/// A reference to a directory entity, as shown in a call.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Ref {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OperatorRef {
    pub id: String,
    pub login: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScenarioView {
    pub id: String,
    pub name: String,
    pub kind: Option<ScenarioKind>,
    /// Absent in the restricted view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompletionCodeView {
    pub id: String,
    pub name: String,
    pub callback_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    pub author: Option<String>,
    pub at: String,
    pub text: String,
}

/// A call as returned by the list, the detail and live events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallView {
    pub id: String,
    pub external_id: String,
    pub started_at: String,
    pub direction: Direction,
    pub kind: CallKind,
    pub from: String,
    pub to: String,
    pub operator: Option<OperatorRef>,
    pub group: Option<Ref>,
    pub queue: Option<Ref>,
    pub ring_seconds: Option<u32>,
    pub talk_seconds: u32,
    /// Absent in the restricted view.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub price: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
    pub scenario: Option<ScenarioView>,
    pub campaign: Option<Ref>,
    pub result: Option<AttemptResult>,
    pub success: bool,
    pub completion_code: Option<CompletionCodeView>,
    pub attempts: Option<u32>,
    pub tags: Vec<Ref>,
    pub topics: Vec<Ref>,
    pub notes: Vec<NoteView>,
    pub has_recording: bool,
}

/// The instants and the path of one call, for its details.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallDetails {
    pub dial_started_at: Option<String>,
    pub answered_at: Option<String>,
    pub scenario_started_at: Option<String>,
    pub amd_detected_at: Option<String>,
    pub ended_at: Option<String>,
    pub flow: Vec<FlowStepView>,
    pub recording_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowStepView {
    pub at: String,
    pub block: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallDetailView {
    #[serde(flatten)]
    pub call: CallView,
    pub details: CallDetails,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<CallView>,
    pub next_cursor: Option<String>,
    pub total: u64,
}

/// SQL text with its arguments, built up clause by clause.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Value>,
}

impl Sql {
    fn and(&mut self, clause: &str, args: impl IntoIterator<Item = Value>) {
        self.text
            .push_str(if self.text.is_empty() { " WHERE " } else { " AND " });
        self.text.push_str(clause);
        self.args.extend(args);
    }

    fn and_in(&mut self, column: &str, values: Vec<Value>) {
        if values.is_empty() {
            return;
        }
        let test = in_list(column, values.len());
        self.and(&test, values);
    }
}

/// `column IN (?, …)`, or `column = ?` for one value: SQLite costs a one-element IN list with a
/// bound parameter far worse than an equality (measured: it then walked the time index for 200 ms
/// instead of seeking the campaign index for 4 ms).
pub fn in_list(column: &str, n: usize) -> String {
    if n == 1 {
        format!("{column} = ?")
    } else {
        format!("{column} IN ({})", vec!["?"; n].join(", "))
    }
}

fn ints(ids: &[i64]) -> Vec<Value> {
    ids.iter().map(|i| Value::Integer(*i)).collect()
}

fn texts<'a>(codes: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    codes.into_iter().map(|c| Value::Text(c.to_string())).collect()
}

/// The WHERE clause for the scope and the filter: the only place a filter becomes SQL.
fn where_clause(scope: &CallScope, f: &CallFilter) -> Sql {
    let mut sql = Sql::default();
    sql.and("c.account_id = ?", [Value::Integer(scope.account.0)]);
    if let Some(from) = f.from {
        sql.and("c.started_at >= ?", [Value::Integer(from)]);
    }
    if let Some(to) = f.to {
        sql.and("c.started_at < ?", [Value::Integer(to)]);
    }
    match &f.kinds {
        Some(kinds) if kinds.is_empty() => sql.and("0 = 1", []),
        Some(kinds) => sql.and_in("c.kind", texts(kinds.iter().map(|k| k.code()))),
        None => {}
    }
    if let Some(n) = &f.number {
        let arg = dialect::number_match_arg(n);
        sql.and(dialect::NUMBER_MATCH, [Value::Text(arg.clone()), Value::Text(arg)]);
    }
    if let Some(min) = f.talk_min {
        sql.and("c.talk_seconds >= ?", [Value::Integer(min.into())]);
    }
    if let Some(max) = f.talk_max {
        sql.and("c.talk_seconds <= ?", [Value::Integer(max.into())]);
    }
    sql.and_in("c.group_id", ints(&f.groups));
    sql.and_in("c.operator_id", ints(&f.operators));
    sql.and_in("c.queue_id", ints(&f.queues));
    sql.and_in("c.campaign_id", ints(&f.campaigns));
    sql.and_in("c.scenario_id", ints(&f.scenarios));
    sql.and_in("c.completion_code_id", ints(&f.completion_codes));
    sql.and_in("c.result", texts(f.results.iter().map(|r| r.code())));
    if !f.scenario_kinds.is_empty() {
        let kinds = in_list("kind", f.scenario_kinds.len());
        let mut args = vec![Value::Integer(scope.account.0)];
        args.extend(texts(f.scenario_kinds.iter().map(|k| k.code())));
        sql.and(
            &format!("c.scenario_id IN (SELECT id FROM scenarios WHERE account_id = ? AND {kinds})"),
            args,
        );
    }
    for (table, col, ids) in [
        ("call_tags", "x.tag_id", &f.tags),
        ("call_topics", "x.topic_id", &f.topics),
    ] {
        if !ids.is_empty() {
            let test = in_list(col, ids.len());
            sql.and(
                &format!("EXISTS (SELECT 1 FROM {table} x WHERE x.call_id = c.id AND {test})"),
                ints(ids),
            );
        }
    }
    sql
}

/// The columns of a call as listed, with its directory names joined in.
const SELECT: &str = "SELECT c.id, c.external_id, c.started_at, c.kind, c.from_number, c.to_number, \
    c.operator_id, u.login, u.name, c.group_id, g.name, c.queue_id, q.name, c.ring_seconds, c.talk_seconds, \
    c.price_e4, c.currency, c.scenario_id, s.name, s.kind, s.url, c.campaign_id, cp.name, c.result, \
    c.completion_code_id, cc.name, c.callback_at, c.attempts, c.recording_url \
    FROM calls c LEFT JOIN users u ON u.id = c.operator_id LEFT JOIN groups g ON g.id = c.group_id \
    LEFT JOIN queues q ON q.id = c.queue_id LEFT JOIN scenarios s ON s.id = c.scenario_id \
    LEFT JOIN campaigns cp ON cp.id = c.campaign_id LEFT JOIN completion_codes cc ON cc.id = c.completion_code_id";

/// Formats an instant for output: UTC, or the zone the viewer asked for.
pub fn format_time(ms: i64, tz: Option<Tz>) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    match tz {
        Some(tz) => t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, true),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn id_ref(id: Option<i64>, name: Option<String>) -> Option<Ref> {
    Some(Ref {
        id: id?.to_string(),
        name: name.unwrap_or_default(),
    })
}

fn map_row(r: &rusqlite::Row<'_>, scope: &CallScope, tz: Option<Tz>) -> rusqlite::Result<(i64, CallView)> {
    let id: i64 = r.get(0)?;
    let kind = CallKind::parse(&r.get::<_, String>(3)?).unwrap_or(CallKind::Incoming);
    let result = r
        .get::<_, Option<String>>(23)?
        .as_deref()
        .and_then(AttemptResult::parse);
    let operator = match r.get::<_, Option<i64>>(6)? {
        Some(op) => Some(OperatorRef {
            id: op.to_string(),
            login: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            name: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
        }),
        None => None,
    };
    let scenario = match r.get::<_, Option<i64>>(17)? {
        Some(sid) => Some(ScenarioView {
            id: sid.to_string(),
            name: r.get::<_, Option<String>>(18)?.unwrap_or_default(),
            kind: r.get::<_, Option<String>>(19)?.as_deref().and_then(ScenarioKind::parse),
            url: if scenario_link_hidden(scope) {
                None
            } else {
                Some(r.get(20)?)
            },
        }),
        None => None,
    };
    let completion_code = match r.get::<_, Option<i64>>(24)? {
        Some(cid) => Some(CompletionCodeView {
            id: cid.to_string(),
            name: r.get::<_, Option<String>>(25)?.unwrap_or_default(),
            callback_at: r.get::<_, Option<i64>>(26)?.map(|t| format_time(t, tz)),
        }),
        None => None,
    };
    let price: Option<i64> = r.get(15)?;
    let view = CallView {
        id: id.to_string(),
        external_id: r.get(1)?,
        started_at: format_time(r.get(2)?, tz),
        direction: kind.direction(),
        kind,
        from: r.get(4)?,
        to: r.get(5)?,
        operator,
        group: id_ref(r.get(9)?, r.get(10)?),
        queue: id_ref(r.get(11)?, r.get(12)?),
        ring_seconds: r.get(13)?,
        talk_seconds: r.get(14)?,
        price: (!scope.redacted).then(|| price.map(|p| String::from(Money(p)))),
        currency: (!scope.redacted).then(|| r.get::<_, Option<String>>(16)).transpose()?,
        scenario,
        campaign: id_ref(r.get(21)?, r.get(22)?),
        result,
        success: result.is_some_and(AttemptResult::is_success),
        completion_code,
        attempts: r.get(27)?,
        tags: vec![],
        topics: vec![],
        notes: vec![],
        has_recording: r.get::<_, Option<String>>(28)?.is_some(),
    };
    Ok((id, view))
}

fn scenario_link_hidden(scope: &CallScope) -> bool {
    scope.redacted
}

/// Fills tags, topics and notes of the listed calls with one query each.
fn attach_sets(conn: &Connection, calls: &mut [(i64, CallView)], tz: Option<Tz>) -> Result<(), StoreError> {
    if calls.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; calls.len()].join(", ");
    let ids: Vec<i64> = calls.iter().map(|(id, _)| *id).collect();
    let index: std::collections::HashMap<i64, usize> = calls.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    let position = |id: i64| index.get(&id).copied();
    for (table, col, dim) in [("call_tags", "tag_id", "tags"), ("call_topics", "topic_id", "topics")] {
        let sql = format!(
            "SELECT x.call_id, d.id, d.name FROM {table} x JOIN {dim} d ON d.id = x.{col} WHERE x.call_id IN ({marks}) ORDER BY d.name"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(ids.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })?;
        for row in rows {
            let (call, id, name) = row?;
            if let Some(i) = position(call) {
                let item = Ref {
                    id: id.to_string(),
                    name,
                };
                if dim == "tags" {
                    calls[i].1.tags.push(item);
                } else {
                    calls[i].1.topics.push(item);
                }
            }
        }
    }
    let sql =
        format!("SELECT call_id, key, author, at, text FROM call_notes WHERE call_id IN ({marks}) ORDER BY at, id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(ids.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            NoteView {
                id: r.get(1)?,
                author: r.get(2)?,
                at: format_time(r.get(3)?, tz),
                text: r.get(4)?,
            },
        ))
    })?;
    for row in rows {
        let (call, note) = row?;
        if let Some(i) = position(call) {
            calls[i].1.notes.push(note);
        }
    }
    Ok(())
}

type HmacSha256 = Hmac<Sha256>;

fn cursor_mac(key: &[u8; 32], started_at: i64, id: i64, fingerprint: &str) -> [u8; 16] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&started_at.to_be_bytes());
    mac.update(&id.to_be_bytes());
    mac.update(fingerprint.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// A cursor names the last call of a page, signed together with the search it belongs to.
pub fn encode_cursor(key: &[u8; 32], started_at: i64, id: i64, fingerprint: &str) -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(&started_at.to_be_bytes());
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&cursor_mac(key, started_at, id, fingerprint));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Reads a cursor back; a forged one, or one from another search, is a field error.
pub fn decode_cursor(key: &[u8; 32], cursor: &str, fingerprint: &str) -> Result<(i64, i64), FieldError> {
    let bad = || {
        FieldError::new(
            "cursor",
            "cursor is not valid for this search; start again from the first page",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    let started_at = i64::from_be_bytes(bytes[0..8].try_into().map_err(|_| bad())?);
    let id = i64::from_be_bytes(bytes[8..16].try_into().map_err(|_| bad())?);
    let expected = cursor_mac(key, started_at, id, fingerprint);
    // Constant-time comparison of the tag.
    let diff = expected
        .iter()
        .zip(&bytes[16..32])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if diff != 0 {
        return Err(bad());
    }
    Ok((started_at, id))
}

/// One page of calls (newest first) and the exact number of calls matching the filter.
pub fn search(conn: &Connection, scope: &CallScope, req: &SearchRequest, key: &[u8; 32]) -> Result<Page, StoreError> {
    let after = req
        .cursor
        .as_deref()
        .map(|c| decode_cursor(key, c, &req.fingerprint))
        .transpose()
        .map_err(StoreError::Invalid)?;
    let total = count(conn, scope, &req.filter)?;

    // After a cursor, the cursor's instant is the range's only upper bound (two upper bounds and
    // SQLite seeks by the wrong one); the OR then breaks ties between calls of the same instant.
    let mut page_filter = req.filter.clone();
    if let Some((ts, _)) = after {
        page_filter.to = Some(page_filter.to.map_or(ts + 1, |to| to.min(ts + 1)));
    }
    let mut sql = where_clause(scope, &page_filter);
    if let Some((ts, id)) = after {
        sql.and(
            "(c.started_at < ? OR c.id < ?)",
            [Value::Integer(ts), Value::Integer(id)],
        );
    }
    // First the keys of the page (index-only where the indexes allow), then the rows with their
    // directory names: the joins then run for one page, not for every candidate the sort sees.
    let (index, order) = match page_plan(conn, scope, &req.filter, total, req.limit)? {
        PagePlan::WalkTime => (dialect::WALK_TIME_INDEX, "c.started_at DESC, c.id DESC"),
        // `+ 0` hides the order from the time index, so the planner picks the index that is most
        // selective for the filter and sorts the (few) matches.
        PagePlan::SortMatches => ("", "c.started_at + 0 DESC, c.id DESC"),
    };
    let text = format!(
        "SELECT c.id, c.started_at FROM calls c{index}{} ORDER BY {order} LIMIT {}",
        sql.text,
        req.limit + 1
    );
    let mut keys: Vec<(i64, i64)> = conn
        .prepare_cached(&text)?
        .query_map(params_from_iter(sql.args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let more = keys.len() > req.limit as usize;
    keys.truncate(req.limit as usize);
    let next_cursor = match keys.last() {
        Some((id, ts)) if more => Some(encode_cursor(key, *ts, *id, &req.fingerprint)),
        _ => None,
    };
    let ids: Vec<i64> = keys.iter().map(|(id, _)| *id).collect();
    let calls = load_views(conn, scope, &ids, req.tz)?;
    Ok(Page {
        items: calls,
        next_cursor,
        total: u64::try_from(total).unwrap_or(0),
    })
}

/// How to find one page of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePlan {
    /// Walk the time index newest first, checking the filter, until the page is full.
    WalkTime,
    /// Collect every match through the filter's most selective index, then sort them.
    SortMatches,
}

/// Chooses the plan from exact counts rather than the planner's guesses. If matches are spread
/// evenly, a walk visits about `range × page / total` calls; sorting costs about `total`. A rare
/// filter over a long range (the classic LIMIT trap: a walk through millions of calls to find
/// none) is therefore sorted, a common one walked.
pub fn page_plan(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    total: i64,
    limit: u32,
) -> Result<PagePlan, StoreError> {
    let range_only = CallFilter {
        from: f.from,
        to: f.to,
        ..CallFilter::default()
    };
    if *f == range_only {
        return Ok(PagePlan::WalkTime);
    }
    let in_range = count(conn, scope, &range_only)?;
    let walk = in_range as f64 * f64::from(limit + 1) / (total.max(1) as f64);
    Ok(if (total as f64) < walk {
        PagePlan::SortMatches
    } else {
        PagePlan::WalkTime
    })
}

/// The calls with these ids, in the given order, as listed.
fn load_views(conn: &Connection, scope: &CallScope, ids: &[i64], tz: Option<Tz>) -> Result<Vec<CallView>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    // `+` keeps the account test a check on each row: the ids lead, not the account index.
    let text = format!("{SELECT} WHERE +c.account_id = ? AND c.id IN ({marks})");
    let args = std::iter::once(scope.account.0).chain(ids.iter().copied());
    let mut rows: Vec<(i64, CallView)> = conn
        .prepare_cached(&text)?
        .query_map(params_from_iter(args), |r| map_row(r, scope, tz))?
        .collect::<Result<_, _>>()?;
    let order: std::collections::HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|(id, _)| order.get(id).copied().unwrap_or(usize::MAX));
    attach_sets(conn, &mut rows, tz)?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

/// The exact number of calls in scope that match the filter: from the count buckets where they
/// can answer, counting calls only at the partial hours of the range's edges.
pub fn count(conn: &Connection, scope: &CallScope, f: &CallFilter) -> Result<i64, StoreError> {
    if f.kinds.as_ref().is_some_and(|k| k.is_empty()) {
        return Ok(0);
    }
    if !counts::answerable(f) {
        return count_direct(conn, scope, f);
    }
    let (lo, hi) = (f.from, f.to);
    let first_day = lo.map(|l| ceil_div(l, DAY_MS));
    let end_day = hi.map(|h| h.div_euclid(DAY_MS));
    if let (Some(l), Some(h), Some(a), Some(b)) = (lo, hi, first_day, end_day) {
        if a >= b {
            return count_hours(conn, scope, f, l, h);
        }
    }
    let mut n = counts::sum(conn, scope.account, f, Bucket::Day, first_day, end_day)?;
    if let (Some(l), Some(a)) = (lo, first_day) {
        if l < a * DAY_MS {
            n += count_hours(conn, scope, f, l, a * DAY_MS)?;
        }
    }
    if let (Some(h), Some(b)) = (hi, end_day) {
        if b * DAY_MS < h {
            n += count_hours(conn, scope, f, b * DAY_MS, h)?;
        }
    }
    Ok(n)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Counts `[lo, hi)`: whole hours from their buckets, the rest from the calls.
fn count_hours(conn: &Connection, scope: &CallScope, f: &CallFilter, lo: i64, hi: i64) -> Result<i64, StoreError> {
    let (first, end) = (ceil_div(lo, HOUR_MS), hi.div_euclid(HOUR_MS));
    if first >= end {
        return count_between(conn, scope, f, lo, hi);
    }
    let mut n = counts::sum(conn, scope.account, f, Bucket::Hour, Some(first), Some(end))?;
    if lo < first * HOUR_MS {
        n += count_between(conn, scope, f, lo, first * HOUR_MS)?;
    }
    if end * HOUR_MS < hi {
        n += count_between(conn, scope, f, end * HOUR_MS, hi)?;
    }
    Ok(n)
}

fn count_between(conn: &Connection, scope: &CallScope, f: &CallFilter, lo: i64, hi: i64) -> Result<i64, StoreError> {
    let part = CallFilter {
        from: Some(lo),
        to: Some(hi),
        ..f.clone()
    };
    count_direct(conn, scope, &part)
}

/// Counts the matching calls themselves.
pub fn count_direct(conn: &Connection, scope: &CallScope, f: &CallFilter) -> Result<i64, StoreError> {
    let sql = where_clause(scope, f);
    Ok(conn
        .prepare_cached(&format!("SELECT count(*) FROM calls c{}", sql.text))?
        .query_row(params_from_iter(sql.args.iter()), |r| r.get(0))?)
}

/// The calls with these ids that match the filter (for live updates), newest first.
pub fn matching(
    conn: &Connection,
    scope: &CallScope,
    filter: &CallFilter,
    ids: &[i64],
    tz: Option<Tz>,
) -> Result<Vec<CallView>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut sql = where_clause(scope, filter);
    sql.and_in("c.id", ints(ids));
    let text = format!(
        "SELECT c.id FROM calls c{} ORDER BY c.started_at DESC, c.id DESC",
        sql.text
    );
    let found: Vec<i64> = conn
        .prepare(&text)?
        .query_map(params_from_iter(sql.args.iter()), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    load_views(conn, scope, &found, tz)
}

/// One call with its details, if it is in scope.
pub fn get(conn: &Connection, scope: &CallScope, id: i64, tz: Option<Tz>) -> Result<CallDetailView, StoreError> {
    let call = load_views(conn, scope, &[id], tz)?.pop().ok_or(StoreError::NotFound)?;
    let details = conn.query_row(
        "SELECT dial_started_at, answered_at, scenario_started_at, amd_detected_at, ended_at, flow, recording_url FROM calls WHERE id = ?",
        [id],
        |r| {
            let t = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.map(|ms| format_time(ms, tz)));
            let flow: Option<String> = r.get(5)?;
            let steps: Vec<FlowStep> = flow.as_deref().and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
            Ok(CallDetails {
                dial_started_at: t(0)?,
                answered_at: t(1)?,
                scenario_started_at: t(2)?,
                amd_detected_at: t(3)?,
                ended_at: t(4)?,
                flow: steps
                    .into_iter()
                    .map(|s| FlowStepView {
                        at: format_time(s.at.timestamp_millis(), tz),
                        block: s.block,
                    })
                    .collect(),
                recording_url: r.get(6)?,
            })
        },
    )?;
    Ok(CallDetailView { call, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgery() {
        let key = [7u8; 32];
        let c = encode_cursor(&key, 1_700_000_000_000, 42, "operator=1");
        assert_eq!(decode_cursor(&key, &c, "operator=1"), Ok((1_700_000_000_000, 42)));
        assert_eq!(decode_cursor(&key, &c, "operator=2").unwrap_err().field, "cursor");
        assert_eq!(decode_cursor(&[8u8; 32], &c, "operator=1").unwrap_err().field, "cursor");
        let mut bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        bytes[15] ^= 1; // a different call id, same signature
        assert!(decode_cursor(&key, &URL_SAFE_NO_PAD.encode(bytes), "operator=1").is_err());
        assert!(decode_cursor(&key, "not a cursor!", "").is_err());
    }
}
