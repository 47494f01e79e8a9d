//! Finding calls: the one place where a `CallFilter` becomes SQL, keyset paging, the choice of
//! plan for a page, and exact counts.

use crate::store::db::Value;
use crate::store::db::{params_from_iter, Connection};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::counts::{self, Bucket};
use super::cursor::{decode_cursor, encode_cursor};
use super::dialect::Dialect;
use super::labels::Label;
use super::view::{load_views, CallView};
use super::StoreError;
use crate::domain::access::OperatorTest;
use crate::domain::{CallFilter, CallScope, SearchRequest};

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<CallView>,
    pub next_cursor: Option<String>,
    pub total: u64,
}

impl Page {
    /// A page with the search's exact total (a count, never negative).
    pub fn new(items: Vec<CallView>, next_cursor: Option<String>, total: i64) -> Page {
        Page {
            items,
            next_cursor,
            total: u64::try_from(total).unwrap_or(0),
        }
    }
}

/// SQL text with its arguments, built up clause by clause.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Value>,
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
        let (test, args) = in_clause(column, values);
        self.and(&test, args);
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

/// Lists longer than this are written into the SQL when they are all integers.
const LONG_LIST: usize = 500;

/// `column IN (…)` with its arguments. A long list of integers (a supervisor of thousands of
/// operators) is written out instead of bound: SQLite takes at most 32,766 parameters, and
/// integers written by us cannot inject anything.
pub fn in_clause(column: &str, values: Vec<Value>) -> (String, Vec<Value>) {
    let ints: Option<Vec<i64>> = values
        .iter()
        .map(|v| match v {
            Value::Integer(i) => Some(*i),
            _ => None,
        })
        .collect();
    match ints {
        Some(ints) if ints.len() > LONG_LIST => {
            let list: Vec<String> = ints.iter().map(i64::to_string).collect();
            (format!("{column} IN ({})", list.join(",")), vec![])
        }
        _ => (in_list(column, values.len()), values),
    }
}

pub fn ints(ids: &[i64]) -> Vec<Value> {
    ids.iter().map(|i| Value::Integer(*i)).collect()
}

fn texts<'a>(codes: impl IntoIterator<Item = &'a str>) -> Vec<Value> {
    codes.into_iter().map(|c| Value::Text(c.to_string())).collect()
}

/// The WHERE clause for the scope and the filter: the only place a filter becomes SQL.
fn where_clause(dialect: Dialect, scope: &CallScope, f: &CallFilter) -> Sql {
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
        let (condition, args) = dialect.number_match(scope.account.0, f.from, f.to, n);
        sql.and(&condition, args);
    }
    if let Some(min) = f.talk_min {
        sql.and("c.talk_seconds >= ?", [Value::Integer(min.into())]);
    }
    if let Some(max) = f.talk_max {
        sql.and("c.talk_seconds <= ?", [Value::Integer(max.into())]);
    }
    sql.and_in("c.group_id", ints(&f.groups));
    match scope.operator_test(&f.operators) {
        OperatorTest::Any => {}
        OperatorTest::In(ids) => sql.and_in("c.operator_id", ints(&ids)),
        OperatorTest::Never => sql.and("0 = 1", []),
    }
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
    for (ids, label) in [(&f.tags, Label::Tag), (&f.topics, Label::Topic)] {
        if !ids.is_empty() {
            label_test(&mut sql, scope, ids, label);
        }
    }
    sql
}

/// "Has one of these tags (topics)": first the bits the filter indexes carry (`labels.rs`), then,
/// only where another label of the account shares one of the bits, the labels themselves. With
/// no shared bit (up to 32 tags and 31 topics an account never has one) the bits alone are exact,
/// and a count is read from an index without a look-up per call: at 10 million calls "7 days of a
/// campaign in two groups with a tag" took 10–20 ms of 4,500 look-ups, 2–3 ms without them.
fn label_test(sql: &mut Sql, scope: &CallScope, ids: &[i64], label: Label) {
    let mask = Value::Integer(label.bits(ids));
    sql.and("(c.label_bits & ?) <> 0", [mask.clone()]);
    let (directory, calls, column) = label.tables();
    let (named, named_args) = in_clause("d.id", ints(ids));
    let (has, has_args) = in_clause(&format!("x.{column}"), ints(ids));
    let mut args = vec![Value::Integer(scope.account.0)];
    args.extend(named_args);
    args.push(mask);
    args.extend(has_args);
    // The first test does not depend on the call: both databases evaluate it once.
    sql.and(
        &format!(
            "(NOT EXISTS (SELECT 1 FROM {directory} d WHERE d.account_id = ? AND NOT {named} AND ({} & ?) <> 0) \
             OR EXISTS (SELECT 1 FROM {calls} x WHERE x.call_id = c.id AND {has}))",
            label.sql_bit("d.id")
        ),
        args,
    );
}

