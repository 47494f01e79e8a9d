//! Ingestion health: per source, what came in and when (counted in the transaction that stored
//! it), and what was refused, kept (the last `KEPT` per source, payloads cut at `MAX_PAYLOAD`)
//! for inspection and replay.

use crate::store::db::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::AccountId;

/// Refusals kept per source.
pub const KEPT: i64 = 100;
/// Bytes of a refused payload kept.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// What one request or import did, by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u32,
    pub updated: u32,
    pub duplicates: u32,
    pub pending: u32,
    pub skipped: u32,
    pub rejected: u32,
}

pub fn count(conn: &Connection, account: AccountId, source: &str, c: Counts, now: i64) -> Result<(), StoreError> {
    let last_rejected = (c.rejected > 0).then_some(now);
    conn.prepare_cached(
        "INSERT INTO ingest_sources (account_id, source, accepted, updated, duplicates, pending, skipped, rejected, \
         last_seen_at, last_rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, source) DO UPDATE SET \
         accepted = ingest_sources.accepted + excluded.accepted, updated = ingest_sources.updated + excluded.updated, \
         duplicates = ingest_sources.duplicates + excluded.duplicates, pending = ingest_sources.pending + excluded.pending, \
         skipped = ingest_sources.skipped + excluded.skipped, rejected = ingest_sources.rejected + excluded.rejected, \
         last_seen_at = excluded.last_seen_at, \
         last_rejected_at = COALESCE(excluded.last_rejected_at, ingest_sources.last_rejected_at)",
    )?
    .execute(params![
        account.0,
        source,
        c.accepted,
        c.updated,
        c.duplicates,
        c.pending,
        c.skipped,
        c.rejected,
        now,
        last_rejected
    ])?;
    Ok(())
}

/// A refusal as it is recorded.
#[derive(Debug, Clone)]
pub struct NewRejection<'a> {
    pub source: &'a str,
    pub reason: &'a str,
    pub field: Option<&'a str>,
    pub content_type: Option<&'a str>,
    /// None: nothing to replay (a line of a file import names its file and line instead).
    pub payload: Option<&'a [u8]>,
}

/// Records a refusal, counts it, and forgets the source's oldest beyond `KEPT`.
pub fn reject(conn: &Connection, account: AccountId, r: &NewRejection, now: i64) -> Result<i64, StoreError> {
    let (payload, truncated) = match r.payload {
        Some(p) => (Some(p[..p.len().min(MAX_PAYLOAD)].to_vec()), p.len() > MAX_PAYLOAD),
        None => (None, false),
    };
    let id = conn.insert_id(
        "INSERT INTO ingest_rejections (account_id, source, at, reason, field, content_type, payload, truncated) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            account.0,
            r.source,
            now,
            r.reason,
            r.field,
            r.content_type,
            payload,
            truncated
        ],
    )?;
    conn.prepare_cached(
        "DELETE FROM ingest_rejections WHERE account_id = ? AND source = ? AND id <= \
         (SELECT id FROM ingest_rejections WHERE account_id = ? AND source = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
    )?
    .execute(params![account.0, r.source, account.0, r.source, KEPT])?;
    let counts = Counts {
        rejected: 1,
        ..Counts::default()
    };
    count(conn, account, r.source, counts, now)?;
    Ok(id)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub source: String,
    pub counts: [i64; 6],
    pub last_seen_at: i64,
    pub last_rejected_at: Option<i64>,
}

pub fn sources(conn: &Connection, account: AccountId) -> Result<Vec<Source>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT source, accepted, updated, duplicates, pending, skipped, rejected, last_seen_at, last_rejected_at \
         FROM ingest_sources WHERE account_id = ? ORDER BY source",
    )?;
    let rows = stmt.query_map([account.0], |r| {
        Ok(Source {
            source: r.get(0)?,
            counts: [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
            last_seen_at: r.get(7)?,
            last_rejected_at: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub id: i64,
    pub source: String,
    pub at: i64,
    pub reason: String,
    pub field: Option<String>,
    pub content_type: Option<String>,
    pub payload: Option<Vec<u8>>,
    pub truncated: bool,
    pub replayed_at: Option<i64>,
    pub replay_outcome: Option<String>,
}

const REJECTION_COLS: &str =
    "id, source, at, reason, field, content_type, payload, truncated, replayed_at, replay_outcome";

fn rejection_row(r: &crate::store::db::Row) -> crate::store::db::Result<Rejection> {
    Ok(Rejection {
        id: r.get(0)?,
        source: r.get(1)?,
        at: r.get(2)?,
        reason: r.get(3)?,
        field: r.get(4)?,
        content_type: r.get(5)?,
        payload: r.get(6)?,
        truncated: r.get::<_, i64>(7)? != 0,
        replayed_at: r.get(8)?,
        replay_outcome: r.get(9)?,
    })
}

/// The newest refusals of the account, newest first.
pub fn rejections(conn: &Connection, account: AccountId, limit: i64) -> Result<Vec<Rejection>, StoreError> {
    let sql = format!("SELECT {REJECTION_COLS} FROM ingest_rejections WHERE account_id = ? ORDER BY id DESC LIMIT ?");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![account.0, limit], rejection_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn rejection(conn: &Connection, account: AccountId, id: i64) -> Result<Rejection, StoreError> {
    let sql = format!("SELECT {REJECTION_COLS} FROM ingest_rejections WHERE account_id = ? AND id = ?");
    conn.prepare_cached(&sql)?
        .query_row(params![account.0, id], rejection_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub fn replayed(conn: &Connection, account: AccountId, id: i64, outcome: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE ingest_rejections SET replayed_at = ?, replay_outcome = ? WHERE account_id = ? AND id = ?",
    )?
    .execute(params![now, outcome, account.0, id])?;
    Ok(())
}
