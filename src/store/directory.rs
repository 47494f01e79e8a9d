//! The directory: groups, queues, scenarios, campaigns, completion codes, tags, topics and the
//! operators calls name. Entities named in call records are created on first sight.

use std::hash::{Hash, Hasher};

use crate::store::db::{params, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::now_ms;
use super::{StoreError, WriteCache};
use crate::domain::filter::DirectoryRef;
use crate::domain::{AccountId, FieldError, Role, ScenarioKind, UserId};

/// A directory table whose rows calls refer to by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dim {
    Group,
    Queue,
    Scenario,
    Campaign,
    CompletionCode,
    Tag,
    Topic,
}

impl Dim {
    pub fn table(self) -> &'static str {
        match self {
            Dim::Group => "groups",
            Dim::Queue => "queues",
            Dim::Scenario => "scenarios",
            Dim::Campaign => "campaigns",
            Dim::CompletionCode => "completion_codes",
            Dim::Tag => "tags",
            Dim::Topic => "topics",
        }
    }
}

/// Returns the id of the entity with `key`, creating it (or renaming it) as needed.
/// `extra` carries a scenario's kind and link, which are kept up to date the same way.
pub fn ensure(
    conn: &Connection,
    cache: &mut WriteCache,
    dim: Dim,
    account: AccountId,
    key: &str,
    name: Option<&str>,
    extra: Option<(Option<ScenarioKind>, Option<&str>)>,
) -> Result<i64, StoreError> {
    // Without a name the sender only refers to the entity: a new one is named by its key, an
    // existing one keeps its name.
    let given = name.filter(|n| !n.trim().is_empty());
    let signature = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (given, extra.map(|(kind, url)| (kind.map(|k| k.code()), url))).hash(&mut h);
        h.finish()
    };
    if let Some((id, seen)) = cache.dims.get(&(dim.table(), account)).and_then(|m| m.get(key)) {
        if *seen == signature {
            return Ok(*id);
        }
    }
    let table = dim.table();
    let found: Option<i64> = conn
        .prepare_cached(&format!("SELECT id FROM {table} WHERE account_id = ? AND key = ?"))?
        .query_row(params![account.0, key], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => {
            if let Some(name) = given {
                conn.prepare_cached(&format!("UPDATE {table} SET name = ? WHERE id = ? AND name <> ?"))?
                    .execute(params![name, id, name])?;
            }
            id
        }
        None => {
            let name = given.unwrap_or(key);
            let parent = match dim {
                Dim::Topic => match key.rsplit_once('/') {
                    Some((parent, _)) => Some(ensure(conn, cache, Dim::Topic, account, parent, None, None)?),
                    None => None,
                },
                _ => None,
            };
            if dim == Dim::Topic {
                conn.prepare_cached("INSERT INTO topics (account_id, key, name, parent_id) VALUES (?, ?, ?, ?)")?
                    .execute(params![account.0, key, name, parent])?;
            } else {
                conn.prepare_cached(&format!("INSERT INTO {table} (account_id, key, name) VALUES (?, ?, ?)"))?
                    .execute(params![account.0, key, name])?;
            }
            conn.last_insert_rowid()?
        }
    };
    if let Some((kind, url)) = extra {
        conn.prepare_cached("UPDATE scenarios SET kind = COALESCE(?, kind), url = COALESCE(?, url) WHERE id = ?")?
            .execute(params![kind.map(|k| k.code()), url, id])?;
    }
    cache
        .dims
        .entry((dim.table(), account))
        .or_default()
        .insert(key.to_string(), (id, signature));
    Ok(id)
}

