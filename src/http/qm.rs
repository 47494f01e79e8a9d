//! The QM integration over HTTP: its settings (owner, administrator), export jobs (owner,
//! administrator, manager), and the signed recording links the QM system downloads from.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::exports::filter_pairs;
use super::extract::{ClientAddr, JsonBody, QueryPairs};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::qm::{self as words, OperatorChannel, Outcome, DEFAULT_BASE_URL};
use crate::domain::recording::RecordingUse;
use crate::domain::{AccountId, Principal};
use crate::error::AppError;
use crate::export::jobs::JobState;
use crate::qm::client::{CheckError, QmClient};
use crate::qm::link::{self, LinkError};
use crate::qm::Qm;
use crate::store::audit::{self, Actor};
use crate::store::auth::now_ms;
use crate::store::qm::{self as rows, Export, Integration};
use crate::store::view::format_time;
use crate::store::{access, recordings, search, StoreError};

/// At most this many calls named in one export request.
const MAX_CALL_IDS: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/integrations/qm", get(get_integration).put(put_integration))
        .route("/api/v1/integrations/qm/connect", post(connect))
        .route("/api/v1/integrations/qm/exports", get(list_exports).post(start_export))
        .route(
            "/api/v1/integrations/qm/exports/{id}",
            get(get_export).delete(cancel_export),
        )
        .route("/api/v1/integrations/qm/exports/{id}/rerun", post(rerun_export))
        .route("/qm/recordings/{file}", get(recording_for_qm))
}

/// The integration as an administrator sees it: the API key never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub base_url: String,
    /// The key masked (`••••` and its last four characters); null when none is set.
    pub api_key: Option<String>,
    /// False when the stored key was sealed with another secret key: enter it again.
    pub api_key_readable: bool,
    pub language_code: String,
    pub operator_channel: OperatorChannel,
    /// Exports may run.
    pub active: bool,
    /// The QM system accepted these credentials (when: `connected_at`).
    pub connected: bool,
    pub connected_at: Option<String>,
    /// Where the QM system downloads recordings from: this server's public URL
    /// (`--public-url`), which it must be able to reach.
    pub file_links_from: String,
}

fn defaults() -> Integration {
    Integration {
        base_url: DEFAULT_BASE_URL.to_string(),
        api_key_sealed: None,
        api_key_hint: None,
        language_code: "ru".into(),
        operator_channel: OperatorChannel::Left,
        connected_at: None,
        active: false,
        updated_at: 0,
    }
}

fn view(state: &AppState, account: AccountId, i: Integration) -> IntegrationView {
    let qm = &state.qm;
    let readable = i
        .api_key_sealed
        .as_deref()
        .is_some_and(|s| qm.sealing.open(s, &Qm::key_context(account)).is_ok());
    IntegrationView {
        base_url: i.base_url,
        api_key: i
            .api_key_sealed
            .as_ref()
            .map(|_| format!("••••{}", i.api_key_hint.unwrap_or_default())),
        api_key_readable: readable,
        language_code: i.language_code,
        operator_channel: i.operator_channel,
        active: i.active,
        connected: i.connected_at.is_some(),
        connected_at: i.connected_at.map(|t| format_time(t, None)),
        file_links_from: format!("{}/qm/recordings/", state.config.public_url),
    }
}

fn administrator(principal: &Principal) -> Result<(), AppError> {
    if !principal.may_administer() {
        return Err(AppError::Forbidden(
            "only an owner or administrator sets up the QM integration".into(),
        ));
    }
    Ok(())
}

async fn current(state: &AppState, account: AccountId) -> Result<Integration, AppError> {
    Ok(state
        .store
        .read(move |conn| rows::integration(conn, account))
        .await?
        .unwrap_or_else(defaults))
}

