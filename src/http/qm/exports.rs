//! QM export jobs: asked for, followed, cancelled and re-run by owners, administrators and
//! managers.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::settings::{current, open_key};
use crate::domain::audit::AuditAction;
use crate::domain::qm::{self as words, Outcome};
use crate::domain::{AccountId, Principal};
use crate::error::AppError;
use crate::export::jobs::JobState;
use crate::http::exports::filter_pairs;
use crate::http::extract::{ClientAddr, JsonBody, QueryPairs};
use crate::http::AppState;
use crate::qm::Qm;
use crate::store::audit::{self, Actor};
use crate::store::auth::now_ms;
use crate::store::qm::{self as rows, Export, Integration};
use crate::store::view::format_time;
use crate::store::{access, search, StoreError};

/// At most this many calls named in one export request.
const MAX_CALL_IDS: usize = 10_000;

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
    // Checked on a read; the write only records the job.
    let (query, call_ids, detail) = match (body.filters, body.call_ids) {
        (Some(filters), None) => {
            let mut pairs = filter_pairs(&filters, &[])?;
            let asked = pairs.clone();
            let (req, tz) = state
                .store
                .read(move |conn| {
                    let (_, req, tz) = access::prepare_search(conn, &p, &asked, chrono::Utc::now())?;
                    Ok((req, tz))
                })
                .await?;
            // The zone the search was asked in goes with it.
            pairs.retain(|(k, _)| k != "tz");
            pairs.push(("tz".into(), tz.name().to_string()));
            let query = serde_json::to_string(&pairs).map_err(|e| AppError::Internal(e.to_string()))?;
            (Some(query), None, serde_json::json!({ "filters": req.fingerprint }))
        }
        (None, Some(items)) => {
            let ids = parse_call_ids(&items)?;
            let asked = ids.clone();
            let outside = state
                .store
                .read(move |conn| {
                    let scope = access::scope_for(conn, &p)?;
                    for (i, id) in asked.iter().enumerate() {
                        if !search::in_scope(conn, &scope, *id)? {
                            return Ok(Some((i, *id)));
                        }
                    }
                    Ok(None)
                })
                .await?;
            if let Some((i, id)) = outside {
                return Err(AppError::invalid(
                    format!("call_ids[{i}]"),
                    format!("no call with id {id}"),
                ));
            }
            let mut ids = ids;
            ids.sort_unstable();
            ids.dedup();
            let detail = serde_json::json!({ "calls": ids.len() });
            (None, Some(ids), detail)
        }
        _ => {
            return Err(AppError::invalid(
                "filters",
                "send either filters (the calls of a search) or call_ids, not both",
            ))
        }
    };
    let user = principal.user_id;
    let job = state
        .store
        .write(move |conn, _| {
            let id = rows::create_export(
                conn,
                account,
                user,
                query.as_deref(),
                call_ids.as_deref(),
                None,
                now_ms(),
            )?;
            let mut detail = detail;
            detail["job"] = serde_json::json!(id.to_string());
            audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
            rows::export(conn, account, id)
        })
        .await?;
    state.wake(crate::live::Wake::Qm);
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
    // Another account's job is not found, whatever this account's integration says.
    state.store.read(move |conn| rows::export(conn, account, id)).await?;
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
            // Calls in doubt (their server died with the request out) are sent again only now,
            // on this explicit request.
            rows::clear_doubts(conn, account, &unsent)?;
            let new = rows::create_export(conn, account, user, None, Some(&unsent), Some(id), now_ms())?;
            let detail =
                serde_json::json!({ "job": new.to_string(), "rerun_of": id.to_string(), "calls": unsent.len() });
            audit::record(conn, &actor, AuditAction::QmExport, None, Some(detail))?;
            rows::export(conn, account, new)
        })
        .await?;
    state.wake(crate::live::Wake::Qm);
    Ok((StatusCode::CREATED, Json(export_summary(&state, job).await?)))
}
