//! Deleting what an account's retention settings say has expired: recordings of old calls, and
//! old calls with everything attached to them. Work goes in bounded batches, one transaction
//! each, so the writer is never held for long; the files go through the deletion queue.

use crate::store::db::{params, Connection};

use super::counts::CountDeltas;
use super::{calllog, recordings, StoreError};
use crate::domain::recording::CallEvent;
use crate::domain::{AccountId, AttemptResult, CallKind};

/// The source named in call logs for what retention does.
pub const SOURCE: &str = "retention";

/// Deletes up to `limit` stored recordings of calls that started before `cutoff`; returns how many.
pub fn expire_recordings(
    conn: &Connection,
    account: AccountId,
    cutoff: i64,
    limit: u32,
    now: i64,
) -> Result<usize, StoreError> {
    let doomed: Vec<(i64, String, Option<String>)> = conn
        .prepare_cached(
            "SELECT c.id, c.external_id, r.object_key FROM calls c \
             JOIN recordings r ON r.account_id = c.account_id AND r.external_id = c.external_id \
             WHERE c.account_id = ? AND c.has_recording = 1 AND c.started_at < ? LIMIT ?",
        )?
        .query_map(params![account.0, cutoff, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, external_id, key) in &doomed {
        if let Some(key) = key {
            recordings::queue_deletion(conn, key, now)?;
        }
        conn.prepare_cached("DELETE FROM recordings WHERE account_id = ? AND external_id = ?")?
            .execute(params![account.0, external_id])?;
        recordings::set_has_recording(conn, *id, false)?;
        calllog::event(conn, *id, CallEvent::RecordingDeleted, SOURCE, None, now)?;
    }
    Ok(doomed.len())
}

/// Deletes up to `limit` calls that started before `cutoff`, with their tags, topics, notes,
/// log, log links and recording; keeps the count buckets exact; returns how many.
pub fn expire_calls(
    conn: &Connection,
    account: AccountId,
    cutoff: i64,
    limit: u32,
    now: i64,
) -> Result<usize, StoreError> {
    type Doomed = (i64, String, i64, String, Option<String>, Option<i64>);
    let doomed: Vec<Doomed> = conn
        .prepare_cached(
            "SELECT id, external_id, started_at, kind, result, operator_id FROM calls \
             WHERE account_id = ? AND started_at < ? ORDER BY started_at LIMIT ?",
        )?
        .query_map(params![account.0, cutoff, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut counts = CountDeltas::default();
    for (id, external_id, started_at, kind, result, operator) in &doomed {
        let kind = CallKind::parse(kind).unwrap_or(CallKind::Incoming);
        counts.add(
            *started_at,
            kind,
            result.as_deref().and_then(AttemptResult::parse),
            *operator,
            -1,
        );
        for table in [
            "call_tags",
            "call_topics",
            "call_notes",
            "call_events",
            "call_log_lines",
            "log_links",
            // What QM exports said of it: a later call may reuse a deleted call's id.
            "qm_export_calls",
            "qm_export_failures",
        ] {
            conn.prepare_cached(&format!("DELETE FROM {table} WHERE call_id = ?"))?
                .execute([id])?;
        }
        conn.prepare_cached("DELETE FROM qm_deliveries WHERE account_id = ? AND call_id = ?")?
            .execute(params![account.0, id])?;
        if let Some(r) = recordings::get(conn, account, external_id)? {
            if let Some(key) = &r.object_key {
                recordings::queue_deletion(conn, key, now)?;
            }
            conn.prepare_cached("DELETE FROM recordings WHERE account_id = ? AND external_id = ?")?
                .execute(params![account.0, external_id])?;
        }
        conn.prepare_cached("DELETE FROM calls WHERE id = ?")?.execute([id])?;
    }
    counts.flush(conn, account)?;
    Ok(doomed.len())
}
