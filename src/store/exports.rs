//! Background export jobs: what was asked, their progress and their files' lives.

use crate::store::db::{params, Connection, OptionalExtension, Row};

use super::dialect::Dialect;
use super::{leases, StoreError};
use crate::domain::{AccountId, UserId};
use crate::export::jobs::JobState;

/// One job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub account: AccountId,
    pub user: UserId,
    pub format: String,
    pub lang: String,
    pub tz: String,
    /// Column codes, comma-separated.
    pub columns: String,
    pub delimiter: String,
    /// The search parameters, a JSON array of `[key, value]`.
    pub query: String,
    pub state: JobState,
    pub rows_done: i64,
    pub rows_total: Option<i64>,
    pub attempts: i64,
    pub error: Option<String>,
    pub file_name: Option<String>,
    pub file_bytes: Option<i64>,
    pub file_deleted: bool,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// What a new job needs.
pub struct NewJob<'a> {
    pub account: AccountId,
    pub user: UserId,
    pub format: &'a str,
    pub lang: &'a str,
    pub tz: &'a str,
    pub columns: &'a str,
    pub delimiter: &'a str,
    pub query: &'a str,
    pub now: i64,
}

const COLS: &str = "id, account_id, user_id, format, lang, tz, columns, delimiter, query, state, rows_done, \
    rows_total, attempts, error, file_name, file_bytes, file_deleted, created_at, finished_at, expires_at";

fn job_from_row(r: &Row<'_, '_>) -> crate::store::db::Result<Job> {
    let state: String = r.get(9)?;
    Ok(Job {
        id: r.get(0)?,
        account: AccountId(r.get(1)?),
        user: UserId(r.get(2)?),
        format: r.get(3)?,
        lang: r.get(4)?,
        tz: r.get(5)?,
        columns: r.get(6)?,
        delimiter: r.get(7)?,
        query: r.get(8)?,
        // Only this module writes states, from the enum.
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        rows_done: r.get(10)?,
        rows_total: r.get(11)?,
        attempts: r.get(12)?,
        error: r.get(13)?,
        file_name: r.get(14)?,
        file_bytes: r.get(15)?,
        file_deleted: r.get(16)?,
        created_at: r.get(17)?,
        finished_at: r.get(18)?,
        expires_at: r.get(19)?,
    })
}

pub fn create(conn: &Connection, j: &NewJob<'_>) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO export_jobs (account_id, user_id, format, lang, tz, columns, delimiter, query, state, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
    )?
    .execute(params![j.account.0, j.user.0, j.format, j.lang, j.tz, j.columns, j.delimiter, j.query, j.now])?;
    Ok(conn.last_insert_rowid()?)
}

/// A job, if it is this user's.
pub fn get(conn: &Connection, account: AccountId, user: UserId, id: i64) -> Result<Job, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {COLS} FROM export_jobs WHERE id = ? AND account_id = ? AND user_id = ?"
    ))?
    .query_row(params![id, account.0, user.0], job_from_row)
    .optional()?
    .ok_or(StoreError::NotFound)
}

/// This user's jobs, newest first.
pub fn list(conn: &Connection, account: AccountId, user: UserId, limit: u32) -> Result<Vec<Job>, StoreError> {
    let jobs = conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM export_jobs WHERE account_id = ? AND user_id = ? ORDER BY id DESC LIMIT ?"
        ))?
        .query_map(params![account.0, user.0, limit], job_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}

/// The lease of a running job (`leases.rs`).
pub fn lease_name(id: i64) -> String {
    format!("export:{id}")
}

/// Takes the oldest queued job for `owner`: marks it running and leases it for `ttl_ms`.
pub fn claim_next(conn: &Connection, now: i64, owner: &str, ttl_ms: i64) -> Result<Option<Job>, StoreError> {
    let skip = Dialect::of(conn).skip_locked();
    let job = conn
        .prepare_cached(&format!(
            "UPDATE export_jobs SET state = 'running', attempts = attempts + 1, rows_done = 0, started_at = ? \
             WHERE id = (SELECT id FROM export_jobs WHERE state = 'queued' ORDER BY id LIMIT 1{skip}) RETURNING {COLS}"
        ))?
        .query_row([now], job_from_row)
        .optional()?;
    if let Some(job) = &job {
        leases::claim(conn, &lease_name(job.id), owner, now, ttl_ms)?;
    }
    Ok(job)
}

