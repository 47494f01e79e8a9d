//! QM export jobs: asked for, taken in turns, finished or cancelled, and how many of their calls
//! stand where.

use crate::store::db::{params, Connection, OptionalExtension, Row};

use crate::domain::qm::Outcome;
use crate::domain::{AccountId, UserId};
use crate::export::jobs::JobState;
use crate::store::{leases, StoreError};

/// One export job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    pub id: i64,
    pub account: AccountId,
    pub user: UserId,
    /// The search of a filtered export, as `[key, value]` pairs in JSON.
    pub query: Option<String>,
    /// The job whose failures this one sends again.
    pub rerun_of: Option<i64>,
    /// Whether its calls are listed.
    pub prepared: bool,
    /// How far a filtered job's calls are listed: (started_at, id) of the last one.
    pub listed_to: Option<(i64, i64)>,
    pub state: JobState,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const EXPORT_COLS: &str = "id, account_id, user_id, query, rerun_of, prepared, state, error, created_at, \
    started_at, finished_at, list_started_at, list_id";

fn export_from_row(r: &Row<'_, '_>) -> crate::store::db::Result<Export> {
    let state: String = r.get(6)?;
    Ok(Export {
        id: r.get(0)?,
        account: AccountId(r.get(1)?),
        user: UserId(r.get(2)?),
        query: r.get(3)?,
        rerun_of: r.get(4)?,
        prepared: r.get(5)?,
        // Only this module writes states, from the enum.
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        error: r.get(7)?,
        created_at: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        listed_to: match (r.get(11)?, r.get(12)?) {
            (Some(at), Some(id)) => Some((at, id)),
            _ => None,
        },
    })
}

/// A queued export: of a search (`query`, its calls listed when it starts) or of these calls.
pub fn create_export(
    conn: &Connection,
    account: AccountId,
    user: UserId,
    query: Option<&str>,
    call_ids: Option<&[i64]>,
    rerun_of: Option<i64>,
    now: i64,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_exports (account_id, user_id, query, rerun_of, prepared, state, created_at) \
         VALUES (?, ?, ?, ?, ?, 'queued', ?)",
    )?
    .execute(params![account.0, user.0, query, rerun_of, call_ids.is_some(), now])?;
    let id = conn.last_insert_rowid()?;
    if let Some(ids) = call_ids {
        add_calls(conn, id, ids, now)?;
    }
    Ok(id)
}

/// Lists calls in a job (again: a call listed already is left as it is).
pub fn add_calls(conn: &Connection, export: i64, ids: &[i64], now: i64) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO qm_export_calls (export_id, call_id, outcome, updated_at) VALUES (?, ?, 'pending', ?) \
         ON CONFLICT (export_id, call_id) DO NOTHING",
    )?;
    for id in ids {
        stmt.execute(params![export, id, now])?;
    }
    Ok(())
}

/// Lists calls of a filtered job and remembers how far it got (the next turn goes on from there).
pub fn add_listed(conn: &Connection, export: i64, ids: &[(i64, i64)], now: i64) -> Result<(), StoreError> {
    let calls: Vec<i64> = ids.iter().map(|&(_, id)| id).collect();
    add_calls(conn, export, &calls, now)?;
    if let Some(&(at, id)) = ids.last() {
        conn.prepare_cached("UPDATE qm_exports SET list_started_at = ?, list_id = ? WHERE id = ?")?
            .execute(params![at, id, export])?;
    }
    Ok(())
}

pub fn set_prepared(conn: &Connection, export: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE qm_exports SET prepared = 1 WHERE id = ?")?
        .execute([export])?;
    Ok(())
}

