//! `POST /api/v1/ingest/calls`: call records in, answered only once they are durable.

use axum::http::{header, HeaderMap};
use axum::routing::post;
use axum::{Json, Router};

use super::extract::Body;
use super::AppState;
use crate::domain::Principal;
use crate::error::AppError;
use crate::ingest::native;
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
    let items = match content_type.as_str() {
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => native::parse_ndjson(&body)?,
        "application/json" | "" => native::parse_json(&body)?,
        other => {
            return Err(AppError::UnsupportedMediaType(format!(
                "Content-Type {other} is not accepted; send application/json or application/x-ndjson"
            )))
        }
    };
    let account = principal.account_id;
    let source = principal.source();
    let outcome = state
        .store
        .ingest(move |conn, cache| apply_batch(conn, cache, account, items, &source))
        .await?;
    state.live.publish(account, outcome.changed.clone());
    if outcome.fetches > 0 {
        // The fetcher starts on new recording URLs now rather than at its next round.
        state.wake(crate::live::Wake::Recordings);
    }
    Ok(Json(outcome))
}
