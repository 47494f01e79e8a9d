//! The QM integration's rows: each account's settings, the operators imported, export jobs,
//! the outcome of every call of a job, every failed attempt, and the delivery record that keeps
//! a call from being sent twice.

use std::collections::HashMap;

use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::search::in_list;
use super::StoreError;
use crate::domain::qm::{OperatorChannel, Outcome};
use crate::domain::{AccountId, AttemptResult, CallKind, UserId};
use crate::export::jobs::JobState;

/// One account's integration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub base_url: String,
    /// Sealed with the server's secret key (`secrets::SealingKey`).
    pub api_key_sealed: Option<String>,
    /// The key's last characters, to show it masked.
    pub api_key_hint: Option<String>,
    pub language_code: String,
    pub operator_channel: OperatorChannel,
    /// When the QM system last accepted the credentials.
    pub connected_at: Option<i64>,
    pub active: bool,
    pub updated_at: i64,
}

pub fn integration(conn: &Connection, account: AccountId) -> Result<Option<Integration>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT base_url, api_key_sealed, api_key_hint, language_code, operator_channel, connected_at, active, \
             updated_at FROM qm_integrations WHERE account_id = ?",
        )?
        .query_row([account.0], |r| {
            let channel: String = r.get(4)?;
            Ok(Integration {
                base_url: r.get(0)?,
                api_key_sealed: r.get(1)?,
                api_key_hint: r.get(2)?,
                language_code: r.get(3)?,
                operator_channel: OperatorChannel::parse(&channel).unwrap_or_default(),
                connected_at: r.get(5)?,
                active: r.get(6)?,
                updated_at: r.get(7)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// Saves the integration unless it changed since it was read (`read_at`: its `updated_at` then,
/// 0 for none): a deactivation made while a credential check ran is not overwritten.
pub fn save_integration(
    conn: &Connection,
    account: AccountId,
    i: &Integration,
    read_at: i64,
) -> Result<(), StoreError> {
    let now_at = integration(conn, account)?.map_or(0, |x| x.updated_at);
    if now_at != read_at {
        return Err(StoreError::Conflict(
            "the QM settings were changed meanwhile; load them again and retry".into(),
        ));
    }
    put_integration(conn, account, i)
}

fn put_integration(conn: &Connection, account: AccountId, i: &Integration) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_integrations (account_id, base_url, api_key_sealed, api_key_hint, language_code, \
         operator_channel, connected_at, active, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id) DO UPDATE SET base_url = excluded.base_url, api_key_sealed = excluded.api_key_sealed, \
         api_key_hint = excluded.api_key_hint, language_code = excluded.language_code, \
         operator_channel = excluded.operator_channel, connected_at = excluded.connected_at, \
         active = excluded.active, updated_at = excluded.updated_at",
    )?
    .execute(params![
        account.0,
        i.base_url,
        i.api_key_sealed,
        i.api_key_hint,
        i.language_code,
        i.operator_channel.code(),
        i.connected_at,
        i.active,
        i.updated_at
    ])?;
    Ok(())
}

/// Forgets which operators were imported: another QM system knows none of them.
pub fn forget_operators(conn: &Connection, account: AccountId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM qm_operators WHERE account_id = ?")?
        .execute([account.0])?;
    Ok(())
}

/// The name an operator was last imported with, if they were.
pub fn imported_operator(conn: &Connection, account: AccountId, user: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name FROM qm_operators WHERE account_id = ? AND user_id = ?")?
        .query_row(params![account.0, user], |r| r.get(0))
        .optional()?)
}

pub fn operator_imported(
    conn: &Connection,
    account: AccountId,
    user: i64,
    qm_id: &str,
    name: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_operators (account_id, user_id, qm_id, name, imported_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, user_id) DO UPDATE SET qm_id = excluded.qm_id, name = excluded.name, \
         imported_at = excluded.imported_at",
    )?
    .execute(params![account.0, user, qm_id, name, now])?;
    Ok(())
}

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
    pub state: JobState,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const EXPORT_COLS: &str =
    "id, account_id, user_id, query, rerun_of, prepared, state, error, created_at, started_at, finished_at";