pub fn export(conn: &Connection, account: AccountId, id: i64) -> Result<Export, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {EXPORT_COLS} FROM qm_exports WHERE id = ? AND account_id = ?"
    ))?
    .query_row(params![id, account.0], export_from_row)
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// The account's exports, newest first.
pub fn exports(conn: &Connection, account: AccountId, limit: u32) -> Result<Vec<Export>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {EXPORT_COLS} FROM qm_exports WHERE account_id = ? ORDER BY id DESC LIMIT ?"
        ))?
        .query_map(params![account.0, limit], export_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The next open job after `after` in id order (jobs take turns), a queued one marked running.
pub fn next_export(conn: &Connection, after: i64, now: i64) -> Result<Option<Export>, StoreError> {
    let job = conn
        .prepare_cached(&format!(
            "SELECT {EXPORT_COLS} FROM qm_exports WHERE state IN ('queued', 'running') AND id > ? ORDER BY id LIMIT 1"
        ))?
        .query_row([after], export_from_row)
        .optional()?;
    match job {
        Some(job) if job.state == JobState::Queued => Ok(conn
            .prepare_cached(&format!(
                "UPDATE qm_exports SET state = 'running', started_at = ? WHERE id = ? RETURNING {EXPORT_COLS}"
            ))?
            .query_row(params![now, job.id], export_from_row)
            .optional()?),
        other => Ok(other),
    }
}

pub fn export_state(conn: &Connection, id: i64) -> Result<JobState, StoreError> {
    let state: String = conn
        .prepare_cached("SELECT state FROM qm_exports WHERE id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    Ok(JobState::parse(&state).unwrap_or(JobState::Failed))
}

/// The end of a job: done, or failed with the reason (its unsent calls then failed with it). A
/// job cancelled meanwhile stays cancelled.
pub fn finish_export(conn: &Connection, id: i64, failure: Option<&str>, now: i64) -> Result<(), StoreError> {
    let state = if failure.is_some() {
        JobState::Failed
    } else {
        JobState::Done
    };
    let ended = conn
        .prepare_cached(
            "UPDATE qm_exports SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'running'",
        )?
        .execute(params![state.code(), failure, now, id])?;
    // A job cancelled meanwhile keeps its unsent calls pending, for a re-run.
    if let (Some(reason), 1) = (failure, ended) {
        // A call left `sending` by a failed write after its request is in doubt like one
        // interrupted by a crash.
        mark_in_doubt(conn, Some(id), now)?;
        conn.prepare_cached(
            "UPDATE qm_export_calls SET outcome = 'failed', error = ?, updated_at = ? \
             WHERE export_id = ? AND outcome = 'pending'",
        )?
        .execute(params![format!("not sent: {reason}"), now, id])?;
    }
    Ok(())
}

/// Cancels a queued or running job (its unsent calls stay pending, for a re-run).
pub fn cancel_export(conn: &Connection, account: AccountId, id: i64, now: i64) -> Result<Export, StoreError> {
    let job = export(conn, account, id)?;
    if matches!(job.state, JobState::Queued | JobState::Running) {
        conn.prepare_cached("UPDATE qm_exports SET state = 'cancelled', finished_at = ? WHERE id = ?")?
            .execute(params![now, id])?;
    }
    export(conn, account, id)
}

/// After a stop: a call whose request was out when the server went down may or may not have been
/// taken; it is reported failed and marked in doubt for the account, so that no job sends it
/// again on its own — only an explicit re-run does. Returns how many.
pub fn interrupted_sends(conn: &Connection, now: i64, owner: &str) -> Result<usize, StoreError> {
    // Jobs with a call out whose lease no other instance holds: their server stopped or died
    // mid-request (`owner`'s own leases are its earlier life's).
    let cut_off: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT e.id FROM qm_exports e \
             WHERE EXISTS (SELECT 1 FROM qm_export_calls x WHERE x.export_id = e.id AND x.outcome = 'sending') \
             AND NOT {}",
            leases::held_elsewhere("'qm-export:' || CAST(e.id AS TEXT)")
        ))?
        .query_map(params![now, owner], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for export in cut_off {
        n += mark_in_doubt(conn, Some(export), now)?;
    }
    Ok(n)
}

/// Holds back every job of `account` until `until` (the QM system answered 429), on every
/// instance; a longer hold already recorded stays.
pub fn hold(conn: &Connection, account: AccountId, until: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO leases (name, owner, until) VALUES (?, 'qm-system', ?) ON CONFLICT (name) DO UPDATE \
         SET until = CASE WHEN leases.until > excluded.until THEN leases.until ELSE excluded.until END",
    )?
    .execute(params![hold_name(account), until])?;
    Ok(())
}

