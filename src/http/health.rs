//! Ingestion health, for owners and administrators: `GET /api/v1/ingest/health` (per source:
//! accepted, updated, duplicates, pending, skipped, rejected, last seen; the newest refusals),
//! `GET /api/v1/ingest/rejections/{id}` (one refusal with its payload) and
//! `POST /api/v1/ingest/rejections/{id}/replay` (send it again, once the cause is fixed).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::extract::administrator;
use super::AppState;
use crate::domain::{AccountId, Principal};
use crate::error::AppError;
use crate::store::auth::now_ms;
use crate::store::health::{self, NewRejection, Rejection};
use crate::store::view::format_time;

const REFUSAL: &str = "only an owner or an administrator sees the ingestion health";

/// Refusals listed with the health.
const LISTED: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ingest/health", get(get_health))
        .route("/api/v1/ingest/rejections/{id}", get(get_rejection))
        .route("/api/v1/ingest/rejections/{id}/replay", post(replay))
}

/// Records a refusal of `payload` by `source` (what the sender can fix: bad input, a wrong
/// hash); a failure to record it is logged, never hides the refusal itself.
pub(super) async fn refused(
    state: &AppState,
    account: AccountId,
    source: &'static str,
    e: &AppError,
    content_type: Option<&str>,
    payload: &[u8],
) {
    let field = match e {
        AppError::Invalid { field, .. } => Some(field.clone()),
        AppError::Unauthorized | AppError::UnsupportedMediaType(_) | AppError::Conflict(_) => None,
        _ => return,
    };
    let reason = match e {
        AppError::Unauthorized => "the hash does not match the configured salt and domain".to_string(),
        other => other.to_string(),
    };
    let (content_type, payload) = (content_type.map(str::to_string), payload.to_vec());
    let written = state
        .store
        .write(move |conn, _| {
            let r = NewRejection {
                source,
                reason: &reason,
                field: field.as_deref(),
                content_type: content_type.as_deref(),
                payload: Some(&payload),
            };
            health::reject(conn, account, &r, now_ms())
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, source, "could not record a refused payload");
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// `api`, `freeswitch`, `voximplant-kit`, `import:<format>`.
    pub source: String,
    /// New calls.
    pub accepted: i64,
    pub updated: i64,
    /// Sent again, nothing new.
    pub duplicates: i64,
    /// Updates waiting for their call.
    pub pending: i64,
    /// Read, not kept by design (internal calls when skipped, conference summaries).
    pub skipped: i64,
    pub rejected: i64,
    pub last_seen_at: String,
    pub last_rejected_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RejectionView {
    pub id: String,
    pub source: String,
    pub at: String,
    pub reason: String,
    pub field: Option<String>,
    pub content_type: Option<String>,
    /// Bytes kept of the payload (at most 64 KiB); null: a line of a file import.
    pub bytes: Option<usize>,
    pub truncated: bool,
    /// Whether it can be sent again from here.
    pub replayable: bool,
    pub replayed_at: Option<String>,
    /// What the replay did, as JSON.
    #[schema(value_type = Option<Object>)]
    pub replay_outcome: Option<Value>,
    /// `GET /api/v1/ingest/rejections/{id}` only: the payload as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    pub sources: Vec<SourceView>,
    /// The newest refusals (at most 50; the last 100 per source are kept).
    pub rejections: Vec<RejectionView>,
}

fn replayable(r: &Rejection) -> bool {
    r.payload.is_some()
        && !r.truncated
        && [super::ingest::SOURCE, super::pbx::SOURCE, super::voximplant::SOURCE].contains(&r.source.as_str())
}

fn rejection_view(r: Rejection, with_payload: bool) -> RejectionView {
    RejectionView {
        id: r.id.to_string(),
        replayable: replayable(&r),
        at: format_time(r.at, None),
        bytes: r.payload.as_ref().map(Vec::len),
        payload: r
            .payload
            .as_ref()
            .filter(|_| with_payload)
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        replayed_at: r.replayed_at.map(|t| format_time(t, None)),
        replay_outcome: r.replay_outcome.as_deref().and_then(|o| serde_json::from_str(o).ok()),
        source: r.source,
        reason: r.reason,
        field: r.field,
        content_type: r.content_type,
        truncated: r.truncated,
    }
}

/// What came in from each source, and the newest refusals.
#[utoipa::path(get, path = "/api/v1/ingest/health", tag = "ingest",
    responses((status = 200, body = HealthView), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_health(principal: Principal, State(state): State<AppState>) -> Result<Json<HealthView>, AppError> {
    administrator(&principal, REFUSAL)?;
    let account = principal.account_id;
    let (sources, rejections) = state
        .store
        .read(move |conn| {
            Ok((
                health::sources(conn, account)?,
                health::rejections(conn, account, LISTED)?,
            ))
        })
        .await?;
    let sources = sources
        .into_iter()
        .map(|s| {
            let [accepted, updated, duplicates, pending, skipped, rejected] = s.counts;
            SourceView {
                source: s.source,
                accepted,
                updated,
                duplicates,
                pending,
                skipped,
                rejected,
                last_seen_at: format_time(s.last_seen_at, None),
                last_rejected_at: s.last_rejected_at.map(|t| format_time(t, None)),
            }
        })
        .collect();
    Ok(Json(HealthView {
        sources,
        rejections: rejections.into_iter().map(|r| rejection_view(r, false)).collect(),
    }))
}

/// One refusal of the principal's account, for an administrator.
async fn load(state: &AppState, principal: &Principal, id: &str) -> Result<(AccountId, i64, Rejection), AppError> {
    administrator(principal, REFUSAL)?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let account = principal.account_id;
    let r = state
        .store
        .read(move |conn| health::rejection(conn, account, id))
        .await?;
    Ok((account, id, r))
}

/// One refusal with its payload.
#[utoipa::path(get, path = "/api/v1/ingest/rejections/{id}", tag = "ingest", params(("id" = String, Path)),
    responses((status = 200, body = RejectionView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_rejection(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RejectionView>, AppError> {
    let (_, _, r) = load(&state, &principal, &id).await?;
    Ok(Json(rejection_view(r, true)))
}

/// Sends a refused payload again, through the path it first came by (with today's settings:
/// the salt, the PBX settings). Answers what it did; a payload refused again is a 4xx saying
/// why, and stays as it was.
#[utoipa::path(post, path = "/api/v1/ingest/rejections/{id}/replay", tag = "ingest", params(("id" = String, Path)),
    responses((status = 200, body = RejectionView), (status = 400, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn replay(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RejectionView>, AppError> {
    let (account, id, r) = load(&state, &principal, &id).await?;
    if !replayable(&r) {
        return Err(AppError::Conflict(if r.truncated {
            "only the first 64 KiB of this payload were kept: send it again from its source".into()
        } else {
            "a line of a file import: correct the file and import it again".into()
        }));
    }
    let payload = r.payload.clone().unwrap_or_default();
    let content_type = r.content_type.clone().unwrap_or_default();
    let sender = format!("replay by {}", principal.source());
    let outcome = match r.source.as_str() {
        s if s == super::ingest::SOURCE => {
            serde_json::to_value(super::ingest::store_native(&state, account, &sender, &content_type, &payload).await?)
        }
        s if s == super::pbx::SOURCE => {
            serde_json::to_value(super::pbx::store_freeswitch(&state, account, &sender, &content_type, &payload).await?)
        }
        _ => serde_json::to_value(super::voximplant::store_callbacks(&state, account, &sender, &payload).await?),
    }
    .map_err(|e| AppError::Internal(e.to_string()))?;
    let text = outcome.to_string();
    let r = state
        .store
        .write(move |conn, _| {
            health::replayed(conn, account, id, &text, now_ms())?;
            health::rejection(conn, account, id)
        })
        .await?;
    Ok(Json(rejection_view(r, false)))
}