/// The QM integration's settings (owner, administrator).
#[utoipa::path(get, path = "/api/v1/integrations/qm", tag = "integrations",
    responses((status = 200, body = IntegrationView), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_integration(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal)?;
    let account = principal.account_id;
    let i = current(&state, account).await?;
    Ok(Json(view(&state, account, i)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationChange {
    /// The QM system's address (default https://tqm-cloud.tbank.ru).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API key of the QM account; write-only.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The language calls are in, e.g. `ru`.
    #[serde(default)]
    pub language_code: Option<String>,
    /// Which side of a stereo recording is the operator.
    #[serde(default)]
    pub operator_channel: Option<OperatorChannel>,
    /// true: check the credentials with the QM system, then turn exports on; false: off.
    #[serde(default)]
    pub active: Option<bool>,
}

fn check_change(c: &IntegrationChange) -> Result<(), AppError> {
    if let Some(url) = &c.base_url {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| AppError::invalid("base_url", format!("not a URL ({e}): {url:?}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AppError::invalid("base_url", "expected an http(s) URL with a host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(AppError::invalid(
                "base_url",
                "no query, fragment or credentials in the base URL",
            ));
        }
        if url.len() > 500 {
            return Err(AppError::invalid("base_url", "at most 500 characters"));
        }
    }
    if let Some(key) = &c.api_key {
        if key.is_empty() || key.len() > 1000 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::invalid(
                "api_key",
                "the API key is 1 … 1000 printable characters without spaces",
            ));
        }
    }
    if let Some(code) = &c.language_code {
        if !words::check_language(code) {
            return Err(AppError::invalid(
                "language_code",
                format!("expected a language code such as ru or kk-KZ, got {code:?}"),
            ));
        }
    }
    Ok(())
}

/// The credentials checked with the QM system; a refusal names the field to fix.
async fn check_credentials(state: &AppState, base_url: &str, key: &str) -> Result<(), AppError> {
    let timeout = std::time::Duration::from_millis(state.config.qm.timeout_ms.min(15_000));
    let client = QmClient::new(base_url, key, timeout).map_err(AppError::Internal)?;
    client.check().await.map_err(|e| match e {
        CheckError::KeyRefused(_) => AppError::invalid("api_key", e.to_string()),
        CheckError::BaseUrl(m) => AppError::invalid("base_url", m),
    })
}

/// The stored key, opened; a key sealed with another secret key must be entered again.
fn open_key(qm: &Qm, account: AccountId, i: &Integration) -> Result<String, AppError> {
    let sealed = i
        .api_key_sealed
        .as_deref()
        .ok_or_else(|| AppError::invalid("api_key", "set the QM system's API key first"))?;
    qm.sealing
        .open(sealed, &Qm::key_context(account))
        .map_err(|e| AppError::invalid("api_key", format!("{e}; enter the API key again")))
}

/// Changes the QM integration (owner, administrator). `active: true` first checks the
/// credentials with the QM system; a refusal is a 400 naming `api_key` or `base_url`, and
/// nothing changes.
#[utoipa::path(put, path = "/api/v1/integrations/qm", tag = "integrations", request_body = IntegrationChange,
    responses((status = 200, body = IntegrationView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_integration(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(change): JsonBody<IntegrationChange>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal)?;
    check_change(&change)?;
    let account = principal.account_id;
    let before = current(&state, account).await?;
    let mut after = before.clone();
    let mut changed = vec![];
    if let Some(url) = &change.base_url {
        let url = url.trim_end_matches('/').to_string();
        if url != after.base_url {
            after.base_url = url;
            changed.push("base_url");
        }
    }
    if let Some(key) = &change.api_key {
        after.api_key_sealed = Some(state.qm.sealing.seal(key, &Qm::key_context(account)));
        let tail: String = key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        after.api_key_hint = Some(tail);
        changed.push("api_key");
    }
    if changed.iter().any(|f| matches!(*f, "base_url" | "api_key")) {
        // Other credentials: connected again before they are used.
        after.connected_at = None;
    }
    if let Some(code) = &change.language_code {
        if *code != after.language_code {
            after.language_code = code.clone();
            changed.push("language_code");
        }
    }
    if let Some(channel) = change.operator_channel {
        if channel != after.operator_channel {
            after.operator_channel = channel;
            changed.push("operator_channel");
        }
    }
    if let Some(active) = change.active {
        if active != before.active {
            changed.push("active");
        }
        after.active = active;
    }
    if after.active && (after.connected_at.is_none() || !before.active) {
        let key = match &change.api_key {
            Some(k) => k.clone(),
            None => open_key(&state.qm, account, &after)?,
        };
        check_credentials(&state, &after.base_url, &key).await?;
        after.connected_at = Some(now_ms());
    }
    after.updated_at = now_ms();
    let actor = Actor::of(&principal, address);
    let saved = after.clone();
    state
        .store
        .write(move |conn, _| {
            rows::put_integration(conn, account, &saved)?;
            if changed.contains(&"base_url") {
                rows::forget_operators(conn, account)?;
            }
            if !changed.is_empty() {
                let detail = serde_json::json!({
                    "changed": changed,
                    "base_url": saved.base_url,
                    "language_code": saved.language_code,
                    "operator_channel": saved.operator_channel.code(),
                    "active": saved.active,
                });
                audit::record(conn, &actor, AuditAction::QmSettingsChanged, None, Some(detail))?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(view(&state, account, after)))
}

/// Checks the stored credentials with the QM system without changing whether exports run.
#[utoipa::path(post, path = "/api/v1/integrations/qm/connect", tag = "integrations",
    responses((status = 200, body = IntegrationView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn connect(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal)?;
    let account = principal.account_id;
    let mut i = current(&state, account).await?;
    let key = open_key(&state.qm, account, &i)?;
    check_credentials(&state, &i.base_url, &key).await?;
    let now = now_ms();
    i.connected_at = Some(now);
    i.updated_at = now;
    let actor = Actor::of(&principal, address);
    let saved = i.clone();
    state
        .store
        .write(move |conn, _| {
            rows::put_integration(conn, account, &saved)?;
            let detail = serde_json::json!({ "connected": true, "base_url": saved.base_url });
            audit::record(conn, &actor, AuditAction::QmSettingsChanged, None, Some(detail))
        })
        .await?;
    Ok(Json(view(&state, account, i)))
}

/// What to hand to the QM system: the calls of a search, or these calls.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QmExportRequest {
    /// The search filters, as for `GET /api/v1/calls` (each value a string or a list).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filters: Option<serde_json::Map<String, Value>>,
    /// Call ids (at most 10,000).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub call_ids: Option<Vec<Value>>,
}

/// One failed attempt at a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailureView {
    pub at: String,
    pub status: Option<i64>,
    pub correlation_id: Option<String>,
    pub error: String,
}

/// One call of a job.
#[derive(Debug, Serialize, ToSchema)]
pub struct QmCallView {
    pub call_id: String,
    /// The telephony's id of the call (null once the call is deleted).
    pub external_id: Option<String>,
    /// The id the QM system knows the call by.
    pub qm_id: Option<String>,
    pub outcome: Outcome,
    /// Requests made for it.
    pub attempts: i64,
    /// The QM system's last answer.
    pub status: Option<i64>,
    /// The x-correlation-id of its last failure.
    pub correlation_id: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Every failed attempt, oldest first.
    pub failures: Vec<FailureView>,
}

/// An export job, its progress and (for one job) its calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct QmExportView {
    pub id: String,
    pub state: JobState,
    /// Calls in the job (known once it has started).
    pub total: i64,
    pub pending: i64,
    pub sent: i64,
    /// Taken in an earlier export, not sent again.
    pub already_sent: i64,
    /// Without a recording (or deleted meanwhile).
    pub skipped: i64,
    pub failed: i64,
    /// Why the job stopped.
    pub error: Option<String>,
    /// The export whose unsent calls this one sends again.
    pub rerun_of: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<Vec<QmCallView>>,
    /// Pass as `after` for the next calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

fn export_view(job: Export, counts: rows::Counts) -> QmExportView {
    QmExportView {
        id: job.id.to_string(),
        state: job.state,
        total: counts.total(),
        // A call whose request is out is still to be settled.
        pending: counts.pending + counts.sending,
        sent: counts.sent,
        already_sent: counts.already_sent,
        skipped: counts.skipped,
        failed: counts.failed,
        error: job.error,
        rerun_of: job.rerun_of.map(|r| r.to_string()),
        created_at: format_time(job.created_at, None),
        started_at: job.started_at.map(|t| format_time(t, None)),
        finished_at: job.finished_at.map(|t| format_time(t, None)),
        calls: None,
        next_after: None,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QmExportList {
    pub items: Vec<QmExportView>,
}

fn exporter(principal: &Principal) -> Result<(), AppError> {
    if !principal.may_export_to_qm() {
        return Err(AppError::Forbidden(
            "only an owner, administrator or manager hands calls to the QM system".into(),
        ));
    }
    Ok(())
}

/// Why exports cannot run now, if they cannot: not connected and active, or a key this
/// server cannot open.
pub(crate) fn not_ready(qm: &Qm, account: AccountId, i: Option<&Integration>) -> Option<&'static str> {
    match i {
        Some(i) if i.active && i.connected_at.is_some() => open_key(qm, account, i)
            .err()
            .map(|_| "the QM integration's API key must be entered again (the server's secret key changed)"),
        _ => Some(
            "the QM integration is not connected and active: an owner or administrator sets it up in Settings → QM",
        ),
    }
}

/// 409 unless exports can run.
async fn require_active(state: &AppState, account: AccountId) -> Result<(), AppError> {
    let i = current(state, account).await?;
    match not_ready(&state.qm, account, Some(&i)) {
        Some(why) => Err(AppError::Conflict(why.into())),
        None => Ok(()),
    }
}

fn parse_call_ids(items: &[Value]) -> Result<Vec<i64>, AppError> {
    if items.is_empty() || items.len() > MAX_CALL_IDS {
        return Err(AppError::invalid("call_ids", format!("1 … {MAX_CALL_IDS} call ids")));
    }
    let mut ids = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let id = match v {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
        .filter(|id| *id > 0)
        .ok_or_else(|| AppError::invalid(format!("call_ids[{i}]"), "expected a call id"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// Starts handing calls to the QM system (owner, administrator, manager; 409 while the
/// integration is not connected and active). The job runs in the background.
#[utoipa::path(post, path = "/api/v1/integrations/qm/exports", tag = "integrations", request_body = QmExportRequest,
    responses((status = 201, body = QmExportView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_export(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<QmExportRequest>,
) -> Result<(StatusCode, Json<QmExportView>), AppError> {
    exporter(&principal)?;
    let account = principal.account_id;
    require_active(&state, account).await?;
    let actor = Actor::of(&principal, address);
    let p = principal.clone();
    let job = match (body.filters, body.call_ids) {
        (Some(filters), None) => {
            let pairs = filter_pairs(&filters, &[])?;
            let job = state
                .store
                .write(move |conn, _| {
                    let (_, req, tz) = access::prepare_search(conn, &p, &pairs, chrono::Utc::now())?;
                    // The zone the search was asked in goes with it.
                    let mut pairs = pairs;
                    pairs.retain(|(k, _)| k != "tz");
                    pairs.push(("tz".into(), tz.name().to_string()));
                    let query = serde_json::to_string(&pairs).map_err(|e| StoreError::Conflict(e.to_string()))?;
                    let id = rows::create_export(conn, account, p.user_id, Some(&query), None, None, now_ms())?;
                    let detail = serde_json::json!({ "job": id.to_string(), "filters": req.fingerprint });
                    audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
                    rows::export(conn, account, id)
                })
                .await?;
            job
        }
        (None, Some(items)) => {
            let mut ids = parse_call_ids(&items)?;
            ids.sort_unstable();
            ids.dedup();
            state
                .store
                .write(move |conn, _| {
                    let scope = access::scope_for(conn, &p)?;
                    for (i, v) in items.iter().enumerate() {
                        let id = parse_call_ids(std::slice::from_ref(v)).map_err(|_| StoreError::NotFound)?[0];
                        if !search::in_scope(conn, &scope, id)? {
                            return Err(StoreError::Invalid(crate::domain::FieldError::new(
                                format!("call_ids[{i}]"),
                                format!("no call with id {id}"),
                            )));
                        }
                    }
                    let id = rows::create_export(conn, account, p.user_id, None, Some(&ids), None, now_ms())?;
                    let detail = serde_json::json!({ "job": id.to_string(), "calls": ids.len() });
                    audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
                    rows::export(conn, account, id)
                })
                .await?
        }
        _ => {
            return Err(AppError::invalid(
                "filters",
                "send either filters (the calls of a search) or call_ids, not both",
            ))
        }
    };
    state.qm.wake.notify_one();
    let view = export_summary(&state, job).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn export_summary(state: &AppState, job: Export) -> Result<QmExportView, AppError> {
    let id = job.id;
    let counts = state.store.read(move |conn| rows::counts(conn, id)).await?;
    Ok(export_view(job, counts))
}

/// The account's QM exports, newest first (the last 50).
#[utoipa::path(get, path = "/api/v1/integrations/qm/exports", tag = "integrations",
    responses((status = 200, body = QmExportList), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_exports(principal: Principal, State(state): State<AppState>) -> Result<Json<QmExportList>, AppError> {
    exporter(&principal)?;
    let account = principal.account_id;
    let items = state
        .store
        .read(move |conn| {
            rows::exports(conn, account, 50)?
                .into_iter()
                .map(|job| {
                    let counts = rows::counts(conn, job.id)?;
                    Ok(export_view(job, counts))
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    Ok(Json(QmExportList { items }))
}

fn job_id(id: &str) -> Result<i64, AppError> {
    id.parse().map_err(|_| AppError::NotFound)
}

/// One QM export: progress and its calls' outcomes (`outcome` filters, `after` + `limit` page).
#[utoipa::path(get, path = "/api/v1/integrations/qm/exports/{id}", tag = "integrations",
    params(("id" = String, Path), ("outcome" = Option<String>, Query, description = "pending, sending, sent, already_sent, skipped or failed"),
           ("after" = Option<String>, Query, description = "a call id: the calls after it"),
           ("limit" = Option<u32>, Query, description = "1 … 5000, default 1000")),
    responses((status = 200, body = QmExportView), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_export(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<QmExportView>, AppError> {
    exporter(&principal)?;
    let id = job_id(&id)?;
    let (mut outcome, mut after, mut limit) = (None, 0i64, 1000u32);
    for (k, v) in &pairs {
        match k.as_str() {
            "outcome" => {
                outcome = Some(
                    Outcome::parse(v).ok_or_else(|| AppError::invalid("outcome", format!("unknown outcome {v:?}")))?,
                )
            }
            "after" => {
                after = v
                    .parse()
                    .map_err(|_| AppError::invalid("after", "expected a call id"))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|l| (1..=5000).contains(l))
                    .ok_or_else(|| AppError::invalid("limit", "1 … 5000"))?
            }
            other => return Err(AppError::invalid(other, format!("unknown parameter {other:?}"))),
        }
    }
    let account = principal.account_id;
    let (job, counts, calls, failures) = state
        .store
        .read(move |conn| {
            let job = rows::export(conn, account, id)?;
            let counts = rows::counts(conn, id)?;
            let calls = rows::export_calls(conn, id, outcome, after, limit)?;
            let ids: Vec<i64> = calls.iter().map(|c| c.call_id).collect();
            let failures = rows::failures(conn, id, &ids)?;
            Ok((job, counts, calls, failures))
        })
        .await?;
    let mut view = export_view(job, counts);
    view.next_after = (calls.len() == limit as usize)
        .then(|| calls.last().map(|c| c.call_id.to_string()))
        .flatten();
    let mut failures = failures;
    view.calls = Some(
        calls
            .into_iter()
            .map(|c| QmCallView {
                call_id: c.call_id.to_string(),
                qm_id: c.external_id.as_deref().map(words::call_id),
                external_id: c.external_id,
                outcome: c.outcome,
                attempts: c.attempts,
                status: c.status,
                correlation_id: c.correlation_id,
                error: c.error,
                failures: failures
                    .remove(&c.call_id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| FailureView {
                        at: format_time(f.at, None),
                        status: f.status,
                        correlation_id: f.correlation_id,
                        error: f.error,
                    })
                    .collect(),
            })
            .collect(),
    );
    Ok(Json(view))
}

/// Cancels a queued or running QM export; its unsent calls stay for a re-run.
#[utoipa::path(delete, path = "/api/v1/integrations/qm/exports/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = QmExportView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_export(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
) -> Result<Json<QmExportView>, AppError> {
    exporter(&principal)?;
    let id = job_id(&id)?;
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let job = state
        .store
        .write(move |conn, _| {
            let before = rows::export(conn, account, id)?;
            let after = rows::cancel_export(conn, account, id, now_ms())?;
            if after.state != before.state {
                let detail = serde_json::json!({ "job": id.to_string(), "cancelled": true });
                audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
            }
            Ok(after)
        })
        .await?;
    Ok(Json(export_summary(&state, job).await?))
}

/// Sends again what an export did not deliver (failed calls, and those a cancelled or failed
/// job never sent), as a new export.
#[utoipa::path(post, path = "/api/v1/integrations/qm/exports/{id}/rerun", tag = "integrations", params(("id" = String, Path)),
    responses((status = 201, body = QmExportView), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn rerun_export(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
) -> Result<(StatusCode, Json<QmExportView>), AppError> {
    exporter(&principal)?;
    let id = job_id(&id)?;
    let account = principal.account_id;
    require_active(&state, account).await?;
    let actor = Actor::of(&principal, address);
    let user = principal.user_id;
    let job = state
        .store
        .write(move |conn, _| {
            let original = rows::export(conn, account, id)?;
            if matches!(original.state, JobState::Queued | JobState::Running) {
                return Err(StoreError::Conflict(format!(
                    "export {id} is still running; re-run it once it has finished"
                )));
            }
            let unsent = rows::unsent_calls(conn, id)?;
            if unsent.is_empty() {
                return Err(StoreError::Conflict(format!(
                    "nothing to send again: every call of export {id} was sent or skipped"
                )));
            }
            let new = rows::create_export(conn, account, user, None, Some(&unsent), Some(id), now_ms())?;
            let detail =
                serde_json::json!({ "job": new.to_string(), "rerun_of": id.to_string(), "calls": unsent.len() });
            audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
            rows::export(conn, account, new)
        })
        .await?;
    state.qm.wake.notify_one();
    Ok((StatusCode::CREATED, Json(export_summary(&state, job).await?)))
}

/// A recording for the QM system, by the signed link handed to it with the call: no account
/// needed, works until it expires (410), with byte ranges; a link not made by this server is
/// 404. Each download is in the audit log as the QM system's.
pub async fn recording_for_qm(
    State(state): State<AppState>,
    Path(file): Path<String>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let call: i64 = file
        .split_once('.')
        .map_or(file.as_str(), |(id, _)| id)
        .parse()
        .map_err(|_| AppError::NotFound)?;
    let find = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let expires: i64 = find("expires").and_then(|v| v.parse().ok()).ok_or(AppError::NotFound)?;
    let signature = find("signature").ok_or(AppError::NotFound)?;
    match link::verify(&state.qm.link_key, call, expires, signature, now_ms() / 1000) {
        Ok(()) => {}
        Err(LinkError::Forged) => return Err(AppError::NotFound),
        Err(LinkError::Expired) => return Err(AppError::Gone("this recording link has expired".into())),
    }
    let (account, recording) = state
        .store
        .read(move |conn| {
            let Some(account) = recordings::account_of_call(conn, call)? else {
                return Ok((None, None));
            };
            Ok((Some(account), recordings::of_call(conn, account, call)?))
        })
        .await?;
    let (Some(account), Some(recording)) = (account, recording) else {
        return Err(AppError::NotFound);
    };
    let actor = Actor::system(account, "QM system");
    super::recording::serve(&state, call, recording, &headers, RecordingUse::Download, "qm", actor).await
}