/// Until when the account's jobs are held back, if they are at `now`.
pub fn held_until(conn: &Connection, account: AccountId, now: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT until FROM leases WHERE name = ? AND until > ?")?
        .query_row(params![hold_name(account), now], |r| r.get(0))
        .optional()?)
}

fn hold_name(account: AccountId) -> String {
    format!("qm-hold:{}", account.0)
}

/// The lease of a job being worked on (`leases.rs`).
pub fn lease_name(id: i64) -> String {
    format!("qm-export:{id}")
}

/// The `sending` calls of one job (or of all), failed and in doubt.
fn mark_in_doubt(conn: &Connection, export: Option<i64>, now: i64) -> Result<usize, StoreError> {
    let reason = "interrupted: the server stopped while this call was being sent, so the QM system may or may \
                  not have taken it; re-run the export to send it again";
    conn.prepare_cached(
        "INSERT INTO qm_export_failures (export_id, call_id, at, status, correlation_id, error) \
         SELECT export_id, call_id, CAST(?1 AS BIGINT), NULL, NULL, CAST(?2 AS TEXT) FROM qm_export_calls \
         WHERE outcome = 'sending' AND (CAST(?3 AS BIGINT) IS NULL OR export_id = ?3)",
    )?
    .execute(params![now, reason, export])?;
    conn.prepare_cached(
        "INSERT INTO qm_deliveries (account_id, call_id, qm_id, export_id, sent_at, confirmed) \
         SELECT e.account_id, x.call_id, '', x.export_id, CAST(?1 AS BIGINT), 0 FROM qm_export_calls x \
         JOIN qm_exports e ON e.id = x.export_id WHERE x.outcome = 'sending' AND (CAST(?2 AS BIGINT) IS NULL OR x.export_id = ?2) \
         ON CONFLICT (account_id, call_id) DO NOTHING",
    )?
    .execute(params![now, export])?;
    Ok(conn
        .prepare_cached(
            "UPDATE qm_export_calls SET outcome = 'failed', status = NULL, correlation_id = NULL, error = ?1, \
             updated_at = ?2 WHERE outcome = 'sending' AND (CAST(?3 AS BIGINT) IS NULL OR export_id = ?3)",
        )?
        .execute(params![reason, now, export])?)
}

/// How many calls of a job stand where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub already_sent: i64,
    pub skipped: i64,
    pub failed: i64,
}

impl Counts {
    pub fn total(&self) -> i64 {
        self.pending + self.sending + self.sent + self.already_sent + self.skipped + self.failed
    }
}

pub fn counts(conn: &Connection, export: i64) -> Result<Counts, StoreError> {
    let mut c = Counts::default();
    let mut stmt =
        conn.prepare_cached("SELECT outcome, COUNT(*) FROM qm_export_calls WHERE export_id = ? GROUP BY outcome")?;
    let rows = stmt.query_map([export], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (outcome, n) = row?;
        match Outcome::parse(&outcome) {
            Some(Outcome::Pending) => c.pending = n,
            Some(Outcome::Sending) => c.sending = n,
            Some(Outcome::Sent) => c.sent = n,
            Some(Outcome::AlreadySent) => c.already_sent = n,
            Some(Outcome::Skipped) => c.skipped = n,
            Some(Outcome::Failed) | None => c.failed += n,
        }
    }
    Ok(c)
}
