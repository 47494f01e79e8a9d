//! Accounts, users, API tokens and instance secrets.

use crate::store::db::{params, Connection, OptionalExtension};
use rand::RngCore;

use super::StoreError;
use crate::domain::recording::RecordingAccess;
use crate::domain::{AccountId, Credential, FieldError, Principal, Role, TokenScope, UserId};

/// The account a fresh data folder starts with.
pub const DEFAULT_ACCOUNT: &str = "default";

/// The settings of an account that shape its call history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub timezone: String,
    pub currency: String,
    pub call_history_access: bool,
    /// Calls older than this many days are deleted (None: kept forever).
    pub keep_calls_days: Option<u32>,
    /// Recordings of calls older than this many days are deleted (None: kept with the call).
    pub keep_recordings_days: Option<u32>,
    /// What supervisors and operators may do with recordings.
    pub restricted_recordings: RecordingAccess,
}

/// A change to an account's settings: `None` leaves a setting as it is; for the retention
/// periods `Some(None)` means "keep forever".
#[derive(Debug, Clone, Default)]
pub struct AccountChange<'a> {
    pub timezone: Option<&'a str>,
    pub currency: Option<&'a str>,
    pub call_history_access: Option<bool>,
    pub keep_calls_days: Option<Option<u32>>,
    pub keep_recordings_days: Option<Option<u32>>,
    pub restricted_recordings: Option<RecordingAccess>,
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub fn ensure_default_account(conn: &Connection) -> Result<(), StoreError> {
    ensure_account(conn, DEFAULT_ACCOUNT).map(|_| ())
}

/// A random 32-byte secret kept in the database, created on first use.
pub fn secret(conn: &Connection, name: &str) -> crate::store::db::Result<[u8; 32]> {
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM secrets WHERE name = ?", [name], |r| r.get(0))
        .optional()?;
    if let Some(v) = stored.and_then(|v| <[u8; 32]>::try_from(v).ok()) {
        return Ok(v);
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    conn.execute(
        "INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        params![name, key.to_vec()],
    )?;
    Ok(key)
}

fn account_from_row(r: &crate::store::db::Row<'_, '_>) -> crate::store::db::Result<Account> {
    Ok(Account {
        id: AccountId(r.get(0)?),
        name: r.get(1)?,
        timezone: r.get(2)?,
        currency: r.get(3)?,
        call_history_access: r.get(4)?,
        keep_calls_days: r.get(5)?,
        keep_recordings_days: r.get(6)?,
        restricted_recordings: RecordingAccess::parse(&r.get::<_, String>(7)?).unwrap_or(RecordingAccess::Play),
    })
}

const ACCOUNT_COLS: &str =
    "id, name, timezone, currency, call_history_access, keep_calls_days, keep_recordings_days, restricted_recordings";

/// Every account (few per installation), for the background tasks.
pub fn accounts(conn: &Connection) -> Result<Vec<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let all = stmt.query_map((), account_from_row)?.collect::<Result<_, _>>()?;
    Ok(all)
}

pub fn account_by_name(conn: &Connection, name: &str) -> Result<Option<Account>, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE name = ?");
    Ok(conn.query_row(&sql, [name], account_from_row).optional()?)
}

pub fn account(conn: &Connection, id: AccountId) -> Result<Account, StoreError> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = ?");
    conn.query_row(&sql, [id.0], account_from_row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Finds the account by name, creating it if it does not exist yet.
pub fn ensure_account(conn: &Connection, name: &str) -> Result<Account, StoreError> {
    if name.trim().is_empty() || name.len() > 64 {
        return Err(StoreError::Invalid(FieldError::new(
            "account",
            "account names are 1 to 64 characters",
        )));
    }
    conn.execute(
        "INSERT INTO accounts (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        params![name, now_ms()],
    )?;
    account_by_name(conn, name)?.ok_or(StoreError::NotFound)
}

/// Changes the settings that are given.
pub fn update_account(conn: &Connection, id: AccountId, c: &AccountChange<'_>) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE accounts SET timezone = COALESCE(?, timezone), currency = COALESCE(?, currency), \
         call_history_access = COALESCE(?, call_history_access), restricted_recordings = COALESCE(?, restricted_recordings) \
         WHERE id = ?",
        params![
            c.timezone,
            c.currency,
            c.call_history_access,
            c.restricted_recordings.map(RecordingAccess::code),
            id.0
        ],
    )?;
    if let Some(days) = c.keep_calls_days {
        conn.execute(
            "UPDATE accounts SET keep_calls_days = ? WHERE id = ?",
            params![days, id.0],
        )?;
    }
    if let Some(days) = c.keep_recordings_days {
        conn.execute(
            "UPDATE accounts SET keep_recordings_days = ? WHERE id = ?",
            params![days, id.0],
        )?;
    }
    Ok(())
}

