//! The account as its people see it: who am I (`/me`), the account settings, the audit log.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ClientAddr, JsonBody, QueryPairs};
use super::AppState;
use crate::domain::access::OperatorTest;
use crate::domain::audit::AuditAction;
use crate::domain::recording::{may_use, RecordingAccess, RecordingUse};
use crate::domain::Principal;
use crate::error::AppError;
use crate::store::access;
use crate::store::audit::{self, Actor, AuditEntry};
use crate::store::auth::{self, Account};
use crate::store::people::{self, UserItem};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/settings", get(settings).put(update_settings))
        .route("/api/v1/audit", get(audit_log))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Settings {
    pub account: String,
    /// IANA zone: dates, presets and times are in it unless a user or request says otherwise.
    pub timezone: String,
    pub currency: String,
    /// «Разрешить доступ к истории звонков»: operators and supervisors see their own calls.
    pub call_history_access: bool,
    /// Calls that started more than this many days ago are deleted (null: kept forever).
    pub keep_calls_days: Option<u32>,
    /// Recordings of calls that started more than this many days ago are deleted (null: kept
    /// as long as their call).
    pub keep_recordings_days: Option<u32>,
    /// What supervisors and operators may do with the recordings of the calls they see.
    pub restricted_recordings: RecordingAccess,
}

impl From<Account> for Settings {
    fn from(a: Account) -> Self {
        Settings {
            account: a.name,
            timezone: a.timezone,
            currency: a.currency,
            call_history_access: a.call_history_access,
            keep_calls_days: a.keep_calls_days,
            keep_recordings_days: a.keep_recordings_days,
            restricted_recordings: a.restricted_recordings,
        }
    }
}

/// What the signed-in user may do, so a page can show only what works.
#[derive(Debug, Serialize, ToSchema)]
pub struct Permissions {
    /// Sees some calls (false: an operator without call-history access).
    pub call_history: bool,
    pub sees_all_calls: bool,
    pub sees_price: bool,
    pub call_details: bool,
    pub manage_users: bool,
    pub manage_groups: bool,
    pub manage_settings: bool,
    pub audit_log: bool,
    /// Plays recordings in the page.
    pub recording_play: bool,
    /// Downloads recording files.
    pub recording_download: bool,
    /// Hands calls to the QM system (the role may, and the integration is connected and active).
    pub qm_export: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: UserItem,
    pub settings: Settings,
    pub permissions: Permissions,
}

/// The user behind this credential, their account's settings and what they may do.
#[utoipa::path(get, path = "/api/v1/me", tag = "account",
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(principal: Principal, State(state): State<AppState>) -> Result<Json<Me>, AppError> {
    let p = principal.clone();
    let (user, account, scope, qm) = state
        .store
        .read(move |conn| {
            Ok((
                people::user(conn, p.account_id, p.user_id.0)?,
                auth::account(conn, p.account_id)?,
                access::scope_for(conn, &p)?,
                crate::store::qm::integration(conn, p.account_id)?,
            ))
        })
        .await?;
    let qm_ready = super::qm::not_ready(&state.qm, principal.account_id, qm.as_ref()).is_none();
    let reads = principal.may_read_calls();
    let permissions = Permissions {
        call_history: reads && scope.operator_test(&[]) != OperatorTest::Never,
        sees_all_calls: reads && scope.is_whole_account(),
        sees_price: reads && principal.role.sees_price(),
        call_details: reads && principal.role.sees_price(),
        manage_users: principal.may_administer(),
        manage_groups: principal.may_manage_groups(),
        manage_settings: principal.may_administer(),
        audit_log: principal.may_administer(),
        recording_play: reads && may_use(principal.role, account.restricted_recordings, RecordingUse::Play),
        recording_download: reads && may_use(principal.role, account.restricted_recordings, RecordingUse::Download),
        qm_export: principal.may_export_to_qm() && qm_ready,
    };
    Ok(Json(Me {
        user,
        settings: account.into(),
        permissions,
    }))
}