/// One page of calls (newest first) and the exact number of calls matching the filter.
pub fn search(conn: &Connection, scope: &CallScope, req: &SearchRequest, key: &[u8; 32]) -> Result<Page, StoreError> {
    let after = cursor_position(req, key)?;
    let total = count(conn, scope, &req.filter)?;
    // The count is exact: with nothing to show, no page is looked for (a rare combination of
    // filters would otherwise be searched a second time to find the same nothing).
    if total == 0 {
        return Ok(Page::new(vec![], None, 0));
    }
    let plan = match plan_without_total(Dialect::of(conn), &req.filter) {
        Some(plan) => plan,
        None => page_plan(conn, scope, &req.filter, total, req.limit)?,
    };
    let (items, next_cursor) = page(conn, scope, req, key, after, plan)?;
    Ok(Page::new(items, next_cursor, total))
}

/// Where the search's cursor stands (`None` on the first page); an error names a cursor that
/// is not this search's or not ours.
pub fn cursor_position(req: &SearchRequest, key: &[u8; 32]) -> Result<Option<Position>, StoreError> {
    req.cursor
        .as_deref()
        .map(|c| decode_cursor(key, c, &req.fingerprint))
        .transpose()
        .map_err(StoreError::Invalid)
}

/// The plan of a search's page when it does not depend on the total: a number search on a
/// database that does not walk its matches (`Dialect::walks_number_matches`). The page and the
/// count may then run side by side (`Store::search`).
pub fn plan_without_total(dialect: Dialect, f: &CallFilter) -> Option<PagePlan> {
    (f.number.is_some() && !dialect.walks_number_matches()).then_some(PagePlan::SortMatches)
}

/// A page of the search by `plan`, after `after`, and the cursor of the next one.
pub fn page(
    conn: &Connection,
    scope: &CallScope,
    req: &SearchRequest,
    key: &[u8; 32],
    after: Option<Position>,
    plan: PagePlan,
) -> Result<(Vec<CallView>, Option<String>), StoreError> {
    let (calls, last, more) = batch(conn, scope, &req.filter, plan, after, req.limit, req.tz)?;
    let next_cursor = match last {
        Some((ts, id)) if more => Some(encode_cursor(key, ts, id, &req.fingerprint)),
        _ => None,
    };
    Ok((calls, next_cursor))
}

/// Where a walk through the matches stands: the (start, id) of the last call taken.
pub type Position = (i64, i64);

