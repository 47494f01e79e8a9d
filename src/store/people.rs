//! Users and groups as the directory API shows and changes them. Who may do what is decided by
//! the HTTP layer from the principal; this module keeps the data consistent.

use crate::store::db::Value;
use crate::store::db::{params, params_from_iter, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use super::search::{in_clause, ints};
use super::{directory, StoreError};
use crate::domain::{AccountId, FieldError, Role, UserId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserItem {
    pub id: String,
    pub login: String,
    pub name: String,
    pub role: Role,
    /// The groups the user is a member of.
    pub groups: Vec<String>,
    pub blocked: bool,
    /// Has a password (operators named by the telephony have none until given one).
    pub can_sign_in: bool,
}

/// Which users a list shows.
pub enum Only<'a> {
    All,
    Ids(&'a [i64]),
}

pub fn list_users(conn: &Connection, account: AccountId, only: Only<'_>) -> Result<Vec<UserItem>, StoreError> {
    let mut sql = String::from(
        "SELECT u.id, u.login, u.name, u.role, \
         (SELECT string_agg(CAST(m.group_id AS TEXT), ',') FROM group_members m WHERE m.user_id = u.id), \
         u.blocked, u.password_hash IS NOT NULL \
         FROM users u WHERE u.account_id = ?",
    );
    let mut args = vec![Value::Integer(account.0)];
    if let Only::Ids(ids) = only {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let (test, values) = in_clause("u.id", ints(ids));
        sql.push_str(&format!(" AND {test}"));
        args.extend(values);
    }
    sql.push_str(" ORDER BY u.name, u.id");
    let rows = conn
        .prepare(&sql)?
        .query_map(params_from_iter(args.iter()), |r| {
            let role: String = r.get(3)?;
            Ok(UserItem {
                id: r.get::<_, i64>(0)?.to_string(),
                login: r.get(1)?,
                name: r.get(2)?,
                role: Role::parse(&role).unwrap_or(Role::Operator),
                groups: split_ids(r.get(4)?),
                blocked: r.get(5)?,
                can_sign_in: r.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub fn user(conn: &Connection, account: AccountId, id: i64) -> Result<UserItem, StoreError> {
    list_users(conn, account, Only::Ids(&[id]))?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// What a change to a user sets; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChange {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub groups: Option<Vec<i64>>,
    pub blocked: Option<bool>,
}

pub fn update_user(conn: &Connection, account: AccountId, id: UserId, c: &UserChange) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET name = COALESCE(?, name), role = COALESCE(?, role), \
         password_hash = COALESCE(?, password_hash), blocked = COALESCE(?, blocked) \
         WHERE id = ? AND account_id = ?",
        params![
            c.name,
            c.role.map(|r| r.code()),
            c.password_hash,
            c.blocked,
            id.0,
            account.0
        ],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    // Only supervisors are connected to groups: a former supervisor's links would otherwise
    // show in the groups and come back with a later promotion.
    if c.role.is_some_and(|r| r != Role::Supervisor) {
        conn.execute("DELETE FROM group_supervisors WHERE user_id = ?", [id.0])?;
    }
    if let Some(groups) = &c.groups {
        directory::check_ids(conn, account, "groups", groups, "groups", "group")?;
        conn.execute("DELETE FROM group_members WHERE user_id = ?", [id.0])?;
        for g in groups {
            conn.execute(
                "INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                params![g, id.0],
            )?;
        }
    }
    Ok(())
}

/// Owners who are not blocked.
pub fn active_owners(conn: &Connection, account: AccountId) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE account_id = ? AND role = 'owner' AND blocked = 0",
        [account.0],
        |r| r.get(0),
    )?)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GroupItem {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
    pub supervisors: Vec<String>,
    pub call_history_access: bool,
}

/// The account's groups; with `for_user`, only those the user is a member of or connected to.
pub fn list_groups(conn: &Connection, account: AccountId, for_user: Option<i64>) -> Result<Vec<GroupItem>, StoreError> {
    list_groups_where(conn, account, for_user, None)
}

pub fn group(conn: &Connection, account: AccountId, id: i64) -> Result<GroupItem, StoreError> {
    visible_group(conn, account, id, None)
}

/// One group; with `for_user`, only if the user is a member of it or connected to it.
pub fn visible_group(
    conn: &Connection,
    account: AccountId,
    id: i64,
    for_user: Option<i64>,
) -> Result<GroupItem, StoreError> {
    list_groups_where(conn, account, for_user, Some(id))?
        .pop()
        .ok_or(StoreError::NotFound)
}

fn list_groups_where(
    conn: &Connection,
    account: AccountId,
    for_user: Option<i64>,
    id: Option<i64>,
) -> Result<Vec<GroupItem>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT g.id, g.name, g.call_history_access, \
             (SELECT string_agg(CAST(user_id AS TEXT), ',') FROM group_members WHERE group_id = g.id), \
             (SELECT string_agg(CAST(user_id AS TEXT), ',') FROM group_supervisors WHERE group_id = g.id) \
             FROM groups g WHERE g.account_id = ?1 AND (CAST(?2 AS BIGINT) IS NULL OR g.id = ?2) \
             AND (CAST(?3 AS BIGINT) IS NULL OR EXISTS (SELECT 1 FROM group_members WHERE group_id = g.id AND user_id = ?3) \
                  OR EXISTS (SELECT 1 FROM group_supervisors WHERE group_id = g.id AND user_id = ?3)) \
             ORDER BY g.name, g.id",
        )?
        .query_map(params![account.0, id, for_user], |r| {
            Ok(GroupItem {
                id: r.get::<_, i64>(0)?.to_string(),
                name: r.get(1)?,
                call_history_access: r.get(2)?,
                members: split_ids(r.get(3)?),
                supervisors: split_ids(r.get(4)?),
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// What a group is created with or changed to; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct GroupChange {
    pub name: Option<String>,
    pub members: Option<Vec<i64>>,
    pub supervisors: Option<Vec<i64>>,
    pub call_history_access: Option<bool>,
}

/// Creates a group; its name is also its key (the name calls refer to it by).
pub fn create_group(conn: &Connection, account: AccountId, c: &GroupChange) -> Result<i64, StoreError> {
    let name = c
        .name
        .as_deref()
        .ok_or_else(|| StoreError::Invalid(FieldError::new("name", "a group needs a name")))?;
    let taken: Option<i64> = conn
        .query_row(
            "SELECT id FROM groups WHERE account_id = ? AND (key = ?2 OR name = ?2)",
            params![account.0, name],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StoreError::Conflict(format!("a group named {name:?} exists")));
    }
    conn.execute(
        "INSERT INTO groups (account_id, key, name) VALUES (?, ?, ?)",
        params![account.0, name, name],
    )?;
    let id = conn.last_insert_rowid()?;
    update_group(
        conn,
        account,
        id,
        &GroupChange {
            name: None,
            members: c.members.clone(),
            supervisors: c.supervisors.clone(),
            call_history_access: c.call_history_access,
        },
    )?;
    Ok(id)
}

pub fn update_group(conn: &Connection, account: AccountId, id: i64, c: &GroupChange) -> Result<(), StoreError> {
    if let Some(name) = &c.name {
        let clash: Option<i64> = conn
            .query_row(
                "SELECT id FROM groups WHERE account_id = ? AND name = ? AND id <> ?",
                params![account.0, name, id],
                |r| r.get(0),
            )
            .optional()?;
        if clash.is_some() {
            return Err(StoreError::Conflict(format!("a group named {name:?} exists")));
        }
    }
    let n = conn.execute(
        "UPDATE groups SET name = COALESCE(?, name), call_history_access = COALESCE(?, call_history_access) \
         WHERE id = ? AND account_id = ?",
        params![c.name, c.call_history_access, id, account.0],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    if let Some(members) = &c.members {
        directory::check_ids(conn, account, "users", members, "members", "user")?;
        replace_links(conn, "group_members", id, members)?;
    }
    if let Some(supervisors) = &c.supervisors {
        directory::check_ids(conn, account, "users", supervisors, "supervisors", "user")?;
        let mut stmt = conn.prepare_cached("SELECT role FROM users WHERE id = ?")?;
        for s in supervisors {
            let role: String = stmt.query_row([s], |r| r.get(0))?;
            if Role::parse(&role) != Some(Role::Supervisor) {
                return Err(StoreError::Invalid(FieldError::new(
                    "supervisors",
                    format!("user {s} is not a supervisor (role {role})"),
                )));
            }
        }
        replace_links(conn, "group_supervisors", id, supervisors)?;
    }
    Ok(())
}

fn replace_links(conn: &Connection, table: &str, group: i64, users: &[i64]) -> Result<(), StoreError> {
    conn.execute(&format!("DELETE FROM {table} WHERE group_id = ?"), [group])?;
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO {table} (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
    ))?;
    for u in users {
        stmt.execute(params![group, u])?;
    }
    Ok(())
}

fn split_ids(list: Option<String>) -> Vec<String> {
    let mut ids: Vec<i64> = list
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.into_iter().map(|i| i.to_string()).collect()
}
