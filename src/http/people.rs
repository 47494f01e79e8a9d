//! Users and groups: listed for everyone who reads call history (as far as their scope goes),
//! changed by administrators (users) and by administrators and managers (groups).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use super::directory::Items;
use super::extract::{administrator, ClientAddr, JsonBody};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{FieldError, Principal, Role, UserId};
use crate::error::AppError;
use crate::secrets;
use crate::store::audit::{self, Actor};
use crate::store::people::{self, GroupChange, GroupItem, Only, UserChange, UserItem};
use crate::store::{access, auth, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).put(update_user))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{id}", get(get_group).put(update_group))
}

/// An id as the API writes it (a string) or as a number.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(value_type = String)]
pub struct Id(pub i64);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Id(n)),
            Raw::Text(t) => t
                .parse()
                .map(Id)
                .map_err(|_| serde::de::Error::custom(format!("expected an id, got {t:?}"))),
        }
    }
}

fn ids(list: Option<Vec<Id>>) -> Option<Vec<i64>> {
    list.map(|l| l.into_iter().map(|i| i.0).collect())
}

fn path_id(raw: &str) -> Result<i64, AppError> {
    raw.parse().map_err(|_| AppError::NotFound)
}

fn reader(p: &Principal) -> Result<(), AppError> {
    if !p.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read the directory".into()));
    }
    Ok(())
}

const ADMIN_REFUSAL: &str = "only an owner or administrator manages users and settings";

fn name_rule(field: &str, name: &str) -> Result<(), AppError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 128 {
        return Err(AppError::invalid(field, "names are 1 to 128 characters"));
    }
    Ok(())
}

/// The users a principal may see: everyone for the full roles; for a supervisor themself and
/// the operators whose calls they see; for an operator, themself.
/// `None`: all of the account's.
fn visible_user_ids(conn: &crate::store::db::Connection, p: &Principal) -> Result<Option<Vec<i64>>, StoreError> {
    if p.role.sees_everything() {
        return Ok(None);
    }
    let mut ids = vec![p.user_id.0];
    if p.role == Role::Supervisor {
        ids.extend(access::supervised_operators(conn, p.user_id.0)?);
    }
    Ok(Some(ids))
}

/// The groups a principal may see: all for the full roles, else those they belong to or supervise.
fn visible_groups_of(p: &Principal) -> Option<i64> {
    (!p.role.sees_everything()).then_some(p.user_id.0)
}

