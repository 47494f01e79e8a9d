//! Recordings as the database knows them: where each call's file is, what is still to fetch, and
//! which stored objects are to be deleted. The files themselves are `recording::storage`'s.

use crate::store::db::{params, Connection, OptionalExtension};

use super::calllog;
use super::dialect::Dialect;
use super::StoreError;
use crate::domain::recording::{CallEvent, RecordingState};
use crate::domain::AccountId;

/// One call's recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub state: RecordingState,
    pub source_url: Option<String>,
    pub object_key: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub sha256: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub stored_at: Option<i64>,
}

/// A file now in storage, to be attached to a call's recording.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub object_key: String,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
}

const COLS: &str = "state, source_url, object_key, content_type, bytes, sha256, attempts, error, stored_at";

fn from_row(r: &crate::store::db::Row<'_, '_>) -> crate::store::db::Result<Recording> {
    let state: String = r.get(0)?;
    Ok(Recording {
        state: RecordingState::parse(&state).unwrap_or(RecordingState::Failed),
        source_url: r.get(1)?,
        object_key: r.get(2)?,
        content_type: r.get(3)?,
        bytes: r.get(4)?,
        sha256: r.get(5)?,
        attempts: r.get(6)?,
        error: r.get(7)?,
        stored_at: r.get(8)?,
    })
}

pub fn get(conn: &Connection, account: AccountId, external_id: &str) -> Result<Option<Recording>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM recordings WHERE account_id = ? AND external_id = ?"
        ))?
        .query_row(params![account.0, external_id], from_row)
        .optional()?)
}

/// The recording of a call by its id (the caller has checked the call is in scope).
pub fn of_call(conn: &Connection, account: AccountId, call_id: i64) -> Result<Option<Recording>, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLS} FROM recordings r WHERE r.account_id = ?1 \
             AND r.external_id = (SELECT external_id FROM calls WHERE id = ?2 AND account_id = ?1)"
        ))?
        .query_row(params![account.0, call_id], from_row)
        .optional()?)
}

/// The call with this external id, if it has arrived.
fn call_id(conn: &Connection, account: AccountId, external_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id FROM calls WHERE account_id = ? AND external_id = ?")?
        .query_row(params![account.0, external_id], |r| r.get(0))
        .optional()?)
}

/// A recording URL arrived with a call. Returns whether a fetch was scheduled: not when the file
/// from this URL is already here, nor when a recording was uploaded (the upload wins), nor for a
/// URL sent again after fetching it failed.
pub fn request(
    conn: &Connection,
    account: AccountId,
    external_id: &str,
    url: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let existing = get(conn, account, external_id)?;
    let fetch = match &existing {
        None => true,
        Some(r) if r.state == RecordingState::Stored => r.source_url.as_deref().is_some_and(|u| u != url),
        Some(r) => r.source_url.as_deref() != Some(url),
    };
    if fetch {
        conn.prepare_cached(
            "INSERT INTO recordings (account_id, external_id, state, source_url, attempts, next_attempt_at, updated_at) \
             VALUES (?1, ?2, 'pending', ?3, 0, ?4, ?4) \
             ON CONFLICT (account_id, external_id) DO UPDATE SET state = 'pending', source_url = ?3, attempts = 0, \
             next_attempt_at = ?4, error = NULL, updated_at = ?4",
        )?
        .execute(params![account.0, external_id, url, now])?;
    }
    Ok(fetch)
}

/// The call's recording URL was cleared: a fetch not yet done is dropped; a stored file stays.
pub fn forget_url(conn: &Connection, account: AccountId, external_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM recordings WHERE account_id = ? AND external_id = ? AND state <> 'stored'")?
        .execute(params![account.0, external_id])?;
    Ok(())
}

/// Keeps the call's `has_recording` in step with its recording row.
pub fn set_has_recording(conn: &Connection, call: i64, has: bool) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE calls SET has_recording = ? WHERE id = ?")?
        .execute(params![has, call])?;
    Ok(())
}

/// Attaches a file now in storage: from an upload (`source_url` None) or a fetch of `source_url`.
/// The file it replaces, if any, is queued for deletion. A fetch whose URL has been replaced
/// meanwhile is not attached (its file is queued for deletion instead). Returns the call's id when
/// the call has arrived.
pub fn attach(
    conn: &Connection,
    account: AccountId,
    external_id: &str,
    file: &StoredFile,
    source_url: Option<&str>,
    source: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let existing = get(conn, account, external_id)?;
    if let Some(url) = source_url {
        let still_wanted = existing
            .as_ref()
            .is_some_and(|r| r.state == RecordingState::Pending && r.source_url.as_deref() == Some(url));
        if !still_wanted {
            queue_deletion(conn, &file.object_key, now)?;
            return Ok(None);
        }
    }
    if let Some(old) = existing.as_ref().and_then(|r| r.object_key.as_deref()) {
        if old != file.object_key {
            queue_deletion(conn, old, now)?;
        }
    }
    conn.prepare_cached(
        "INSERT INTO recordings (account_id, external_id, state, source_url, object_key, content_type, bytes, sha256, \
         attempts, next_attempt_at, error, stored_at, updated_at) \
         VALUES (?1, ?2, 'stored', ?3, ?4, ?5, ?6, ?7, 0, NULL, NULL, ?8, ?8) \
         ON CONFLICT (account_id, external_id) DO UPDATE SET state = 'stored', source_url = ?3, object_key = ?4, \
         content_type = ?5, bytes = ?6, sha256 = ?7, next_attempt_at = NULL, error = NULL, stored_at = ?8, updated_at = ?8",
    )?
    .execute(params![
        account.0,
        external_id,
        source_url,
        file.object_key,
        file.content_type,
        file.bytes,
        file.sha256,
        now
    ])?;
    let call = call_id(conn, account, external_id)?;
    if let Some(id) = call {
        set_has_recording(conn, id, true)?;
        let detail = serde_json::json!({
            "bytes": file.bytes,
            "content_type": file.content_type,
            "sha256": file.sha256,
            "from": source_url.unwrap_or("upload"),
        });
        calllog::event(conn, id, CallEvent::RecordingStored, source, Some(detail), now)?;
    }
    Ok(call)
}