/// The user id of the operator with `login`, creating a password-less operator on first sight.
pub fn ensure_operator(
    conn: &Connection,
    cache: &mut WriteCache,
    account: AccountId,
    login: &str,
    name: Option<&str>,
) -> Result<i64, StoreError> {
    if let Some((id, _)) = cache.dims.get(&("users", account)).and_then(|m| m.get(login)) {
        return Ok(*id);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM users WHERE account_id = ? AND login = ?")?
        .query_row(params![account.0, login], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached(
                "INSERT INTO users (account_id, login, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, NULL, ?)",
            )?
            .execute(params![account.0, login, name.unwrap_or(login), Role::Operator.code(), now_ms()])?;
            conn.last_insert_rowid()?
        }
    };
    cache
        .dims
        .entry(("users", account))
        .or_default()
        .insert(login.to_string(), (id, 0));
    Ok(id)
}

/// Makes `user` a member (or a supervisor) of `group`.
pub fn add_to_group(conn: &Connection, group: i64, user: UserId, as_supervisor: bool) -> Result<(), StoreError> {
    let table = if as_supervisor {
        "group_supervisors"
    } else {
        "group_members"
    };
    conn.execute(
        &format!("INSERT INTO {table} (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
        params![group, user.0],
    )?;
    Ok(())
}

/// One entry of a directory list (the filter choices of the UI).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DirItem {
    pub id: String,
    pub name: String,
    /// The sender's own id for this entity.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
}

pub fn list(conn: &Connection, dim: Dim, account: AccountId) -> Result<Vec<DirItem>, StoreError> {
    let (kind, url, parent) = match dim {
        Dim::Scenario => ("kind", "url", "NULL"),
        Dim::Topic => ("NULL", "NULL", "parent_id"),
        _ => ("NULL", "NULL", "NULL"),
    };
    let sql = format!(
        "SELECT id, name, key, {kind}, {url}, {parent} FROM {} WHERE account_id = ? ORDER BY name, id",
        dim.table()
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([account.0], |r| {
        Ok(DirItem {
            id: r.get::<_, i64>(0)?.to_string(),
            name: r.get(1)?,
            key: r.get(2)?,
            kind: r.get(3)?,
            url: r.get(4)?,
            parent_id: r.get::<_, Option<i64>>(5)?.map(|p| p.to_string()),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Fails naming the filter parameter when any id it gives is not in the account's directory.
pub fn check_refs(conn: &Connection, account: AccountId, refs: &[(DirectoryRef, &[i64])]) -> Result<(), StoreError> {
    for (r, ids) in refs {
        if ids.is_empty() {
            continue;
        }
        let table = match r {
            DirectoryRef::Operator => "users",
            DirectoryRef::Group => Dim::Group.table(),
            DirectoryRef::Queue => Dim::Queue.table(),
            DirectoryRef::Campaign => Dim::Campaign.table(),
            DirectoryRef::Scenario => Dim::Scenario.table(),
            DirectoryRef::CompletionCode => Dim::CompletionCode.table(),
            DirectoryRef::Tag => Dim::Tag.table(),
            DirectoryRef::Topic => Dim::Topic.table(),
        };
        check_ids(conn, account, table, ids, r.param(), r.param())?;
    }
    Ok(())
}

/// Fails naming `field` unless every id is a row of `table` in the account ("no `noun` with id …").
pub fn check_ids(
    conn: &Connection,
    account: AccountId,
    table: &str,
    ids: &[i64],
    field: &str,
    noun: &str,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ? AND account_id = ?"))?;
    for id in ids {
        if !stmt.exists(params![id, account.0])? {
            return Err(StoreError::Invalid(FieldError::new(
                field,
                format!("no {noun} with id {id} in this account"),
            )));
        }
    }
    Ok(())
}

/// The given topics with every topic nested below them: choosing «Биллинг» finds the calls
/// filed under «Биллинг/Возврат» too.
pub fn with_subtopics(conn: &Connection, account: AccountId, topics: &[i64]) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id FROM topics p JOIN topics t ON t.account_id = p.account_id \
         AND (t.id = p.id OR substr(t.key, 1, length(p.key) + 1) = p.key || '/') \
         WHERE p.id = ? AND p.account_id = ?",
    )?;
    let mut all = Vec::new();
    for topic in topics {
        for id in stmt.query_map(params![topic, account.0], |r| r.get::<_, i64>(0))? {
            all.push(id?);
        }
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}