/// Lists the users this principal may see (people and the operators calls name).
#[utoipa::path(get, path = "/api/v1/users", tag = "directory",
    responses((status = 200, body = Items<UserItem>), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_users(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Items<UserItem>>, AppError> {
    reader(&principal)?;
    let items = state
        .store
        .read(move |conn| match visible_user_ids(conn, &principal)? {
            None => people::list_users(conn, principal.account_id, Only::All),
            Some(ids) => people::list_users(conn, principal.account_id, Only::Ids(&ids)),
        })
        .await?;
    Ok(Json(Items { items }))
}

/// One user, if this principal may see them.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = UserItem), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_user(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UserItem>, AppError> {
    reader(&principal)?;
    let id = path_id(&id)?;
    let user = state
        .store
        .read(move |conn| match visible_user_ids(conn, &principal)? {
            Some(ids) if !ids.contains(&id) => Err(StoreError::NotFound),
            _ => people::user(conn, principal.account_id, id),
        })
        .await?;
    Ok(Json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub login: String,
    #[serde(default)]
    pub name: Option<String>,
    pub role: Role,
    /// At least 8 characters. Without one the user exists (calls can name them) but cannot sign in.
    #[serde(default)]
    pub password: Option<String>,
    /// Ids of the groups the user is a member of.
    #[serde(default)]
    pub groups: Option<Vec<Id>>,
}

async fn hash(password: Option<String>) -> Result<Option<String>, AppError> {
    match password {
        None => Ok(None),
        Some(p) => {
            secrets::check_password_rules("password", &p)?;
            let hashed = secrets::hash_password_queued(p).await.map_err(AppError::Internal)?;
            Ok(Some(hashed))
        }
    }
}

/// Creates a user (owner and administrator; only an owner creates owners).
#[utoipa::path(post, path = "/api/v1/users", tag = "directory", request_body = NewUserBody,
    responses((status = 201, body = UserItem), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_user(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<UserItem>), AppError> {
    administrator(&principal, ADMIN_REFUSAL)?;
    if !principal.may_assign(body.role) {
        return Err(AppError::Forbidden("only an owner makes owners".into()));
    }
    name_rule("login", &body.login)?;
    let name = body.name.clone().unwrap_or_else(|| body.login.clone());
    name_rule("name", &name)?;
    let password_hash = hash(body.password).await?;
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let user = state
        .store
        .write(move |conn, _| {
            let id = auth::create_user(
                conn,
                &auth::NewUser {
                    account_id: account,
                    login: body.login.trim(),
                    name: name.trim(),
                    role: body.role,
                    password_hash: password_hash.as_deref(),
                },
            )?;
            let groups = ids(body.groups);
            people::update_user(
                conn,
                account,
                id,
                &UserChange {
                    groups: groups.clone(),
                    ..UserChange::default()
                },
            )?;
            let user = people::user(conn, account, id.0)?;
            let detail = serde_json::json!({"login": user.login, "role": user.role, "groups": user.groups});
            audit::record(conn, &actor, AuditAction::UserCreated, Some(&user.id), Some(detail))?;
            Ok(user)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChangeBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    /// A new password (a reset): the user's sessions end.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub groups: Option<Vec<Id>>,
    /// A blocked user cannot sign in; their sessions end and their tokens stop working.
    #[serde(default)]
    pub blocked: Option<bool>,
}

/// Changes a user: name, role, password, groups, blocked. Nobody changes their own role or
/// blocks themself (so an account always keeps an owner); only an owner touches owners.
#[utoipa::path(put, path = "/api/v1/users/{id}", tag = "directory", params(("id" = String, Path)),
    request_body = UserChangeBody,
    responses((status = 200, body = UserItem), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_user(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UserChangeBody>,
) -> Result<Json<UserItem>, AppError> {
    administrator(&principal, ADMIN_REFUSAL)?;
    let id = UserId(path_id(&id)?);
    if let Some(name) = &body.name {
        name_rule("name", name)?;
    }
    if body.role.is_some_and(|r| !principal.may_assign(r)) {
        return Err(AppError::Forbidden("only an owner makes owners".into()));
    }
    if id == principal.user_id && (body.role.is_some_and(|r| r != principal.role) || body.blocked == Some(true)) {
        return Err(AppError::Conflict(
            "you cannot change your own role or block yourself".into(),
        ));
    }
    let password_changed = body.password.is_some();
    let makes_owner = body.role == Some(Role::Owner);
    let password_hash = hash(body.password).await?;
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let me = principal.user_id.0;
    let user = state
        .store
        .write(move |conn, _| {
            // The actor's role as it is now, inside the transaction: two owners demoting each
            // other at once cannot both pass on what they were when they asked.
            let my_role = people::user(conn, account, me)?.role;
            let before = people::user(conn, account, id.0)?;
            let touches_owner = before.role == Role::Owner || makes_owner;
            if touches_owner && my_role != Role::Owner {
                return Err(StoreError::Forbidden("only an owner makes or changes owners".into()));
            }
            let change = UserChange {
                name: body.name.map(|n| n.trim().to_string()),
                role: body.role,
                password_hash,
                groups: ids(body.groups),
                blocked: body.blocked,
            };
            people::update_user(conn, account, id, &change)?;
            if people::active_owners(conn, account)? == 0 {
                return Err(StoreError::Conflict(
                    "the account must keep an owner who is not blocked".into(),
                ));
            }
            if change.blocked == Some(true) || password_changed {
                auth::end_user_sessions(conn, id)?;
            }
            let after = people::user(conn, account, id.0)?;
            let mut detail = serde_json::Map::new();
            if before.name != after.name {
                detail.insert("name".into(), serde_json::json!([before.name, after.name]));
            }
            if before.role != after.role {
                detail.insert("role".into(), serde_json::json!([before.role, after.role]));
            }
            if before.groups != after.groups {
                detail.insert("groups".into(), serde_json::json!([before.groups, after.groups]));
            }
            if before.blocked != after.blocked {
                detail.insert("blocked".into(), serde_json::json!([before.blocked, after.blocked]));
            }
            if password_changed {
                detail.insert("password".into(), serde_json::json!("reset"));
            }
            if !detail.is_empty() {
                let detail = serde_json::Value::Object(detail);
                audit::record(conn, &actor, AuditAction::UserChanged, Some(&after.id), Some(detail))?;
            }
            Ok(after)
        })
        .await?;
    Ok(Json(user))
}

/// Lists groups: all of them for the full roles; for others the groups they belong to or
/// supervise.
#[utoipa::path(get, path = "/api/v1/groups", tag = "directory",
    responses((status = 200, body = Items<GroupItem>), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_groups(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Items<GroupItem>>, AppError> {
    reader(&principal)?;
    let only = visible_groups_of(&principal);
    let account = principal.account_id;
    let items = state
        .store
        .read(move |conn| people::list_groups(conn, account, only))
        .await?;
    Ok(Json(Items { items }))
}

/// One group, if this principal may see it.
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "directory", params(("id" = String, Path)),
    responses((status = 200, body = GroupItem), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_group(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<GroupItem>, AppError> {
    reader(&principal)?;
    let id = path_id(&id)?;
    let only = visible_groups_of(&principal);
    let account = principal.account_id;
    let group = state
        .store
        .read(move |conn| people::visible_group(conn, account, id, only))
        .await?;
    Ok(Json(group))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    #[serde(default)]
    pub name: Option<String>,
    /// User ids of the members (operators, and anyone whose calls the group's supervisors see).
    #[serde(default)]
    pub members: Option<Vec<Id>>,
    /// User ids of the supervisors connected to the group (role supervisor).
    #[serde(default)]
    pub supervisors: Option<Vec<Id>>,
    /// Lets the members (and supervisors) see their own calls.
    #[serde(default)]
    pub call_history_access: Option<bool>,
}

impl GroupBody {
    fn into_change(self) -> Result<GroupChange, AppError> {
        let name = self.name.map(|n| n.trim().to_string());
        if let Some(n) = &name {
            name_rule("name", n)?;
        }
        Ok(GroupChange {
            name,
            members: ids(self.members),
            supervisors: ids(self.supervisors),
            call_history_access: self.call_history_access,
        })
    }
}

fn group_manager(p: &Principal) -> Result<(), AppError> {
    if !p.may_manage_groups() {
        return Err(AppError::Forbidden(
            "only an owner, administrator or manager manages groups".into(),
        ));
    }
    Ok(())
}

/// Creates a group (owner, administrator, manager).
#[utoipa::path(post, path = "/api/v1/groups", tag = "directory", request_body = GroupBody,
    responses((status = 201, body = GroupItem), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_group(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<(StatusCode, Json<GroupItem>), AppError> {
    group_manager(&principal)?;
    let change = body.into_change()?;
    if change.name.is_none() {
        return Err(FieldError::new("name", "a group needs a name").into());
    }
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let group = state
        .store
        .write(move |conn, cache| {
            let id = people::create_group(conn, account, &change)?;
            // Calls that name this group later must find it, not a stale "unknown" entry.
            cache.dims.clear();
            let group = people::group(conn, account, id)?;
            let detail = serde_json::to_value(&group).ok();
            audit::record(conn, &actor, AuditAction::GroupCreated, Some(&group.id), detail)?;
            Ok(group)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(group)))
}

/// Changes a group: name, members, supervisors, call-history switch. Takes effect on the next
/// request of everyone concerned, open live streams included.
#[utoipa::path(put, path = "/api/v1/groups/{id}", tag = "directory", params(("id" = String, Path)),
    request_body = GroupBody,
    responses((status = 200, body = GroupItem), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_group(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GroupBody>,
) -> Result<Json<GroupItem>, AppError> {
    group_manager(&principal)?;
    let id = path_id(&id)?;
    let change = body.into_change()?;
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let group = state
        .store
        .write(move |conn, cache| {
            let before = people::group(conn, account, id)?;
            people::update_group(conn, account, id, &change)?;
            if change.name.is_some() {
                cache.dims.clear();
            }
            let after = people::group(conn, account, id)?;
            let detail = serde_json::json!({ "before": before, "after": after });
            audit::record(conn, &actor, AuditAction::GroupChanged, Some(&after.id), Some(detail))?;
            Ok(after)
        })
        .await?;
    Ok(Json(group))
}
