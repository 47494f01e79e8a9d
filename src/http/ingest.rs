//! `POST /api/v1/ingest/calls`: call records in, answered only once they are durable.

use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};

use super::extract::Body;
use super::AppState;
use crate::domain::Principal;
use crate::error::AppError;
use crate::ingest::native;
use crate::store::health;
use crate::store::ingest::{apply_batch, IngestOutcome};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ingest/calls", post(ingest_calls))
}

/// Upserts call records by `external_id`: a JSON array, or NDJSON with
/// `Content-Type: application/x-ndjson`. A batch with any invalid record is rejected whole.
#[utoipa::path(
    post, path = "/api/v1/ingest/calls", tag = "ingest",
    request_body(content = Vec<crate::domain::CallPatch>, description = "Call records (JSON array or NDJSON)"),
    responses(
        (status = 200, body = IngestOutcome, description = "Stored durably"),
        (status = 400, body = crate::error::ErrorBody, description = "A record is invalid; nothing was stored"),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn ingest_calls(
    principal: Principal,
    headers: HeaderMap,
    axum::extract::State(state): axum::extract::State<AppState>,
    Body(body): Body,
) -> Result<Json<IngestOutcome>, AppError> {
    if !principal.may_ingest() {
        return Err(AppError::Forbidden("this credential may not ingest calls".into()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let account = principal.account_id;
    let stored = store_native(&state, account, &principal.source(), &content_type, &body).await;
    if let Err(e) = &stored {
        super::health::refused(&state, account, SOURCE, e, Some(&content_type), &body).await;
    }
    Ok(Json(stored?))
}

/// How the native API is named in the ingestion health.
pub const SOURCE: &str = "api";

/// Reads and stores a native batch (also a replayed one): durable when it answers.
pub(super) async fn store_native(
    state: &AppState,
    account: crate::domain::AccountId,
    sender: &str,
    content_type: &str,
    body: &[u8],
) -> Result<IngestOutcome, AppError> {
    let items = match content_type {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => native::parse_ndjson(body)?,
        "application/json" | "" => native::parse_json(body)?,
        other => {
            return Err(AppError::UnsupportedMediaType(format!(
                "Content-Type {other} is not accepted; send application/json or application/x-ndjson"
            )))
        }
    };
    let source = sender.to_string();
    let outcome = state
        .store
        .ingest(move |conn, cache| {
            let outcome = apply_batch(conn, cache, account, items, &source)?;
            health::count(conn, account, SOURCE, outcome.counts(), crate::store::auth::now_ms())?;
            Ok(outcome)
        })
        .await?;
    state.live.publish(account, outcome.changed.clone());
    if outcome.fetches > 0 {
        // The fetcher starts on new recording URLs now rather than at its next round.
        state.wake(crate::live::Wake::Recordings);
    }
    Ok(outcome)
}
