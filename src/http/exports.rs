//! Background exports: `POST /api/v1/exports` asks for one, `GET /api/v1/exports/{id}` follows
//! it, `GET …/file` downloads it when done, `DELETE` cancels it (or deletes its file). A job is
//! its user's own: nobody else sees it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::export::{ask, Asked};
use super::extract::{ClientAddr, JsonBody};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{AccountId, Principal, UserId};
use crate::error::AppError;
use crate::export::jobs::JobState;
use crate::store::audit::{self, Actor};
use crate::store::auth::now_ms;
use crate::store::exports::{self, Job, NewJob};
use crate::store::view::format_time;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/exports", get(list_exports).post(start_export))
        .route("/api/v1/exports/{id}", get(get_export).delete(cancel_export))
        .route("/api/v1/exports/{id}/file", get(export_file))
}

/// A background export as its user sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportJob {
    pub id: String,
    pub state: JobState,
    pub format: String,
    pub rows_done: i64,
    /// Known once the job has started.
    pub rows_total: Option<i64>,
    /// Where to download the file, while it is there.
    pub file_url: Option<String>,
    pub file_name: Option<String>,
    pub file_bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// When the file is deleted.
    pub expires_at: Option<String>,
}

impl From<Job> for ExportJob {
    fn from(j: Job) -> Self {
        let kept = j.state == JobState::Done && !j.file_deleted;
        ExportJob {
            id: j.id.to_string(),
            state: j.state,
            format: j.format,
            rows_done: j.rows_done,
            rows_total: j.rows_total,
            file_url: kept.then(|| format!("/api/v1/exports/{}/file", j.id)),
            file_name: j.file_name.filter(|_| kept),
            file_bytes: j.file_bytes.filter(|_| kept),
            error: j.error,
            created_at: format_time(j.created_at, None),
            finished_at: j.finished_at.map(|t| format_time(t, None)),
            expires_at: j.expires_at.filter(|_| kept).map(|t| format_time(t, None)),
        }
    }
}

/// What to export: the search filters as an object (each value a string or a list of strings),
/// the columns (a list or a comma-separated string), language, zone and CSV delimiter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// csv or xlsx
    pub format: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filters: serde_json::Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub columns: Option<Value>,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub tz: Option<String>,
    #[serde(default)]
    pub delimiter: Option<String>,
}

fn text(field: &str, v: &Value) -> Result<String, AppError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(AppError::invalid(field, "expected a string or a list of strings")),
    }
}

/// Search filters sent as a JSON object (each value a string, a number or a list of them) as
/// the query pairs of `GET /api/v1/calls`, so that both are checked alike. `reserved` are keys
/// of the request around the filters, refused inside them.
pub(crate) fn filter_pairs(
    filters: &serde_json::Map<String, Value>,
    reserved: &[&str],
) -> Result<Vec<(String, String)>, AppError> {
    let mut pairs = vec![];
    for (key, value) in filters {
        let field = format!("filters.{key}");
        if reserved.contains(&key.as_str()) {
            return Err(AppError::invalid(
                field,
                format!("{key} is a field of the request, not a filter"),
            ));
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    pairs.push((key.clone(), text(&field, item)?));
                }
            }
            v => pairs.push((key.clone(), text(&field, v)?)),
        }
    }
    Ok(pairs)
}

/// The request as the query pairs of `GET /api/v1/calls/export`, so both are checked alike.
fn as_pairs(body: ExportRequest) -> Result<Vec<(String, String)>, AppError> {
    let mut pairs = vec![("format".to_string(), body.format)];
    pairs.extend(filter_pairs(
        &body.filters,
        &["format", "lang", "columns", "delimiter"],
    )?);
    match body.columns {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => pairs.push(("columns".into(), s)),
        Some(Value::Array(items)) => {
            let codes: Result<Vec<String>, AppError> = items.iter().map(|v| text("columns", v)).collect();
            pairs.push(("columns".into(), codes?.join(",")));
        }
        Some(_) => return Err(AppError::invalid("columns", "expected a list of column ids")),
    }
    for (key, value) in [("lang", body.lang), ("tz", body.tz), ("delimiter", body.delimiter)] {
        if let Some(v) = value {
            pairs.push((key.to_string(), v));
        }
    }
    Ok(pairs)
}

