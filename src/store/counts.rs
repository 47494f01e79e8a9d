//! Pre-aggregated call counts: per 32-day block, per UTC day and per UTC hour, by kind, result
//! and operator.
//!
//! Writes record their changes here (`CountDeltas`, flushed once per batch); `search` sums the
//! largest buckets that fit inside a range, smaller ones towards its edges, and counts only the
//! partial hours at the edges from the calls. A total over fifteen months of fifty million calls
//! is then a sum over a few thousand rows instead of a walk over millions of index entries.

use std::collections::HashMap;

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection};

use super::batch_rows::{BatchRows, Insert};
use super::StoreError;
use crate::domain::access::OperatorTest;
use crate::domain::{AccountId, AttemptResult, CallFilter, CallKind, CallScope};

pub const HOUR_MS: i64 = 3_600_000;

/// The bucket tables, largest first; each bucket is a whole number of the next one's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// 32 days (768 hours) from the epoch: fixed, unlike months, so that blocks nest days.
    Block,
    Day,
    Hour,
}

impl Bucket {
    /// Largest first: the order in which a range is covered.
    pub const LEVELS: [Bucket; 3] = [Bucket::Block, Bucket::Day, Bucket::Hour];

    fn table(self) -> &'static str {
        self.insert().table
    }

    /// The upsert that adds to a bucket's count.
    fn insert(self) -> &'static Insert {
        macro_rules! upsert {
            ($table:literal) => {
                Insert {
                    table: $table,
                    columns: &["account_id", "bucket", "kind", "result", "operator_id", "n"],
                    tail: concat!(
                        " ON CONFLICT (account_id, bucket, kind, result, operator_id) DO UPDATE SET n = ",
                        $table,
                        ".n + excluded.n"
                    ),
                }
            };
        }
        static BLOCK: Insert = upsert!("call_counts_block");
        static DAY: Insert = upsert!("call_counts_day");
        static HOUR: Insert = upsert!("call_counts_hour");
        match self {
            Bucket::Block => &BLOCK,
            Bucket::Day => &DAY,
            Bucket::Hour => &HOUR,
        }
    }

    fn hours(self) -> i64 {
        match self {
            Bucket::Block => 32 * 24,
            Bucket::Day => 24,
            Bucket::Hour => 1,
        }
    }

    /// The span of one bucket in milliseconds.
    pub fn ms(self) -> i64 {
        self.hours() * HOUR_MS
    }
}

/// Count changes of one write job, by (hour, kind, result, operator).
#[derive(Debug, Default, Clone)]
pub struct CountDeltas(HashMap<(i64, &'static str, &'static str, i64), i64>);

impl CountDeltas {
    pub fn add(
        &mut self,
        started_at: i64,
        kind: CallKind,
        result: Option<AttemptResult>,
        operator: Option<i64>,
        delta: i64,
    ) {
        let key = (
            started_at.div_euclid(HOUR_MS),
            kind.code(),
            result.map(|r| r.code()).unwrap_or(""),
            operator.unwrap_or(0),
        );
        *self.0.entry(key).or_insert(0) += delta;
    }

    /// Writes the changes to every bucket table, many rows per statement.
    pub fn flush(self, conn: &Connection, account: AccountId) -> Result<(), StoreError> {
        let mut out = BatchRows::default();
        for bucket in Bucket::LEVELS {
            let mut rows: HashMap<(i64, &'static str, &'static str, i64), i64> = HashMap::new();
            for ((hour, kind, result, op), n) in &self.0 {
                *rows
                    .entry((hour.div_euclid(bucket.hours()), kind, result, *op))
                    .or_insert(0) += n;
            }
            // Each key once: one statement may not upsert a row twice.
            for ((b, kind, result, op), n) in rows {
                if n != 0 {
                    out.add(bucket.insert(), params![account.0, b, kind, result, op, n]);
                }
            }
        }
        out.flush(conn)
    }
}

/// Whether the buckets can answer this filter: only time, kind, result and operator are kept.
pub fn answerable(f: &CallFilter) -> bool {
    f.number.is_none()
        && f.talk_min.is_none()
        && f.talk_max.is_none()
        && f.groups.is_empty()
        && f.queues.is_empty()
        && f.campaigns.is_empty()
        && f.scenarios.is_empty()
        && f.completion_codes.is_empty()
        && f.tags.is_empty()
        && f.topics.is_empty()
        && f.scenario_kinds.is_empty()
}

/// The sum of the buckets `[first, end)` (either side open when `None`) matching the filter.
pub fn sum(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    bucket: Bucket,
    first: Option<i64>,
    end: Option<i64>,
) -> Result<i64, StoreError> {
    let mut sql = format!(
        "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM {} WHERE account_id = ?",
        bucket.table()
    );
    let mut args = vec![Value::Integer(scope.account.0)];
    if let Some(b) = first {
        sql.push_str(" AND bucket >= ?");
        args.push(Value::Integer(b));
    }
    if let Some(b) = end {
        sql.push_str(" AND bucket < ?");
        args.push(Value::Integer(b));
    }
    let mut list = |column: &str, values: Vec<Value>| {
        if !values.is_empty() {
            let (test, values) = super::search::in_clause(column, values);
            sql.push_str(&format!(" AND {test}"));
            args.extend(values);
        }
    };
    if let Some(kinds) = &f.kinds {
        list("kind", kinds.iter().map(|k| Value::Text(k.code().into())).collect());
    }
    list(
        "result",
        f.results.iter().map(|r| Value::Text(r.code().into())).collect(),
    );
    // The scope's operator restriction is a bucket dimension like any other.
    let operators = match scope.operator_test(&f.operators) {
        OperatorTest::Any => vec![],
        OperatorTest::In(ids) => ids,
        OperatorTest::Never => return Ok(0),
    };
    list("operator_id", operators.into_iter().map(Value::Integer).collect());
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?)
}
