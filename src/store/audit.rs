//! The audit log: written inside the same transaction as the change it records.

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::now_ms;
use super::StoreError;
use crate::domain::audit::AuditAction;
use crate::domain::{AccountId, Principal};

/// Who acted and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account: Option<AccountId>,
    pub user: Option<i64>,
    pub login: Option<String>,
    pub address: Option<String>,
}

impl Actor {
    pub fn of(p: &Principal, address: Option<String>) -> Actor {
        Actor {
            account: Some(p.account_id),
            user: Some(p.user_id.0),
            login: Some(p.login.clone()),
            address,
        }
    }

    /// calltrail itself (the command line, a background task), named in parentheses.
    pub fn system(account: AccountId, name: &str) -> Actor {
        Actor {
            account: Some(account),
            user: None,
            login: Some(format!("({name})")),
            address: None,
        }
    }

    /// The command line, acting on an account.
    pub fn command_line(account: AccountId) -> Actor {
        Actor::system(account, "command line")
    }
}

pub fn record(
    conn: &Connection,
    actor: &Actor,
    action: AuditAction,
    target: Option<&str>,
    detail: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit_log (account_id, at, actor_id, actor_login, action, target, detail, address) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        actor.account.map(|a| a.0),
        now_ms(),
        actor.user,
        actor.login,
        action.code(),
        target,
        detail.map(|d| d.to_string()),
        actor.address,
    ])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_login: Option<String>,
    pub action: AuditAction,
    pub target: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Option<serde_json::Value>,
    pub address: Option<String>,
}

/// A page of the account's audit log, newest first, before the entry id `before`.
pub fn list(
    conn: &Connection,
    account: AccountId,
    action: Option<AuditAction>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut sql = String::from(
        "SELECT id, at, actor_id, actor_login, action, target, detail, address FROM audit_log WHERE account_id = ?",
    );
    let mut args = vec![Value::Integer(account.0)];
    if let Some(a) = action {
        sql.push_str(" AND action = ?");
        args.push(Value::Text(a.code().into()));
    }
    if let Some(b) = before {
        sql.push_str(" AND id < ?");
        args.push(Value::Integer(b));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
    let rows = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), |r| {
            let code: String = r.get(4)?;
            let action = AuditAction::parse(&code).ok_or_else(|| crate::store::db::Error::Conversion {
                column: "action".into(),
                message: format!("unknown audit action {code:?}"),
            })?;
            let detail: Option<String> = r.get(6)?;
            Ok(AuditEntry {
                id: r.get::<_, i64>(0)?.to_string(),
                at: super::view::format_time(r.get(1)?, None),
                actor_id: r.get::<_, Option<i64>>(2)?.map(|i| i.to_string()),
                actor_login: r.get(3)?,
                action,
                target: r.get(5)?,
                detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
                address: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// How many failed sign-ins are allowed within a window.
#[derive(Debug, Clone, Copy)]
pub struct SignInLimits {
    pub per_login: u32,
    pub per_address: u32,
    pub window_ms: i64,
}

/// Starts a sign-in attempt: unless the login (in its account) or the address is over its limit,
/// the attempt is recorded as failed *before* the password is checked, and its row id returned;
/// otherwise the seconds to wait. The check and the record are one transaction of the single
/// writer, so a burst of parallel attempts cannot all pass the check.
pub fn begin_sign_in(conn: &Connection, actor: &Actor, limits: SignInLimits) -> Result<Result<i64, u64>, StoreError> {
    let now = now_ms();
    let since = now - limits.window_ms;
    let login = actor.login.as_deref().unwrap_or("");
    // A login's failures count from its last success, in its account (NULL: no such login).
    let last_ok: Option<i64> = conn
        .prepare_cached(
            "SELECT max(at) FROM audit_log WHERE action = 'login_ok' AND actor_login = ? AND account_id IS NOT DISTINCT FROM ? AND at >= ?",
        )?
        .query_row(params![login, actor.account.map(|a| a.0), since], |r| r.get(0))?;
    let (by_login, oldest_login): (i64, Option<i64>) = conn
        .prepare_cached(
            "SELECT count(*), min(at) FROM audit_log WHERE action = 'login_failed' AND actor_login = ? \
             AND account_id IS NOT DISTINCT FROM ? AND at >= ?",
        )?
        .query_row(
            params![login, actor.account.map(|a| a.0), last_ok.map_or(since, |t| t + 1)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    let (by_address, oldest_address): (i64, Option<i64>) = match &actor.address {
        Some(address) => conn
            .prepare_cached(
                "SELECT count(*), min(at) FROM audit_log WHERE action = 'login_failed' AND address = ? AND at >= ?",
            )?
            .query_row(params![address, since], |r| Ok((r.get(0)?, r.get(1)?)))?,
        None => (0, None),
    };
    for (failures, oldest, limit) in [
        (by_login, oldest_login, limits.per_login),
        (by_address, oldest_address, limits.per_address),
    ] {
        if failures >= i64::from(limit) {
            let wait_ms = oldest.unwrap_or(now) + limits.window_ms - now;
            return Ok(Err((wait_ms.max(1000) / 1000) as u64));
        }
    }
    record(conn, actor, AuditAction::LoginFailed, None, None)?;
    Ok(Ok(conn.last_insert_rowid()?))
}

/// Turns a started attempt into a success of `user`.
pub fn sign_in_succeeded(conn: &Connection, attempt: i64, user: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_log SET action = 'login_ok', actor_id = ? WHERE id = ?")?
        .execute(params![user, attempt])?;
    Ok(())
}

/// Says why a started attempt failed although the password was right (`blocked`).
pub fn sign_in_refused(conn: &Connection, attempt: i64, reason: &str) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE audit_log SET detail = ? WHERE id = ?")?
        .execute(params![serde_json::json!({ "reason": reason }).to_string(), attempt])?;
    Ok(())
}