pub fn set_account_timezone(conn: &Connection, id: AccountId, tz: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE accounts SET timezone = ? WHERE id = ?", params![tz, id.0])?;
    Ok(())
}

/// A new user who can log in (or, with no password, an operator known from call records).
pub struct NewUser<'a> {
    pub account_id: AccountId,
    pub login: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: Option<&'a str>,
}

/// Creates a user; a login already taken in the account is a conflict. Operators that the
/// telephony named before they got an account (no password yet) are upgraded in place.
pub fn create_user(conn: &Connection, u: &NewUser<'_>) -> Result<UserId, StoreError> {
    if u.login.trim().is_empty() || u.login.len() > 128 {
        return Err(StoreError::Invalid(FieldError::new(
            "login",
            "logins are 1 to 128 characters",
        )));
    }
    let existing: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT id, password_hash FROM users WHERE account_id = ? AND login = ?",
            params![u.account_id.0, u.login],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((id, None)) if is_operator(conn, id)? => {
            conn.execute(
                "UPDATE users SET name = ?, role = ?, password_hash = ? WHERE id = ?",
                params![u.name, u.role.code(), u.password_hash, id],
            )?;
            Ok(UserId(id))
        }
        Some(_) => Err(StoreError::Conflict(format!("login {:?} is taken", u.login))),
        None => {
            conn.execute(
                "INSERT INTO users (account_id, login, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                params![u.account_id.0, u.login, u.name, u.role.code(), u.password_hash, now_ms()],
            )?;
            Ok(UserId(conn.last_insert_rowid()?))
        }
    }
}

fn is_operator(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    let role: String = conn.query_row("SELECT role FROM users WHERE id = ?", [id], |r| r.get(0))?;
    Ok(role == Role::Operator.code())
}

/// Whether a credential still stands: the session has not ended (signed out, idle, expired) or
/// the token has not been revoked.
pub fn credential_live(conn: &Connection, credential: &Credential, now: i64, idle_ms: i64) -> Result<bool, StoreError> {
    let live = match credential {
        Credential::Session { id } => conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sessions WHERE id = ? AND expires_at > ? AND last_seen_at > ?)",
            )?
            .query_row(params![id, now, now - idle_ms], |r| r.get(0))?,
        Credential::Token { id, .. } => conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM api_tokens WHERE id = ? AND revoked_at IS NULL)")?
            .query_row([id], |r| r.get(0))?,
        // A job outlives the request that started it; its user's block still stops it (scope).
        Credential::Job { .. } => true,
    };
    Ok(live)
}

pub fn user_by_login(conn: &Connection, account: AccountId, login: &str) -> Result<Option<UserId>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id FROM users WHERE account_id = ? AND login = ?",
            params![account.0, login],
            |r| r.get(0).map(UserId),
        )
        .optional()?)
}

/// Stores a token by its hash.
pub fn create_token(
    conn: &Connection,
    user: UserId,
    name: &str,
    scope: TokenScope,
    hash: &[u8],
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_tokens (user_id, name, scope, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        params![user.0, name, scope.code(), hash, now_ms()],
    )?;
    Ok(())
}

/// Revokes a user's live tokens (only those called `name`, when given); returns how many.
pub fn revoke_tokens(conn: &Connection, user: UserId, name: Option<&str>) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND (CAST(?3 AS TEXT) IS NULL OR name = ?3)",
        params![now_ms(), user.0, name],
    )?)
}