/// A pending recording due to be fetched.
#[derive(Debug, Clone)]
pub struct Due {
    pub account: AccountId,
    pub external_id: String,
    pub url: String,
    pub attempts: i64,
}

/// Up to `limit` recordings whose fetch is due, oldest first. Each is pushed `lease_ms` into the
/// future so that a fetch that dies with its process is tried again later, not lost.
pub fn claim_due(conn: &Connection, now: i64, limit: u32, lease_ms: i64) -> Result<Vec<Due>, StoreError> {
    // Another instance claiming at the same moment skips what this one locked.
    let due: Vec<Due> = conn
        .prepare_cached(&format!(
            "SELECT account_id, external_id, source_url, attempts FROM recordings \
             WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?{}",
            Dialect::of(conn).skip_locked()
        ))?
        .query_map(params![now, limit], |r| {
            Ok(Due {
                account: AccountId(r.get(0)?),
                external_id: r.get(1)?,
                url: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                attempts: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut lease = conn.prepare_cached(
        "UPDATE recordings SET next_attempt_at = ?, attempts = attempts + 1 WHERE account_id = ? AND external_id = ?",
    )?;
    for d in &due {
        lease.execute(params![now + lease_ms, d.account.0, d.external_id])?;
    }
    Ok(due)
}

/// When the next fetch is due (None: nothing pending), so the fetcher can sleep until then.
pub fn next_due(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn.query_row(
        "SELECT MIN(next_attempt_at) FROM recordings WHERE state = 'pending'",
        (),
        |r| r.get(0),
    )?)
}

/// A fetch of `url` failed: try again at `retry_at`, or give up (`retry_at` None).
pub fn fetch_failed(
    conn: &Connection,
    account: AccountId,
    external_id: &str,
    url: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE recordings SET state = ?, next_attempt_at = ?, error = ?, updated_at = ? \
             WHERE account_id = ? AND external_id = ? AND state = 'pending' AND source_url = ?",
        )?
        .execute(params![
            if retry_at.is_some() { "pending" } else { "failed" },
            retry_at,
            error,
            now,
            account.0,
            external_id,
            url
        ])?;
    if changed > 0 {
        if let Some(id) = call_id(conn, account, external_id)? {
            let event = if retry_at.is_some() {
                CallEvent::RecordingRetry
            } else {
                CallEvent::RecordingFailed
            };
            let detail = serde_json::json!({"url": url, "error": error});
            calllog::event(conn, id, event, "calltrail", Some(detail), now)?;
        }
    }
    Ok(())
}

/// Marks an object for deletion after this transaction commits.
pub fn queue_deletion(conn: &Connection, key: &str, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO object_deletions (object_key, queued_at) VALUES (?, ?) ON CONFLICT DO NOTHING")?
        .execute(params![key, now])?;
    Ok(())
}

/// Whether any object waits for deletion (read first, so an empty queue costs no write).
pub fn deletions_queued(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM object_deletions LIMIT 1")?
        .exists(())?)
}

/// Objects queued for deletion that no recording refers to any more (the demo shares files
/// between calls, so a key can still be in use by another call).
pub fn deletable(conn: &Connection, limit: u32) -> Result<Vec<String>, StoreError> {
    let keys: Vec<String> = conn
        .prepare_cached("SELECT object_key FROM object_deletions ORDER BY queued_at LIMIT ?")?
        .query_map([limit], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut used = conn.prepare_cached("SELECT 1 FROM recordings WHERE object_key = ?")?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        if used.exists([&key])? {
            conn.prepare_cached("DELETE FROM object_deletions WHERE object_key = ?")?
                .execute([&key])?;
        } else {
            out.push(key);
        }
    }
    Ok(out)
}

/// The object is gone from storage.
pub fn deleted(conn: &Connection, key: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM object_deletions WHERE object_key = ?")?
        .execute([key])?;
    Ok(())
}

/// The account and external id of a call (for links that name only its id).
pub fn call_identity(conn: &Connection, call: i64) -> Result<Option<(AccountId, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT account_id, external_id FROM calls WHERE id = ?")?
        .query_row([call], |r| Ok((AccountId(r.get(0)?), r.get(1)?)))
        .optional()?)
}
