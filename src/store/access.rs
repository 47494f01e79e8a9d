//! The directory facts behind a principal's call scope, read for every request so that a change
//! of groups or switches applies at once. The rules themselves are in `domain::access`.

use crate::store::db::{params, Connection, OptionalExtension};

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{auth, directory, people, preferences, StoreError};
use crate::domain::access::ScopeFacts;
use crate::domain::filter::parse_search;
use crate::domain::{AccountId, CallScope, Credential, Principal, Role, SearchRequest, UserId};

/// The principal's scope as the directory says now — its role and blocked flag included, so a
/// long-lived request (a live stream) follows a demotion or a block.
pub fn scope_for(conn: &Connection, p: &Principal) -> Result<CallScope, StoreError> {
    let user = p.user_id.0;
    let found: Option<(String, bool, bool)> = conn
        .prepare_cached(
            "SELECT u.role, u.blocked, a.call_history_access FROM users u JOIN accounts a ON a.id = u.account_id \
             WHERE u.id = ? AND u.account_id = ?",
        )?
        .query_row(params![user, p.account_id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (role, blocked, account_access) = match found {
        Some((role, blocked, access)) => (Role::parse(&role), blocked, access),
        None => (None, true, false),
    };
    let p = Principal {
        // An unreadable role sees as little as possible.
        role: role.unwrap_or(Role::Operator),
        ..p.clone()
    };
    let mut facts = ScopeFacts {
        blocked: blocked || role.is_none(),
        ..ScopeFacts::default()
    };
    if matches!(p.role, Role::Supervisor | Role::Operator) {
        facts.history_access = account_access
            || conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id \
                     WHERE m.user_id = ?1 AND g.call_history_access = 1) \
                     OR (?2 AND EXISTS (SELECT 1 FROM group_supervisors s JOIN groups g ON g.id = s.group_id \
                     WHERE s.user_id = ?1 AND g.call_history_access = 1))",
                )?
                .query_row(params![user, p.role == Role::Supervisor], |r| r.get(0))?;
    }
    if p.role == Role::Supervisor {
        facts.supervised_operators = supervised_operators(conn, user)?;
    }
    Ok(CallScope::decide(&p, facts))
}

/// The scope of a long-lived request, re-checked as it runs: `None` once its credential has
/// ended (signed out, expired, revoked).
pub fn live_scope(conn: &Connection, p: &Principal, now: i64, idle_ms: i64) -> Result<Option<CallScope>, StoreError> {
    if !auth::credential_live(conn, &p.credential, now, idle_ms)? {
        return Ok(None);
    }
    scope_for(conn, p).map(Some)
}

/// The members, now, of the groups `supervisor` is connected to.
pub fn supervised_operators(conn: &Connection, supervisor: i64) -> Result<Vec<i64>, StoreError> {
    let ids = conn
        .prepare_cached(
            "SELECT DISTINCT m.user_id FROM group_supervisors s JOIN group_members m ON m.group_id = s.group_id \
             WHERE s.user_id = ? ORDER BY m.user_id",
        )?
        .query_map([supervisor], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The search a background job was asked for (`query`: its `[key, value]` pairs in JSON), as
/// its user may run it now — a user who lost a group since sees less — with dates and presets
/// as of when it was asked (`asked_ms`), so that "today" is the day it was asked. Also the
/// user's role now.
pub fn job_search(
    conn: &Connection,
    account: AccountId,
    user: UserId,
    job: i64,
    query: &str,
    asked_ms: i64,
) -> Result<(CallScope, SearchRequest, Role), StoreError> {
    let found = people::user(conn, account, user.0)?;
    let principal = Principal {
        account_id: account,
        user_id: user,
        login: found.login,
        role: found.role,
        credential: Credential::Job { id: job },
    };
    let pairs: Vec<(String, String)> = serde_json::from_str(query)
        .map_err(|e| StoreError::Conflict(format!("the stored search is unreadable: {e}")))?;
    let asked = Utc.timestamp_millis_opt(asked_ms).single().unwrap_or_else(Utc::now);
    let (scope, req, _) = prepare_search(conn, &principal, &pairs, asked)?;
    Ok((scope, req, found.role))
}

/// A search as a principal asks it: their scope as the directory says now, the parameters parsed
/// with presets and dates in their zone (the user's own, then the account's) as of `now`, every
/// id checked, each topic widened to the topics nested below it. Also the zone the results are
/// shown in.
pub fn prepare_search(
    conn: &Connection,
    principal: &Principal,
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<(CallScope, SearchRequest, Tz), StoreError> {
    let scope = scope_for(conn, principal)?;
    let own = preferences::get(conn, principal.user_id)?.timezone;
    let (req, tz) = parse_in(conn, &scope, own, pairs, now)?;
    Ok((scope, req, tz))
}

/// A search within a scope: the parameters parsed with presets and dates in `zone` (else the
/// account's zone) as of `now`, every id checked, each topic widened to its nested topics.
pub fn parse_in(
    conn: &Connection,
    scope: &CallScope,
    zone: Option<String>,
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<(SearchRequest, Tz), StoreError> {
    let account = scope.account;
    let tz: Tz = match zone {
        Some(z) => z,
        None => auth::account(conn, account)?.timezone,
    }
    .parse()
    .unwrap_or(Tz::UTC);
    let mut req = parse_search(pairs, now, tz).map_err(StoreError::Invalid)?;
    directory::check_refs(conn, account, &req.filter.directory_refs())?;
    req.filter.topics = directory::with_subtopics(conn, account, &req.filter.topics)?;
    let tz = req.tz.unwrap_or(tz);
    Ok((req, tz))
}