/// The principal a token hash stands for, if the token is live and its user not blocked.
pub fn principal_for_token(conn: &Connection, hash: &[u8]) -> Result<Option<Principal>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.account_id, u.id, u.login, u.role, t.scope, t.id FROM api_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.blocked = 0",
    )?;
    let row = stmt
        .query_row([hash], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    Ok(row.and_then(|(account, user, login, role, scope, id)| {
        Some(Principal {
            account_id: AccountId(account),
            user_id: UserId(user),
            login,
            role: Role::parse(&role)?,
            credential: Credential::Token {
                id,
                scope: TokenScope::parse(&scope)?,
            },
        })
    }))
}

/// A user who might be signing in with a login.
#[derive(Debug, Clone)]
pub struct LoginCandidate {
    pub user_id: UserId,
    pub account_id: AccountId,
    pub password_hash: Option<String>,
    pub blocked: bool,
}

/// The users with this login that can sign in (have a password), in the named account or in any.
pub fn login_candidates(
    conn: &Connection,
    login: &str,
    account: Option<&str>,
) -> Result<Vec<LoginCandidate>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT u.id, u.account_id, u.password_hash, u.blocked FROM users u JOIN accounts a ON a.id = u.account_id \
             WHERE u.login = ?1 AND u.password_hash IS NOT NULL AND (CAST(?2 AS TEXT) IS NULL OR a.name = ?2) ORDER BY u.id",
        )?
        .query_map(params![login, account], |r| {
            Ok(LoginCandidate {
                user_id: UserId(r.get(0)?),
                account_id: AccountId(r.get(1)?),
                password_hash: r.get(2)?,
                blocked: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// A live browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: i64,
    pub csrf_token: String,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub user: UserId,
    pub token_hash: &'a [u8],
    pub csrf_token: &'a str,
    pub expires_at: i64,
    pub address: Option<&'a str>,
}

pub fn create_session(conn: &Connection, s: &NewSession<'_>) -> Result<i64, StoreError> {
    let now = now_ms();
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at, address) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![s.token_hash, s.user.0, s.csrf_token, now, now, s.expires_at, s.address],
    )?;
    Ok(conn.last_insert_rowid()?)
}

/// The principal a session cookie stands for, if the session has neither expired nor idled out
/// (`idle_ms`) and its user is not blocked.
pub fn principal_for_session(
    conn: &Connection,
    hash: &[u8],
    now: i64,
    idle_ms: i64,
) -> Result<Option<(Principal, Session)>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT u.account_id, u.id, u.login, u.role, s.id, s.csrf_token, s.last_seen_at, s.expires_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND s.last_seen_at > ? AND u.blocked = 0",
        )?
        .query_row(params![hash, now, now - idle_ms], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                Session {
                    id: r.get(4)?,
                    csrf_token: r.get(5)?,
                    last_seen_at: r.get(6)?,
                    expires_at: r.get(7)?,
                },
            ))
        })
        .optional()?;
    Ok(row.and_then(|(account, user, login, role, session)| {
        let principal = Principal {
            account_id: AccountId(account),
            user_id: UserId(user),
            login,
            role: Role::parse(&role)?,
            credential: Credential::Session { id: session.id },
        };
        Some((principal, session))
    }))
}

pub fn session(conn: &Connection, id: i64) -> Result<Session, StoreError> {
    conn.prepare_cached("SELECT id, csrf_token, last_seen_at, expires_at FROM sessions WHERE id = ?")?
        .query_row([id], |r| {
            Ok(Session {
                id: r.get(0)?,
                csrf_token: r.get(1)?,
                last_seen_at: r.get(2)?,
                expires_at: r.get(3)?,
            })
        })
        .optional()?
        .ok_or(StoreError::NotFound)
}

pub fn touch_session(conn: &Connection, id: i64, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sessions SET last_seen_at = ? WHERE id = ?")?
        .execute(params![now, id])?;
    Ok(())
}

pub fn end_session(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM sessions WHERE id = ?")?
        .execute([id])?;
    Ok(())
}

/// Signs a user out everywhere (blocked, password reset).
pub fn end_user_sessions(conn: &Connection, user: UserId) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE user_id = ?")?
        .execute([user.0])?)
}

/// Deletes sessions that can no longer be used.
pub fn purge_sessions(conn: &Connection, now: i64, idle_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
        params![now, now - idle_ms],
    )?)
}
