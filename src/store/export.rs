//! Reading every match of a filter for an export: stretches of rows in one statement each, with
//! the directory names, tags, topics and notes joined in, newest first. A search page looks its
//! rows up by id after choosing them; an export takes them in the order the index gives them.

use chrono_tz::Tz;
use rusqlite::{params_from_iter, Connection};

use super::search::{matches_after, page_plan, PagePlan, Position};
use super::view::{format_time, map_row, CallView, NoteView, Ref, COLUMNS, COLUMN_COUNT, JOINS};
use super::StoreError;
use crate::domain::{CallFilter, CallScope};

/// Which of the per-call lists an export needs (the others are not read at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sets {
    pub tags: bool,
    pub topics: bool,
    pub notes: bool,
}

/// The plan for every stretch of one export, chosen once from the filter's exact count.
pub fn plan(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    total: i64,
    stretch: u32,
) -> Result<PagePlan, StoreError> {
    page_plan(conn, scope, f, total, stretch)
}

/// Up to `limit` matches after `after`, and where the walk stands when more may follow.
#[allow(clippy::too_many_arguments)]
pub fn stretch(
    conn: &Connection,
    scope: &CallScope,
    f: &CallFilter,
    plan: PagePlan,
    after: Option<Position>,
    limit: u32,
    sets: Sets,
    tz: Tz,
) -> Result<(Vec<CallView>, Option<Position>), StoreError> {
    // Pairs of (id, name) joined by unit separators; notes as a JSON array in their order.
    let pairs = |table: &str, col: &str, dim: &str| {
        format!(
            "(SELECT group_concat(d.id || char(31) || d.name, char(30)) FROM {table} x JOIN {dim} d ON d.id = x.{col} \
             WHERE x.call_id = c.id)"
        )
    };
    let tags = if sets.tags {
        pairs("call_tags", "tag_id", "tags")
    } else {
        "NULL".into()
    };
    let topics = if sets.topics {
        pairs("call_topics", "topic_id", "topics")
    } else {
        "NULL".into()
    };
    let notes = if sets.notes {
        "(SELECT json_group_array(json_array(n.key, n.author, n.at, n.text)) FROM \
         (SELECT key, author, at, text FROM call_notes WHERE call_id = c.id ORDER BY at, id) n)"
    } else {
        "NULL"
    };
    let sql = matches_after(scope, f, after);
    let (index, order) = plan.order();
    let text = format!(
        "{COLUMNS}, {tags}, {topics}, {notes} FROM calls c{index}{JOINS}{} ORDER BY {order} LIMIT {limit}",
        sql.text
    );
    let tz = Some(tz);
    let mut last = None;
    let mut calls = Vec::with_capacity(limit as usize);
    let mut stmt = conn.prepare_cached(&text)?;
    let mut rows = stmt.query(params_from_iter(sql.args.iter()))?;
    while let Some(r) = rows.next()? {
        let (id, mut call) = map_row(r, scope, tz)?;
        last = Some((r.get::<_, i64>(2)?, id));
        call.tags = split_pairs(r.get(COLUMN_COUNT)?);
        call.topics = split_pairs(r.get(COLUMN_COUNT + 1)?);
        call.notes = parse_notes(r.get(COLUMN_COUNT + 2)?, tz);
        calls.push(call);
    }
    let more = calls.len() == limit as usize;
    Ok((calls, last.filter(|_| more)))
}

fn split_pairs(text: Option<String>) -> Vec<Ref> {
    let mut refs: Vec<Ref> = text
        .iter()
        .flat_map(|t| t.split('\u{1e}'))
        .filter_map(|pair| {
            let (id, name) = pair.split_once('\u{1f}')?;
            Some(Ref {
                id: id.to_string(),
                name: name.to_string(),
            })
        })
        .collect();
    // The order of a list, as the search gives it.
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    refs
}

fn parse_notes(json: Option<String>, tz: Option<Tz>) -> Vec<NoteView> {
    let Some(json) = json else { return vec![] };
    let rows: Vec<(String, Option<String>, i64, String)> = serde_json::from_str(&json).unwrap_or_default();
    rows.into_iter()
        .map(|(id, author, at, text)| NoteView {
            id,
            author,
            at: format_time(at, tz),
            text,
        })
        .collect()
}