/// One keyset step: the calls after `after`, the position of the last one, and whether more
/// follow.
fn batch(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    plan: PagePlan,
    after: Option<Position>,
    limit: u32,
    tz: Option<Tz>,
) -> Result<(Vec<CallView>, Option<Position>, bool), StoreError> {
    let dialect = Dialect::of(conn);
    // First the keys of the page (index-only where the indexes allow), then the rows with their
    // directory names: the joins then run for one page, not for every candidate the sort sees.
    // The two sides of a number search may both hold a call (caller and callee match): the
    // first `2 × (limit + 1)` of their rows hold `limit + 1` distinct calls when there are as
    // many, and the duplicates are dropped below.
    let (sql, order, rows) = match (plan, &f.number) {
        (PagePlan::SortMatches, Some(fragment)) => (
            number_sides(dialect, scope, f, fragment, after),
            "c.started_at DESC, c.id DESC",
            2 * (limit + 1),
        ),
        _ => {
            let (index, order) = plan.order(dialect);
            let matches = matches_after(dialect, scope, f, after);
            let text = format!(" FROM calls c{index}{}", matches.text);
            (
                Sql {
                    text,
                    args: matches.args,
                },
                order,
                limit + 1,
            )
        }
    };
    let text = format!("SELECT c.id, c.started_at{} ORDER BY {order} LIMIT {rows}", sql.text);
    let mut keys: Vec<(i64, i64)> = conn
        .prepare_planned(&text)?
        .query_map(params_from_iter(sql.args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // A call's two rows are neighbours: the same id has the same start.
    keys.dedup();
    let more = keys.len() > limit as usize;
    keys.truncate(limit as usize);
    let last = keys.last().map(|(id, ts)| (*ts, *id));
    let ids: Vec<i64> = keys.iter().map(|(id, _)| *id).collect();
    Ok((load_views(conn, scope, &ids, tz)?, last, more))
}

/// The WHERE clause of the matches that come after `after`, newest first.
pub(super) fn matches_after(dialect: Dialect, scope: &CallScope, f: &CallFilter, after: Option<Position>) -> Sql {
    // After a cursor, the cursor's instant is the range's only upper bound (two upper bounds and
    // SQLite seeks by the wrong one); the OR then breaks ties between calls of the same instant.
    let mut page_filter = f.clone();
    if let Some((ts, _)) = after {
        page_filter.to = Some(page_filter.to.map_or(ts + 1, |to| to.min(ts + 1)));
    }
    let mut sql = where_clause(dialect, scope, &page_filter);
    if let Some((ts, id)) = after {
        sql.and(
            "(c.started_at < ? OR c.id < ?)",
            [Value::Integer(ts), Value::Integer(id)],
        );
    }
    sql
}

/// How to find one page of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagePlan {
    /// Walk the time index newest first, checking the filter, until the page is full.
    WalkTime,
    /// Collect every match through the filter's most selective index, then sort them.
    SortMatches,
}

impl PagePlan {
    /// The index hint (after `FROM calls c`) and the ORDER BY of the plan.
    pub(super) fn order(self, dialect: Dialect) -> (&'static str, &'static str) {
        match self {
            PagePlan::WalkTime => (dialect.walk_time_index(), "c.started_at DESC, c.id DESC"),
            // `+ 0` hides the order from the time index, so the planner picks the index that is
            // most selective for the filter and sorts the (few) matches.
            PagePlan::SortMatches => ("", "c.started_at + 0 DESC, c.id DESC"),
        }
    }
}

/// The `FROM` part of a query over `c.id` and `c.started_at` of every match of a number search:
/// its two sides, caller and callee, each the whole filter with the number tested on one column.
/// Each side is then read from its number index alone (it holds the start and the id), where
/// testing either column visited every matching call — twice, for the count and for the page.
/// A call whose caller and callee both match is in both sides (`UNION ALL`): callers remove the
/// duplicates where it matters, which costs less than `UNION`'s hashing of every match (a
/// fragment matching 34,638 of 10 million calls on PostgreSQL: count 22 → 16 ms, page 29 →
/// 15 ms).
fn number_sides(dialect: Dialect, scope: &CallScope, f: &CallFilter, fragment: &str, after: Option<Position>) -> Sql {
    let others = CallFilter {
        number: None,
        ..f.clone()
    };
    let rest = matches_after(dialect, scope, &others, after);
    let mut sides = vec![];
    let mut args = vec![];
    for column in ["c.from_number", "c.to_number"] {
        let (test, arg) = dialect.number_in(column, fragment);
        sides.push(format!(
            "SELECT c.id, c.started_at FROM calls c{} AND {test}",
            rest.text
        ));
        args.extend(rest.args.iter().cloned());
        args.push(arg);
    }
    Sql {
        text: format!(" FROM ({}) c", sides.join(" UNION ALL ")),
        args,
    }
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
    if *f == range_only && scope.is_whole_account() {
        return Ok(PagePlan::WalkTime);
    }
    // A walk visits every call of the range, in scope or not.
    let in_range = count(conn, &CallScope::whole_account(scope.account), &range_only)?;
    let walk = in_range as f64 * f64::from(limit + 1) / (total.max(1) as f64);
    Ok(if (total as f64) < walk {
        PagePlan::SortMatches
    } else {
        PagePlan::WalkTime
    })
}

/// The exact number of calls in scope that match the filter: from the count buckets where they
/// can answer, counting calls only at the partial hours of the range's edges.
pub fn count(conn: &Connection, scope: &CallScope, f: &CallFilter) -> Result<i64, StoreError> {
    if f.kinds.as_ref().is_some_and(|k| k.is_empty()) || scope.operator_test(&f.operators) == OperatorTest::Never {
        return Ok(0);
    }
    if !counts::answerable(f) {
        return count_direct(conn, scope, f);
    }
    count_from(conn, scope, f, f.from, f.to, &Bucket::LEVELS)
}

/// Counts `[lo, hi)` (open on a side that is `None`): the whole buckets of the first level inside
/// it from their table, the parts before and after them by the next levels, and what no bucket
/// covers (under an hour at each edge) from the calls.
fn count_from(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    lo: Option<i64>,
    hi: Option<i64>,
    levels: &[Bucket],
) -> Result<i64, StoreError> {
    let Some((&bucket, smaller)) = levels.split_first() else {
        let part = CallFilter {
            from: lo,
            to: hi,
            ..f.clone()
        };
        return count_direct(conn, scope, &part);
    };
    let size = bucket.ms();
    let first = lo.map(|l| ceil_div(l, size));
    let end = hi.map(|h| h.div_euclid(size));
    if let (Some(a), Some(b)) = (first, end) {
        if a >= b {
            return count_from(conn, scope, f, lo, hi, smaller);
        }
    }
    let mut n = counts::sum(conn, scope, f, bucket, first, end)?;
    if let (Some(l), Some(a)) = (lo, first) {
        if l < a * size {
            n += count_from(conn, scope, f, lo, Some(a * size), smaller)?;
        }
    }
    if let (Some(h), Some(b)) = (hi, end) {
        if b * size < h {
            n += count_from(conn, scope, f, Some(b * size), hi, smaller)?;
        }
    }
    Ok(n)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Counts the matching calls themselves.
pub fn count_direct(conn: &Connection, scope: &CallScope, f: &CallFilter) -> Result<i64, StoreError> {
    let dialect = Dialect::of(conn);
    let (counted, sql) = match &f.number {
        // A call in both sides is counted once.
        Some(fragment) => ("count(DISTINCT c.id)", number_sides(dialect, scope, f, fragment, None)),
        None => {
            let matches = where_clause(dialect, scope, f);
            let text = format!(" FROM calls c{}", matches.text);
            (
                "count(*)",
                Sql {
                    text,
                    args: matches.args,
                },
            )
        }
    };
    Ok(conn
        .prepare_planned(&format!("SELECT {counted}{}", sql.text))?
        .query_row(params_from_iter(sql.args.iter()), |r| r.get(0))?)
}

/// Whether the call with this id is in scope.
pub fn in_scope(conn: &Connection, scope: &CallScope, id: i64) -> Result<bool, StoreError> {
    let mut sql = where_clause(Dialect::of(conn), scope, &CallFilter::default());
    sql.and("c.id = ?", [Value::Integer(id)]);
    Ok(conn
        .prepare_cached(&format!("SELECT EXISTS (SELECT 1 FROM calls c{})", sql.text))?
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
    let mut sql = where_clause(Dialect::of(conn), scope, filter);
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

/// The ids of the calls matching the filter, newest first, `limit` at a time after the
/// `(started_at, id)` of the last one given (a keyset walk for jobs that act on every call).
pub fn ids_after(
    conn: &Connection,
    scope: &CallScope,
    filter: &CallFilter,
    after: Option<(i64, i64)>,
    limit: u32,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut sql = where_clause(Dialect::of(conn), scope, filter);
    if let Some((started, id)) = after {
        sql.and(
            "(c.started_at < ? OR (c.started_at = ? AND c.id < ?))",
            [Value::Integer(started), Value::Integer(started), Value::Integer(id)],
        );
    }
    let text = format!(
        "SELECT c.started_at, c.id FROM calls c{} ORDER BY c.started_at DESC, c.id DESC LIMIT {limit}",
        sql.text
    );
    let rows = conn
        .prepare_planned(&text)?
        .query_map(params_from_iter(sql.args.iter()), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