/// Starts a background export of the filtered calls; answers at once with the job to follow.
#[utoipa::path(post, path = "/api/v1/exports", tag = "exports", request_body = ExportRequest,
    responses((status = 202, body = ExportJob), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn start_export(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<ExportRequest>,
) -> Result<(StatusCode, Json<ExportJob>), AppError> {
    let job = start_job(&state, &principal, address, as_pairs(body)?).await?;
    Ok((StatusCode::ACCEPTED, Json(job)))
}

/// Queues an export of the search `pairs` describe (filters, `format`, `lang`, `columns`…).
pub(super) async fn start_job(
    state: &AppState,
    principal: &Principal,
    address: Option<String>,
    pairs: Vec<(String, String)>,
) -> Result<ExportJob, AppError> {
    let Asked {
        options,
        layout,
        delimiter,
        req,
        mut filters,
        ..
    } = ask(state, principal, pairs).await?;
    // The zone the job was asked in goes with it; presets are evaluated as of now.
    filters.retain(|(k, _)| k != "tz");
    filters.push(("tz".into(), layout.tz.name().to_string()));
    let query = serde_json::to_string(&filters).map_err(|e| AppError::Internal(e.to_string()))?;
    let columns: Vec<&str> = layout.columns.iter().map(|c| c.code()).collect();
    let columns = columns.join(",");
    let actor = Actor::of(principal, address);
    let (account, user) = (principal.account_id, principal.user_id);
    let format = options.format.code();
    let job = state
        .store
        .write(move |conn, _| {
            let id = exports::create(
                conn,
                &NewJob {
                    account,
                    user,
                    format,
                    lang: layout.lang.code(),
                    tz: layout.tz.name(),
                    columns: &columns,
                    delimiter: &(delimiter as char).to_string(),
                    query: &query,
                    now: now_ms(),
                },
            )?;
            let detail = serde_json::json!({
                "format": format, "job": id.to_string(), "filters": req.fingerprint,
                "columns": columns.split(',').collect::<Vec<_>>(),
            });
            audit::record(conn, &actor, AuditAction::Export, None, Some(detail))?;
            exports::get(conn, account, user, id)
        })
        .await?;
    state.wake(crate::live::Wake::Exports);
    Ok(job.into())
}

/// The keys of a job the principal asks about: theirs alone (another's id is simply not found).
fn own_job(principal: &Principal, id: &str) -> Result<(AccountId, UserId, i64), AppError> {
    reader(principal)?;
    let id = id.parse().map_err(|_| AppError::NotFound)?;
    Ok((principal.account_id, principal.user_id, id))
}

fn reader(principal: &Principal) -> Result<(), AppError> {
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot export".into()));
    }
    Ok(())
}

/// The signed-in user's background exports, newest first (the last 50).
#[utoipa::path(get, path = "/api/v1/exports", tag = "exports",
    responses((status = 200, body = ExportList), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_exports(principal: Principal, State(state): State<AppState>) -> Result<Json<ExportList>, AppError> {
    reader(&principal)?;
    let (account, user) = (principal.account_id, principal.user_id);
    let jobs = state
        .store
        .read(move |conn| exports::list(conn, account, user, 50))
        .await?;
    Ok(Json(ExportList {
        items: jobs.into_iter().map(ExportJob::from).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportList {
    pub items: Vec<ExportJob>,
}

/// One background export: its state and progress.
#[utoipa::path(get, path = "/api/v1/exports/{id}", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, body = ExportJob), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_export(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportJob>, AppError> {
    Ok(Json(job(&state, &principal, &id).await?.into()))
}

/// One of the principal's jobs (another's id is simply not found).
pub(super) async fn job(state: &AppState, principal: &Principal, id: &str) -> Result<Job, AppError> {
    let (account, user, id) = own_job(principal, id)?;
    Ok(state
        .store
        .read(move |conn| exports::get(conn, account, user, id))
        .await?)
}

/// Cancels a queued or running export; for a finished one, deletes its file.
#[utoipa::path(delete, path = "/api/v1/exports/{id}", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, body = ExportJob), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel_export(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportJob>, AppError> {
    let (account, user, id) = own_job(&principal, &id)?;
    let job = state
        .store
        .write(move |conn, _| exports::cancel(conn, account, user, id, now_ms()))
        .await?;
    if job.state == JobState::Done && !job.file_deleted {
        state
            .exports
            .delete(&job)
            .await
            .map_err(|e| AppError::Internal(format!("deleting the export file: {e}")))?;
        let job = state
            .store
            .write(move |conn, _| {
                exports::file_deleted(conn, id)?;
                exports::get(conn, account, user, id)
            })
            .await?;
        return Ok(Json(job.into()));
    }
    Ok(Json(job.into()))
}

/// The file of a finished export (409 while it runs, 410 once deleted).
#[utoipa::path(get, path = "/api/v1/exports/{id}/file", tag = "exports", params(("id" = String, Path)),
    responses((status = 200, description = "the file"), (status = 404, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 410, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn export_file(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    job_file(&state, job(&state, &principal, &id).await?).await
}

/// A finished job's file as a download.
pub(super) async fn job_file(state: &AppState, job: Job) -> Result<Response, AppError> {
    match job.state {
        JobState::Done if job.file_deleted => {
            return Err(AppError::Gone(
                "the file of this export has been deleted; export again".into(),
            ))
        }
        JobState::Done => {}
        JobState::Queued | JobState::Running => {
            return Err(AppError::Conflict(format!(
                "the export is {}: {} of {} rows written",
                job.state,
                job.rows_done,
                job.rows_total.map_or("?".to_string(), |t| t.to_string())
            )))
        }
        JobState::Failed | JobState::Cancelled => {
            return Err(AppError::Gone(format!("the export {}; there is no file", job.state)))
        }
    }
    let file = state
        .exports
        .open(&job)
        .await
        .map_err(|e| AppError::Internal(format!("opening the export file: {e}")))?;
    let format = crate::export::Format::parse(&job.format).unwrap_or(crate::export::Format::Csv);
    let name = job.file_name.unwrap_or_else(|| format!("calls.{}", format.code()));
    let mut response = Body::from_stream(file).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Some(bytes) = job.file_bytes {
        if let Ok(v) = HeaderValue::from_str(&bytes.to_string()) {
            headers.insert(header::CONTENT_LENGTH, v);
        }
    }
    Ok(response)
}
