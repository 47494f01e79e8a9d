//! Recordings over HTTP: uploads from the telephony, and playing or downloading a call's
//! recording by byte ranges, for whoever may see the call and as the account allows.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use futures_util::stream::{StreamExt, TryStreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{ClientAddr, QueryPairs};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::recording::{may_use, RecordingUse};
use crate::domain::Principal;
use crate::error::AppError;
use crate::recording::range::{self, Answer};
use crate::recording::sniff;
use crate::recording::storage::StorageError;
use crate::store::audit::{self, Actor};
use crate::store::auth::{self, now_ms};
use crate::store::recordings::Recording;
use crate::store::{access, recordings, search};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls/{id}/recording", get(get_recording))
        .route("/api/v1/ingest/calls/{external_id}/recording", put(upload_recording))
}

/// What an upload stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct Uploaded {
    pub external_id: String,
    /// The call's id, when the call has arrived (a recording may come first).
    pub call_id: Option<String>,
    pub content_type: String,
    pub bytes: i64,
    pub sha256: String,
}

/// Uploads a call's recording; the body is the file. Streamed to storage, never held whole in
/// memory; answered once both the file and its record are durable. A second upload replaces
/// the first.
#[utoipa::path(
    put, path = "/api/v1/ingest/calls/{external_id}/recording", tag = "ingest",
    params(("external_id" = String, Path, description = "the telephony's call id")),
    request_body(content = Vec<u8>, content_type = "audio/mpeg", description = "the file: WAV, MP3, OGG, FLAC, WebM, MP4 or AMR"),
    responses((status = 200, body = Uploaded), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody),
              (status = 415, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn upload_recording(
    principal: Principal,
    State(state): State<AppState>,
    Path(external_id): Path<String>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Uploaded>, AppError> {
    if !principal.may_ingest() {
        return Err(AppError::Forbidden("this credential may not ingest calls".into()));
    }
    if external_id.trim().is_empty() || external_id.chars().count() > 128 {
        return Err(AppError::invalid("external_id", "a call id is 1 to 128 characters"));
    }
    let limit = state.recordings.max_bytes;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > limit) {
        return Err(AppError::PayloadTooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        });
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let stream = body
        .into_data_stream()
        .map_err(|e| StorageError::Source(e.to_string()))
        .boxed();
    let account = principal.account_id;
    let file = state.recordings.store_body(account, stream, declared).await?;
    let source = principal.source();
    let actor = Actor::of(&principal, address);
    let key = file.object_key.clone();
    let (ext, stored) = (external_id.clone(), file.clone());
    let attached = state
        .store
        .write(move |conn, _| {
            let call = recordings::attach(conn, account, &ext, &stored, None, &source, now_ms())?;
            let detail = serde_json::json!({"bytes": stored.bytes, "content_type": stored.content_type});
            audit::record(conn, &actor, AuditAction::RecordingUploaded, Some(&ext), Some(detail))?;
            Ok(call)
        })
        .await;
    let call = match attached {
        Ok(call) => call,
        Err(e) => {
            // Not recorded, so not acknowledged: the file must not stay behind.
            let _ = state.recordings.storage.delete(&key).await;
            return Err(e.into());
        }
    };
    if let Some(id) = call {
        state.live.publish(account, vec![id]);
    }
    // The recording it replaced, if any, waits in the deletion queue.
    state.wake(crate::live::Wake::Recordings);
    Ok(Json(Uploaded {
        external_id,
        call_id: call.map(|c| c.to_string()),
        content_type: file.content_type,
        bytes: file.bytes,
        sha256: file.sha256,
    }))
}

/// A call's recording, with HTTP range requests (206; 416 past the end). `download=1` asks for
/// the file as an attachment. Every answer that carries bytes is written to the audit log.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/recording", tag = "calls",
    params(("id" = String, Path), ("download" = Option<bool>, Query, description = "as a file to save (default: to play)"),
           ("Range" = Option<String>, Header, description = "bytes=first-last, bytes=first-, bytes=-suffix")),
    responses((status = 200, description = "the whole file"), (status = 206, description = "the asked range"),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 416, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_recording(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read call history".into()));
    }
    let mut how = RecordingUse::Play;
    for (k, v) in &pairs {
        match (k.as_str(), v.as_str()) {
            ("download", "1" | "true") => how = RecordingUse::Download,
            ("download", "0" | "false") => how = RecordingUse::Play,
            ("download", other) => {
                return Err(AppError::invalid("download", format!("expected 1 or 0, got {other:?}")))
            }
            (other, _) => return Err(AppError::invalid(other, format!("unknown parameter {other:?}"))),
        }
    }
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let p = principal.clone();
    let recording = state
        .store
        .read(move |conn| {
            let setting = auth::account(conn, p.account_id)?.restricted_recordings;
            // Decided before the call is looked up: the refusal says nothing about the id.
            if !may_use(p.role, setting, how) {
                return Err(crate::store::StoreError::Forbidden(format!(
                    "your role may not {how} recordings in this account"
                )));
            }
            let scope = access::scope_for(conn, &p)?;
            if !search::in_scope(conn, &scope, id)? {
                return Err(crate::store::StoreError::NotFound);
            }
            recordings::of_call(conn, p.account_id, id)
        })
        .await?
        .ok_or(AppError::NotFound)?;
    let actor = Actor::of(&principal, address);
    serve(&state, id, recording, &headers, how, how.code(), actor).await
}

/// Sends a call's recording file: the asked byte range (206, 416 past the end) or the whole,
/// with its type and ETag, inline or as an attachment; every answer that carries bytes is
/// written to the audit log as `actor`'s, with `use_label` saying how it was used.
pub(crate) async fn serve(
    state: &AppState,
    id: i64,
    recording: Recording,
    headers: &HeaderMap,
    how: RecordingUse,
    use_label: &str,
    actor: Actor,
) -> Result<Response, AppError> {
    // Only a stored file can be served; a pending or failed fetch is no recording yet.
    let key = recording.object_key.clone().ok_or(AppError::NotFound)?;
    let size = u64::try_from(recording.bytes.unwrap_or(0)).unwrap_or(0);
    let content_type = recording
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let etag = format!("\"{}\"", recording.sha256.as_deref().unwrap_or(&key));
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    // A range is only for the same file as the one the client has part of.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == etag);
    let answer = if if_range_ok {
        range::answer(range_header, size)
    } else {
        Answer::Whole
    };
    let range = match &answer {
        Answer::Unsatisfiable => return Err(AppError::RangeNotSatisfiable { size }),
        Answer::Whole => None,
        Answer::Part(r) => Some(r.clone()),
    };
    let body = state.recordings.storage.get(&key, range.clone()).await?;
    let detail = serde_json::json!({
        "call_id": id.to_string(),
        "use": use_label,
        "range": range.as_ref().map(|r| format!("{}-{}", r.start, r.end - 1)),
    });
    state
        .store
        .write(move |conn, _| {
            audit::record(
                conn,
                &actor,
                AuditAction::RecordingDownload,
                Some(&id.to_string()),
                Some(detail),
            )
        })
        .await?;
    let (status, length) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start),
        None => (StatusCode::OK, size),
    };
    let disposition = match how {
        RecordingUse::Play => "inline".to_string(),
        RecordingUse::Download => format!("attachment; filename=\"call-{id}.{}\"", sniff::extension(&content_type)),
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header(header::CONTENT_DISPOSITION, disposition);
    if let Some(r) = &range {
        response = response.header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", r.start, r.end - 1));
    }
    let body = Body::from_stream(body.map_err(|e| std::io::Error::other(e.to_string())));
    response
        .body(body)
        .map(IntoResponse::into_response)
        .map_err(|e| AppError::Internal(e.to_string()))
}
