//! The calls of a QM export job: due, sent, failed (every attempt kept), and the account's
//! delivery record.

use std::collections::HashMap;

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension};

use crate::domain::qm::Outcome;
use crate::domain::{AccountId, AttemptResult, CallKind};
use crate::store::search::in_list;
use crate::store::StoreError;

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
             WHERE x.export_id = ?1 AND x.call_id > ?2 AND (CAST(?3 AS TEXT) IS NULL OR x.outcome = ?3) ORDER BY x.call_id LIMIT ?4",
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

/// What the account's delivery record says of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Taken by the QM system in that export, then.
    Taken { export: i64, at: i64 },
    /// A request for it was out when that export's server died: it may have been taken.
    InDoubt { export: i64 },
}

pub fn delivery(conn: &Connection, account: AccountId, call: i64) -> Result<Option<Delivery>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT export_id, sent_at, confirmed FROM qm_deliveries WHERE account_id = ? AND call_id = ?")?
        .query_row(params![account.0, call], |r| {
            let (export, at, confirmed): (i64, i64, bool) = (r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(if confirmed {
                Delivery::Taken { export, at }
            } else {
                Delivery::InDoubt { export }
            })
        })
        .optional()?)
}

/// Records that the QM system took the call; in the same transaction as the job's outcome.
/// Only for the call still stored under that id with that external id (retention may have
/// deleted it while its request was out, and a later call may take the id).
pub fn delivered(
    conn: &Connection,
    account: AccountId,
    call: i64,
    external_id: &str,
    qm_id: &str,
    export: i64,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_deliveries (account_id, call_id, qm_id, export_id, sent_at, confirmed) \
         SELECT ?1, id, ?2, ?3, ?4, 1 FROM calls WHERE id = ?5 AND account_id = ?1 AND external_id = ?6 \
         ON CONFLICT (account_id, call_id) DO UPDATE SET qm_id = excluded.qm_id, export_id = excluded.export_id, \
         sent_at = excluded.sent_at, confirmed = 1",
    )?
    .execute(params![account.0, qm_id, export, now, call, external_id])?;
    Ok(())
}

/// An explicit re-run takes these calls out of doubt: sending them is the user's decision.
pub fn clear_doubts(conn: &Connection, account: AccountId, calls: &[i64]) -> Result<(), StoreError> {
    let mut stmt =
        conn.prepare_cached("DELETE FROM qm_deliveries WHERE account_id = ? AND call_id = ? AND confirmed = 0")?;
    for call in calls {
        stmt.execute(params![account.0, call])?;
    }
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