/// The account's settings (everyone in the account may read them).
#[utoipa::path(get, path = "/api/v1/settings", tag = "account",
    responses((status = 200, body = Settings), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn settings(principal: Principal, State(state): State<AppState>) -> Result<Json<Settings>, AppError> {
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read settings".into()));
    }
    let account = principal.account_id;
    let a = state.store.read(move |conn| auth::account(conn, account)).await?;
    Ok(Json(a.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO 4217 code, e.g. RUB.
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub call_history_access: Option<bool>,
    /// Days, 1 … 36500; null keeps calls forever.
    #[serde(default, deserialize_with = "crate::domain::record::nullable")]
    #[schema(value_type = Option<u32>)]
    pub keep_calls_days: Option<Option<u32>>,
    /// Days, 1 … 36500; null keeps recordings as long as their calls.
    #[serde(default, deserialize_with = "crate::domain::record::nullable")]
    #[schema(value_type = Option<u32>)]
    pub keep_recordings_days: Option<Option<u32>>,
    #[serde(default)]
    pub restricted_recordings: Option<RecordingAccess>,
}

/// Changes the account's settings (owner, administrator).
#[utoipa::path(put, path = "/api/v1/settings", tag = "account", request_body = SettingsChange,
    responses((status = 200, body = Settings), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_settings(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<SettingsChange>,
) -> Result<Json<Settings>, AppError> {
    if !principal.may_administer() {
        return Err(AppError::Forbidden(
            "only an owner or administrator changes the account settings".into(),
        ));
    }
    if let Some(tz) = &body.timezone {
        tz.parse::<Tz>()
            .map_err(|_| AppError::invalid("timezone", format!("unknown time zone {tz:?}")))?;
    }
    if let Some(c) = &body.currency {
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(AppError::invalid(
                "currency",
                "a currency is three capital letters (ISO 4217)",
            ));
        }
    }
    for (field, days) in [
        ("keep_calls_days", body.keep_calls_days),
        ("keep_recordings_days", body.keep_recordings_days),
    ] {
        if let Some(Some(d)) = days {
            if !(1..=36_500).contains(&d) {
                return Err(AppError::invalid(
                    field,
                    format!("{field} is 1 … 36500 days, or null to keep forever"),
                ));
            }
        }
    }
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let after = state
        .store
        .write(move |conn, _| {
            let before = auth::account(conn, account)?;
            let change = auth::AccountChange {
                timezone: body.timezone.as_deref(),
                currency: body.currency.as_deref(),
                call_history_access: body.call_history_access,
                keep_calls_days: body.keep_calls_days,
                keep_recordings_days: body.keep_recordings_days,
                restricted_recordings: body.restricted_recordings,
            };
            auth::update_account(conn, account, &change)?;
            let after = auth::account(conn, account)?;
            if after != before {
                let detail = serde_json::json!({
                    "before": Settings::from(before),
                    "after": Settings::from(after.clone()),
                });
                audit::record(conn, &actor, AuditAction::SettingsChanged, None, Some(detail))?;
            }
            Ok(after)
        })
        .await?;
    Ok(Json(after.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<String>,
}

/// The account's audit log, newest first (owner, administrator).
#[utoipa::path(get, path = "/api/v1/audit", tag = "account",
    params(("action" = Option<AuditAction>, Query), ("before" = Option<String>, Query, description = "an entry id: older entries only"),
           ("limit" = Option<u32>, Query, description = "1 … 500, default 100")),
    responses((status = 200, body = AuditPage), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn audit_log(
    principal: Principal,
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<AuditPage>, AppError> {
    if !principal.may_administer() {
        return Err(AppError::Forbidden(
            "only an owner or administrator reads the audit log".into(),
        ));
    }
    let (mut action, mut before, mut limit) = (None, None, 100u32);
    for (k, v) in &pairs {
        match k.as_str() {
            "action" => {
                action = Some(
                    AuditAction::parse(v)
                        .ok_or_else(|| AppError::invalid("action", format!("unknown action {v:?}")))?,
                )
            }
            "before" => {
                before = Some(
                    v.parse::<i64>()
                        .map_err(|_| AppError::invalid("before", "expected an entry id"))?,
                )
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=500).contains(l))
                    .ok_or_else(|| AppError::invalid("limit", "1 … 500"))?
            }
            other => return Err(AppError::invalid(other, format!("unknown parameter {other:?}"))),
        }
    }
    let account = principal.account_id;
    let items = state
        .store
        .read(move |conn| audit::list(conn, account, action, before, limit))
        .await?;
    let next_before = (items.len() == limit as usize)
        .then(|| items.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(AuditPage { items, next_before }))
}
