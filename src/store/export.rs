//! Reading every match of a filter for an export, in stretches of one statement each, newest
//! first. An export row is lean: ids, numbers and instants as stored; the directory's names come
//! from one dictionary read when the export starts, not from joins on every row.

use std::collections::HashMap;

use crate::store::db::{params_from_iter, Connection};

use super::search::{matches_after, PagePlan, Position};
use super::StoreError;
use crate::domain::{AccountId, AttemptResult, CallFilter, CallKind, CallScope};

/// Which of the per-call lists an export needs (the others are not read at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub tags: bool,
    pub topics: bool,
    pub notes: bool,
}

/// The names of the account's directory, by id.
#[derive(Debug, Default)]
pub struct Names {
    pub operators: HashMap<i64, String>,
    pub queues: HashMap<i64, String>,
    pub scenarios: HashMap<i64, String>,
    pub campaigns: HashMap<i64, String>,
    pub completion_codes: HashMap<i64, String>,
    pub tags: HashMap<i64, String>,
    pub topics: HashMap<i64, String>,
}

pub fn names(conn: &Connection, account: AccountId) -> Result<Names, StoreError> {
    let read = |table: &str| -> Result<HashMap<i64, String>, StoreError> {
        let map = conn
            .prepare(&format!("SELECT id, name FROM {table} WHERE account_id = ?"))?
            .query_map([account.0], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(map)
    };
    Ok(Names {
        operators: read("users")?,
        queues: read("queues")?,
        scenarios: read("scenarios")?,
        campaigns: read("campaigns")?,
        completion_codes: read("completion_codes")?,
        tags: read("tags")?,
        topics: read("topics")?,
    })
}

/// One call as an export reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    pub started_ms: i64,
    pub kind: CallKind,
    pub from: String,
    pub to: String,
    pub operator: Option<i64>,
    pub queue: Option<i64>,
    pub ring_seconds: Option<u32>,
    pub talk_seconds: u32,
    /// Ten-thousandths; `None` also in the restricted view.
    pub price_e4: Option<i64>,
    pub scenario: Option<i64>,
    pub campaign: Option<i64>,
    pub result: Option<AttemptResult>,
    pub completion_code: Option<i64>,
    pub callback_ms: Option<i64>,
    pub attempts: Option<u32>,
    pub has_recording: bool,
    pub tags: Vec<i64>,
    pub topics: Vec<i64>,
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub author: Option<String>,
    pub at_ms: i64,
    pub text: String,
}

/// Up to `limit` matches after `after`, and where the walk stands when more may follow.
pub fn stretch(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    plan: PagePlan,
    after: Option<Position>,
    limit: u32,
    sets: Sets,
) -> Result<(Vec<Row>, Option<Position>), StoreError> {
    let sql = matches_after(super::dialect::Dialect::of(conn), scope, f, after);
    let (index, order) = plan.order(super::dialect::Dialect::of(conn));
    let text = format!(
        "SELECT c.id, c.started_at, c.kind, c.from_number, c.to_number, c.operator_id, c.queue_id, c.ring_seconds, \
         c.talk_seconds, c.price_e4, c.scenario_id, c.campaign_id, c.result, c.completion_code_id, c.callback_at, \
         c.attempts, c.has_recording \
         FROM calls c{index}{} ORDER BY {order} LIMIT {limit}",
        sql.text
    );
    let mut out = Vec::with_capacity(limit as usize);
    let mut stmt = conn.prepare_planned(&text)?;
    let mut rows = stmt.query(params_from_iter(sql.args.iter()))?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(2)?;
        let result: Option<String> = r.get(12)?;
        out.push(Row {
            id: r.get(0)?,
            started_ms: r.get(1)?,
            kind: CallKind::parse(&kind).unwrap_or(CallKind::Incoming),
            from: r.get(3)?,
            to: r.get(4)?,
            operator: r.get(5)?,
            queue: r.get(6)?,
            ring_seconds: r.get(7)?,
            talk_seconds: r.get(8)?,
            // The restricted view has no price (spec §1).
            price_e4: if scope.redacted { None } else { r.get(9)? },
            scenario: r.get(10)?,
            campaign: r.get(11)?,
            result: result.as_deref().and_then(AttemptResult::parse),
            completion_code: r.get(13)?,
            callback_ms: r.get(14)?,
            attempts: r.get(15)?,
            has_recording: r.get(16)?,
            tags: vec![],
            topics: vec![],
            notes: vec![],
        });
    }
    drop(rows);
    attach_lists(conn, &mut out, sets)?;
    let last = out.last().map(|r| (r.started_ms, r.id));
    let more = out.len() == limit as usize;
    Ok((out, last.filter(|_| more)))
}

/// Ids closer than this read as one range: reading a few calls' lists that are not wanted costs
/// less than a seek per call.
const GAP: i64 = 256;

/// Fills the tags, topics and notes of a stretch: per run of nearby call ids one range read of
/// each list table (sequential, in key order), instead of a look-up per call.
fn attach_lists(conn: &Connection, rows: &mut [Row], sets: Sets) -> Result<(), StoreError> {
    if rows.is_empty() || !(sets.tags || sets.topics || sets.notes) {
        return Ok(());
    }
    let at: HashMap<i64, usize> = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let mut runs = vec![];
    let mut start = ids[0];
    for pair in ids.windows(2) {
        if pair[1] - pair[0] > GAP {
            runs.push((start, pair[0]));
            start = pair[1];
        }
    }
    runs.push((start, ids[ids.len() - 1]));
    for (table, col, wanted) in [
        ("call_tags", "tag_id", sets.tags),
        ("call_topics", "topic_id", sets.topics),
    ] {
        if !wanted {
            continue;
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT call_id, {col} FROM {table} WHERE call_id BETWEEN ? AND ?"
        ))?;
        for (a, b) in &runs {
            let mut found = stmt.query([a, b])?;
            while let Some(r) = found.next()? {
                if let Some(&i) = at.get(&r.get::<_, i64>(0)?) {
                    let id = r.get(1)?;
                    let row = &mut rows[i];
                    if table == "call_tags" {
                        row.tags.push(id);
                    } else {
                        row.topics.push(id);
                    }
                }
            }
        }
    }
    if sets.notes {
        let mut stmt = conn.prepare_cached(
            "SELECT call_id, author, at, text FROM call_notes WHERE call_id BETWEEN ? AND ? ORDER BY call_id, at, id",
        )?;
        for (a, b) in &runs {
            let mut found = stmt.query([a, b])?;
            while let Some(r) = found.next()? {
                if let Some(&i) = at.get(&r.get::<_, i64>(0)?) {
                    rows[i].notes.push(Note {
                        author: r.get(1)?,
                        at_ms: r.get(2)?,
                        text: r.get(3)?,
                    });
                }
            }
        }
    }
    Ok(())
}
