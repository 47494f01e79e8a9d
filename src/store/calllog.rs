//! A call's log: the events its record went through, the raw lines the telephony sent, and the
//! read-only links that show them to someone without an account.

use crate::store::db::{params, params_from_iter, Connection, OptionalExtension, Params, Value};
use serde::Serialize;
use utoipa::ToSchema;

use super::batch_rows::Insert;
use super::deferred::Deferred;
use super::view::format_time;
use super::StoreError;
use crate::domain::recording::CallEvent;
use crate::domain::AccountId;
use crate::secrets::token_hash;

/// A call's log events.
static EVENTS: Insert = Insert {
    table: "call_events",
    columns: &["call_id", "at", "event", "source", "detail"],
    tail: "",
};

fn event_row(call: i64, event: CallEvent, source: &str, detail: Option<serde_json::Value>, now: i64) -> Vec<Value> {
    params![call, now, event.code(), source, detail.map(|d| d.to_string())].values()
}

/// Appends one event to a call's log.
pub fn event(
    conn: &Connection,
    call: i64,
    event: CallEvent,
    source: &str,
    detail: Option<serde_json::Value>,
    now: i64,
) -> Result<(), StoreError> {
    EVENTS.execute(conn, params_from_iter(event_row(call, event, source, detail, now)))
}

/// Appends one event to a call's log with the rest of the ingest (`Deferred`).
pub fn event_later(
    rows: &mut Deferred,
    call: i64,
    event: CallEvent,
    source: &str,
    detail: Option<serde_json::Value>,
    now: i64,
) {
    rows.add(&EVENTS, params_from_iter(event_row(call, event, source, detail, now)));
}

/// New raw log lines of a call, or its new version.
static LINES: Insert = Insert {
    table: "call_log_lines",
    columns: &["call_id", "lines"],
    tail: " ON CONFLICT (call_id) DO UPDATE SET lines = excluded.lines",
};

/// Replaces the raw log lines of a call (none: removes them); new lines go with the rest of the
/// ingest (`Deferred`).
pub fn set_lines(conn: &Connection, rows: &mut Deferred, call: i64, lines: Option<&str>) -> Result<(), StoreError> {
    match lines {
        Some(json) => rows.add(&LINES, params![call, json]),
        None => {
            conn.prepare_cached("DELETE FROM call_log_lines WHERE call_id = ?")?
                .execute([call])?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EventView {
    pub at: String,
    pub event: CallEvent,
    /// Who or what caused it: the ingest credential's user, a signed-in user, or `calltrail`.
    pub source: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

/// The whole log of one call.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallLog {
    pub events: Vec<EventView>,
    /// Raw lines from the telephony, as sent.
    pub lines: Vec<String>,
}

/// The log of a call the caller may see.
pub fn log(conn: &Connection, call: i64, tz: Option<chrono_tz::Tz>) -> Result<CallLog, StoreError> {
    let events = conn
        .prepare_cached("SELECT at, event, source, detail FROM call_events WHERE call_id = ? ORDER BY id")?
        .query_map([call], |r| {
            let event: String = r.get(1)?;
            let detail: Option<String> = r.get(3)?;
            Ok(EventView {
                at: format_time(r.get(0)?, tz),
                event: CallEvent::parse(&event).unwrap_or(CallEvent::Updated),
                source: r.get(2)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
            })
        })?
        .collect::<Result<_, _>>()?;
    let lines: Option<String> = conn
        .prepare_cached("SELECT lines FROM call_log_lines WHERE call_id = ?")?
        .query_row([call], |r| r.get(0))
        .optional()?;
    Ok(CallLog {
        events,
        lines: lines.and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default(),
    })
}

/// Stores a new link for `token` (only its hash is kept).
pub fn create_link(
    conn: &Connection,
    account: AccountId,
    call: i64,
    token: &str,
    user: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO log_links (account_id, call_id, token_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![account.0, call, token_hash(token), user, now, expires_at])?;
    Ok(())
}

/// Revokes every live link of a call; returns how many there were.
pub fn revoke_links(conn: &Connection, call: i64, now: i64) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE log_links SET revoked_at = ? WHERE call_id = ? AND revoked_at IS NULL AND expires_at > ?",
        )?
        .execute(params![now, call, now])?)
}

/// What a link token leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// A live link: the call it shows.
    Call { account: AccountId, call: i64 },
    /// A real link that expired or was revoked.
    Ended,
    /// No such link.
    Unknown,
}

pub fn resolve_link(conn: &Connection, token: &str, now: i64) -> Result<LinkTarget, StoreError> {
    let found: Option<(i64, i64, i64, Option<i64>)> = conn
        .prepare_cached("SELECT account_id, call_id, expires_at, revoked_at FROM log_links WHERE token_hash = ?")?
        .query_row([token_hash(token)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(match found {
        None => LinkTarget::Unknown,
        Some((_, _, expires, revoked)) if revoked.is_some() || expires <= now => LinkTarget::Ended,
        Some((account, call, _, _)) => LinkTarget::Call {
            account: AccountId(account),
            call,
        },
    })
}
