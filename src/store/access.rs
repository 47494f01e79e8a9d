//! The directory facts behind a principal's call scope, read for every request so that a change
//! of groups or switches applies at once. The rules themselves are in `domain::access`.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::access::ScopeFacts;
use crate::domain::{CallScope, Principal, Role};

pub fn scope_for(conn: &Connection, p: &Principal) -> Result<CallScope, StoreError> {
    let user = p.user_id.0;
    let (blocked, account_access): (bool, bool) = conn
        .prepare_cached(
            "SELECT u.blocked, a.call_history_access FROM users u JOIN accounts a ON a.id = u.account_id \
             WHERE u.id = ? AND u.account_id = ?",
        )?
        .query_row(params![user, p.account_id.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((true, false));
    let mut facts = ScopeFacts {
        blocked,
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
    Ok(CallScope::decide(p, facts))
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