pub fn state(conn: &Connection, id: i64) -> Result<JobState, StoreError> {
    let state: String = conn
        .prepare_cached("SELECT state FROM export_jobs WHERE id = ?")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)?;
    Ok(JobState::parse(&state).unwrap_or(JobState::Failed))
}

/// Progress of a running job (a cancelled one keeps its state).
pub fn progress(conn: &Connection, id: i64, rows_done: i64, rows_total: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE export_jobs SET rows_done = ?, rows_total = ? WHERE id = ? AND state = 'running'")?
        .execute(params![rows_done, rows_total, id])?;
    Ok(())
}

/// The end of a run: done with its file, or failed with the reason. A job cancelled meanwhile
/// stays cancelled.
pub fn finish(conn: &Connection, id: i64, outcome: Outcome<'_>, now: i64) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE export_jobs SET state = ?, error = ?, file_name = ?, file_bytes = ?, rows_done = COALESCE(?, rows_done), \
         finished_at = ?, expires_at = ? WHERE id = ? AND state = 'running'",
    )?;
    match outcome {
        Outcome::Done {
            file_name,
            bytes,
            rows,
            expires_at,
        } => stmt.execute(params![
            JobState::Done.code(),
            None::<String>,
            file_name,
            bytes,
            rows,
            now,
            expires_at,
            id
        ])?,
        Outcome::Failed(reason) => stmt.execute(params![
            JobState::Failed.code(),
            reason,
            None::<String>,
            None::<i64>,
            None::<i64>,
            now,
            None::<i64>,
            id
        ])?,
    };
    Ok(())
}

pub enum Outcome<'a> {
    Done {
        file_name: &'a str,
        bytes: i64,
        rows: i64,
        expires_at: i64,
    },
    Failed(&'a str),
}

/// Cancels a queued or running job; a finished one is left as it is. Returns the job after.
pub fn cancel(conn: &Connection, account: AccountId, user: UserId, id: i64, now: i64) -> Result<Job, StoreError> {
    let job = get(conn, account, user, id)?;
    if matches!(job.state, JobState::Queued | JobState::Running) {
        conn.prepare_cached("UPDATE export_jobs SET state = 'cancelled', finished_at = ? WHERE id = ?")?
            .execute(params![now, id])?;
    }
    get(conn, account, user, id)
}

/// Marks a finished job's file as gone (deleted on request or when it expired).
pub fn file_deleted(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE export_jobs SET file_deleted = 1 WHERE id = ?")?
        .execute([id])?;
    Ok(())
}

/// Jobs whose server stopped or died while running them (no live lease of another instance;
/// `owner`'s own are from its earlier life) go back to the queue and start again from the first
/// row, unless they were already interrupted `max_attempts` times.
pub fn requeue_interrupted(
    conn: &Connection,
    max_attempts: i64,
    now: i64,
    owner: &str,
) -> Result<(usize, usize), StoreError> {
    let orphan = format!(
        "state = 'running' AND NOT {}",
        leases::held_elsewhere("'export:' || CAST(export_jobs.id AS TEXT)")
    );
    let failed = conn
        .prepare_cached(&format!(
            "UPDATE export_jobs SET state = 'failed', finished_at = ?, \
             error = 'the server stopped during this export ' || attempts || ' times; start it again' \
             WHERE {orphan} AND attempts >= ?"
        ))?
        .execute(params![now, now, owner, max_attempts])?;
    let requeued = conn
        .prepare_cached(&format!(
            "UPDATE export_jobs SET state = 'queued', rows_done = 0 WHERE {orphan}"
        ))?
        .execute(params![now, owner])?;
    Ok((requeued, failed))
}

/// Finished jobs whose file is past its time, or whose file was never kept (failed, cancelled).
pub fn expired_files(conn: &Connection, now: i64) -> Result<Vec<Job>, StoreError> {
    let jobs = conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM export_jobs WHERE file_deleted = 0 AND \
             ((state = 'done' AND expires_at <= ?) OR state IN ('failed', 'cancelled'))"
        ))?
        .query_map([now], job_from_row)?
        .collect::<Result<_, _>>()?;
    Ok(jobs)
}