fn export_from_row(r: &Row<'_>) -> rusqlite::Result<Export> {
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
    let id = conn.last_insert_rowid();
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
    conn.prepare_cached(
        "UPDATE qm_exports SET state = ?, error = ?, finished_at = ? WHERE id = ? AND state = 'running'",
    )?
    .execute(params![state.code(), failure, now, id])?;
    if let Some(reason) = failure {
        // A call left `sending` by a failed write after its request is in doubt like one
        // interrupted by a crash: reported failed, sent again only by a re-run.
        conn.prepare_cached(
            "UPDATE qm_export_calls SET outcome = 'failed', error = ?, updated_at = ? \
             WHERE export_id = ? AND outcome IN ('pending', 'sending')",
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
/// taken; it is reported failed (a re-run sends it) instead of being sent again on our own.
/// Returns how many.
pub fn interrupted_sends(conn: &Connection, now: i64) -> Result<usize, StoreError> {
    let reason = "interrupted: the server stopped while this call was being sent, so the QM system may or may \
                  not have taken it; re-run the export to send it again";
    conn.prepare_cached(
        "INSERT INTO qm_export_failures (export_id, call_id, at, status, correlation_id, error) \
         SELECT export_id, call_id, ?, NULL, NULL, ? FROM qm_export_calls WHERE outcome = 'sending'",
    )?
    .execute(params![now, reason])?;
    Ok(conn
        .prepare_cached(
            "UPDATE qm_export_calls SET outcome = 'failed', status = NULL, correlation_id = NULL, error = ?, \
             updated_at = ? WHERE outcome = 'sending'",
        )?
        .execute(params![reason, now])?)
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

/// One call of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportCall {
    pub call_id: i64,
    /// None once the call is deleted.
    pub external_id: Option<String>,
    pub outcome: Outcome,
    pub attempts: i64,
    pub status: Option<i64>,
    pub correlation_id: Option<String>,
    pub error: Option<String>,
    pub updated_at: i64,
}

/// A job's calls in call id order after `after`, of one outcome or all.
pub fn export_calls(
    conn: &Connection,
    export: i64,
    outcome: Option<Outcome>,
    after: i64,
    limit: u32,
) -> Result<Vec<ExportCall>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT x.call_id, x.outcome, x.attempts, x.status, x.correlation_id, x.error, x.updated_at, c.external_id \
             FROM qm_export_calls x LEFT JOIN calls c ON c.id = x.call_id \
             WHERE x.export_id = ?1 AND x.call_id > ?2 AND (?3 IS NULL OR x.outcome = ?3) ORDER BY x.call_id LIMIT ?4",
        )?
        .query_map(params![export, after, outcome.map(|o| o.code()), limit], |r| {
            let outcome: String = r.get(1)?;
            Ok(ExportCall {
                call_id: r.get(0)?,
                external_id: r.get(7)?,
                outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failed),
                attempts: r.get(2)?,
                status: r.get(3)?,
                correlation_id: r.get(4)?,
                error: r.get(5)?,
                updated_at: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub at: i64,
    pub status: Option<i64>,
    pub correlation_id: Option<String>,
    pub error: String,
}

/// The failed attempts of these calls of a job, oldest first.
pub fn failures(conn: &Connection, export: i64, calls: &[i64]) -> Result<HashMap<i64, Vec<Failure>>, StoreError> {
    let mut out: HashMap<i64, Vec<Failure>> = HashMap::new();
    for chunk in calls.chunks(500) {
        let sql = format!(
            "SELECT call_id, at, status, correlation_id, error FROM qm_export_failures \
             WHERE export_id = ? AND {} ORDER BY id",
            in_list("call_id", chunk.len())
        );
        let mut args = vec![export];
        args.extend_from_slice(chunk);
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Failure {
                    at: r.get(1)?,
                    status: r.get(2)?,
                    correlation_id: r.get(3)?,
                    error: r.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (call, failure) = row?;
            out.entry(call).or_default().push(failure);
        }
    }
    Ok(out)
}

/// A pending call of a job whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub call: i64,
    /// Requests made for it so far …
    pub attempts: i64,
    /// … of which the QM system throttled this many.
    pub throttled: i64,
}

/// Pending calls of a job whose time has come, soonest first.
pub fn due_calls(conn: &Connection, export: i64, now: i64, limit: u32) -> Result<Vec<Due>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT call_id, attempts, throttled FROM qm_export_calls \
             WHERE export_id = ? AND outcome = 'pending' AND next_at <= ? ORDER BY next_at, call_id LIMIT ?",
        )?
        .query_map(params![export, now, limit], |r| {
            Ok(Due {
                call: r.get(0)?,
                attempts: r.get(1)?,
                throttled: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// When the next pending call of a job is due (None: nothing is pending).
pub fn next_due_at(conn: &Connection, export: i64) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT MIN(next_at) FROM qm_export_calls WHERE export_id = ? AND outcome = 'pending'")?
        .query_row([export], |r| r.get(0))?)
}

/// What happened to one call of a job.
#[derive(Debug, Clone, Default)]
pub struct Attempt<'a> {
    pub status: Option<i64>,
    pub correlation_id: Option<&'a str>,
    pub error: Option<&'a str>,
    /// For a call left pending: when to try again.
    pub next_at: i64,
    /// A request was made.
    pub counted: bool,
    /// … and throttled (429).
    pub throttled: bool,
    /// … and it failed: kept in the call's failures.
    pub failure: bool,
}

pub fn set_outcome(
    conn: &Connection,
    export: i64,
    call: i64,
    outcome: Outcome,
    a: &Attempt<'_>,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE qm_export_calls SET outcome = ?, attempts = attempts + ?, throttled = throttled + ?, status = ?, \
         correlation_id = ?, error = ?, next_at = ?, updated_at = ? WHERE export_id = ? AND call_id = ?",
    )?
    .execute(params![
        outcome.code(),
        i64::from(a.counted),
        i64::from(a.throttled),
        a.status,
        a.correlation_id,
        a.error,
        a.next_at,
        now,
        export,
        call
    ])?;
    if a.failure {
        if let Some(error) = a.error {
            conn.prepare_cached(
                "INSERT INTO qm_export_failures (export_id, call_id, at, status, correlation_id, error) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![export, call, now, a.status, a.correlation_id, error])?;
        }
    }
    Ok(())
}

/// When and in which job the QM system took this call, if it did.
pub fn delivery(conn: &Connection, account: AccountId, call: i64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT export_id, sent_at FROM qm_deliveries WHERE account_id = ? AND call_id = ?")?
        .query_row(params![account.0, call], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Records that the QM system took the call; in the same transaction as the job's outcome.
pub fn delivered(
    conn: &Connection,
    account: AccountId,
    call: i64,
    qm_id: &str,
    export: i64,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_deliveries (account_id, call_id, qm_id, export_id, sent_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, call_id) DO NOTHING",
    )?
    .execute(params![account.0, call, qm_id, export, now])?;
    Ok(())
}

/// The calls a re-run of `export` sends: those that failed, and those a stopped job never sent.
pub fn unsent_calls(conn: &Connection, export: i64) -> Result<Vec<i64>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT call_id FROM qm_export_calls WHERE export_id = ? AND outcome IN ('failed', 'pending') ORDER BY call_id",
        )?
        .query_map([export], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// What the QM system is told about one call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    pub external_id: String,
    pub kind: CallKind,
    pub from: String,
    pub to: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub ring_seconds: Option<i64>,
    pub talk_seconds: i64,
    pub result: Option<AttemptResult>,
    /// (user id, login, name)
    pub operator: Option<(i64, String, String)>,
    pub has_recording: bool,
}

pub fn call_facts(conn: &Connection, account: AccountId, call: i64) -> Result<Option<CallFacts>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT c.external_id, c.kind, c.from_number, c.to_number, c.started_at, c.ended_at, c.ring_seconds, \
             c.talk_seconds, c.result, u.id, u.login, u.name, c.has_recording \
             FROM calls c LEFT JOIN users u ON u.id = c.operator_id WHERE c.id = ? AND c.account_id = ?",
        )?
        .query_row(params![call, account.0], |r| {
            let kind: String = r.get(1)?;
            let result: Option<String> = r.get(8)?;
            let operator = match r.get::<_, Option<i64>>(9)? {
                Some(id) => Some((id, r.get(10)?, r.get(11)?)),
                None => None,
            };
            Ok(CallFacts {
                external_id: r.get(0)?,
                kind: CallKind::parse(&kind).unwrap_or(CallKind::Incoming),
                from: r.get(2)?,
                to: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
                ring_seconds: r.get(6)?,
                talk_seconds: r.get(7)?,
                result: result.as_deref().and_then(AttemptResult::parse),
                operator,
                has_recording: r.get(12)?,
            })
        })
        .optional()?)
}
