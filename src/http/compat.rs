//! The reference product's history API, the compatible subset (api.md, reference-notes.md), so
//! that its official clients work against calltrail unchanged:
//! `/api/v4/history/searchCalls` (cursor paging), `/api/v3/history/searchCalls` (page paging),
//! and the asynchronous export `history/exportCallsHistoryReport` → `report/getReportStatus` →
//! `report/downloadReport` on top of our background exports. Parameters come in the query
//! string, a form body or a JSON body; `access_token` is one of our API tokens and `domain` the
//! account's name. Everything goes through the same scope and search as `GET /api/v1/calls`.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Value};

use super::extract::{Body, ClientAddr};
use super::AppState;
use crate::domain::Principal;
use crate::error::AppError;
use crate::secrets::token_hash;
use crate::store::search::Page;
use crate::store::view::{self, CallView};
use crate::store::{access, auth};

/// Results per page when the client does not say (the clients send 50).
const DEFAULT_LIMIT: usize = 50;
/// v3 pages hold at most this many calls, as in the reference product.
const MAX_PER_PAGE: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v3/history/searchCalls", get(search_v3).post(search_v3))
        .route("/api/v4/history/searchCalls", get(search_v4).post(search_v4))
        .route(
            "/api/v3/history/exportCallsHistoryReport",
            get(export_report).post(export_report),
        )
        .route(
            "/api/v4/history/exportCallsHistoryReport",
            get(export_report).post(export_report),
        )
        .route("/api/v3/report/getReportStatus", get(report_status).post(report_status))
        .route(
            "/api/v3/report/downloadReport",
            get(download_report).post(download_report),
        )
}

/// An error in the product's envelope: `{"success":false,"result":{"error","code"}}` (and the
/// field at fault, where one is); validation errors are 422 there.
pub struct CompatError(AppError);

impl From<AppError> for CompatError {
    fn from(e: AppError) -> Self {
        CompatError(e)
    }
}

impl From<crate::store::StoreError> for CompatError {
    fn from(e: crate::store::StoreError) -> Self {
        CompatError(e.into())
    }
}

impl IntoResponse for CompatError {
    fn into_response(self) -> Response {
        let (status, field) = match &self.0 {
            AppError::Invalid { field, .. } => (StatusCode::UNPROCESSABLE_ENTITY, Some(field.clone())),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, None),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
            AppError::NotFound => (StatusCode::NOT_FOUND, None),
            AppError::Conflict(_) => (StatusCode::CONFLICT, None),
            AppError::Gone(_) => (StatusCode::GONE, None),
            AppError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, None),
            AppError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, None),
            // Everything else keeps our own answer (and logging) for the status.
            _ => return self.0.into_response(),
        };
        let message = match &self.0 {
            AppError::Unauthorized => "authentication failed: access_token and domain".to_string(),
            other => other.to_string(),
        };
        let mut result = json!({ "error": message, "code": status.as_u16() });
        if let Some(f) = field {
            result["field"] = json!(f);
        }
        (status, Json(json!({ "success": false, "result": result }))).into_response()
    }
}

type Answer<T> = Result<T, CompatError>;

/// The request's parameters, from the query string and the body (form or JSON), in that order.
struct Params(Vec<(String, String)>);

impl Params {
    fn read(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, AppError> {
        let mut pairs: Vec<(String, String)> = query
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()).into_owned())
            .collect();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let json = content_type.starts_with("application/json")
            || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if body.iter().all(u8::is_ascii_whitespace) {
        } else if json {
            let doc: serde_json::Map<String, Value> =
                crate::json::parse(body).map_err(|e| AppError::invalid(e.field, e.message))?;
            for (k, v) in doc {
                let text = match v {
                    Value::Null => continue,
                    Value::String(s) => s,
                    // Arrays stay JSON text, as the product's form fields carry them.
                    other => other.to_string(),
                };
                pairs.push((k, text));
            }
        } else {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("1" | "true" | "yes"))
    }

    /// A list parameter: `[1,2]` (JSON text), `1,2`, or repeated.
    fn list(&self, name: &str) -> Result<Vec<String>, AppError> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            let base = k.strip_suffix("[]").unwrap_or(k);
            if base != name {
                continue;
            }
            let v = v.trim();
            if v.starts_with('[') {
                let items: Vec<Value> = serde_json::from_str(v)
                    .map_err(|_| AppError::invalid(name, format!("{v:?} is not a JSON array")))?;
                for item in items {
                    match item {
                        Value::String(s) => out.push(s),
                        Value::Number(n) => out.push(n.to_string()),
                        _ => return Err(AppError::invalid(name, "expected ids")),
                    }
                }
            } else {
                out.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from));
            }
        }
        Ok(out)
    }

    fn number(&self, name: &str, min: usize, max: usize) -> Result<Option<usize>, AppError> {
        let Some(v) = self.get(name) else { return Ok(None) };
        v.parse()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or_else(|| AppError::invalid(name, format!("{v:?}: expected a whole number from {min} to {max}")))
    }
}

/// `access_token` (or a bearer token) and `domain`, the account's name.
async fn principal(state: &AppState, params: &Params, headers: &HeaderMap) -> Result<Principal, AppError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    let token = params.get("access_token").or(bearer).ok_or(AppError::Unauthorized)?;
    let domain = params.get("domain").map(str::to_string);
    let hash = token_hash(token);
    let principal = state
        .store
        .read(move |conn| {
            let Some(p) = auth::principal_for_token(conn, &hash)? else {
                return Ok(None);
            };
            let account = auth::account(conn, p.account_id)?;
            // A token of another account than the one named is as good as no token.
            Ok(domain.filter(|d| *d == account.name).map(|_| p))
        })
        .await?
        .ok_or(AppError::Unauthorized)?;
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read call history".into()));
    }
    Ok(principal)
}

/// `YYYY-MM-DD HH:mm:ss` (UTC) or RFC 3339, as our search's RFC 3339.
fn instant(name: &str, text: &str) -> Result<DateTime<Utc>, AppError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|n| n.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(text).map(|d| d.with_timezone(&Utc)))
        .map_err(|_| AppError::invalid(name, format!("{text:?}: expected YYYY-MM-DD HH:mm:ss (UTC)")))
}

/// The product's filters as ours (`GET /api/v1/calls` parameters).
fn filters(p: &Params) -> Result<Vec<(String, String)>, AppError> {
    let mut pairs = vec![("tz".to_string(), "UTC".to_string())];
    let from = [("from", p.get("from")), ("datetime_start", p.get("datetime_start"))]
        .into_iter()
        .find_map(|(n, v)| v.map(|v| (n, v)));
    if let Some((name, v)) = from {
        pairs.push(("from".into(), instant(name, v)?.to_rfc3339()));
    }
    let to = [("to", p.get("to")), ("datetime_end", p.get("datetime_end"))]
        .into_iter()
        .find_map(|(n, v)| v.map(|v| (n, v)));
    if let Some((name, v)) = to {
        // The product's end is the last second included; ours is exclusive.
        let end = instant(name, v)? + chrono::Duration::seconds(1);
        pairs.push(("to".into(), end.to_rfc3339()));
    }
    match p.get("call_direction") {
        None | Some("all") => {}
        Some(d @ ("incoming" | "outgoing")) => pairs.push(("direction".into(), d.to_string())),
        Some(other) => {
            return Err(AppError::invalid(
                "call_direction",
                format!("{other:?}: expected incoming, outgoing or all"),
            ))
        }
    }
    if let Some(phone) = p.get("phone") {
        if phone.chars().filter(char::is_ascii_digit).count() < 3 {
            return Err(AppError::invalid("phone", "at least 3 digits"));
        }
        pairs.push(("number".into(), phone.to_string()));
    }
    for (theirs, ours) in [("scenario_ids", "scenario"), ("campaign_ids", "campaign")] {
        for id in p.list(theirs)? {
            pairs.push((ours.into(), id));
        }
    }
    Ok(pairs)
}

/// One call as the product lists it.
fn item(state: &AppState, account: i64, c: &CallView, p: &Params) -> Value {
    let int = |s: &str| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n));
    let opt_id = |r: Option<&str>| r.map_or(Value::Null, int);
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|_| t.to_string())
    };
    let result = c.result.map(|r| r.reference_code());
    let cost = c
        .price
        .clone()
        .flatten()
        .and_then(|p| p.parse::<f64>().ok())
        .map_or(Value::Null, |p| json!(p));
    let mut v = json!({
        "id": int(&c.id),
        "attempt_num": c.attempts.unwrap_or(1),
        "domain_id": account,
        "session_id": int(&c.external_id),
        "scenario_id": opt_id(c.scenario.as_ref().map(|s| s.id.as_str())),
        "scenario_version_id": Value::Null,
        "datetime_start": time(&c.started_at),
        "phone_a": c.from,
        "phone_b": c.to,
        "is_incoming": c.kind == crate::domain::CallKind::Incoming,
        "completion_code": result,
        "call_result_code": result,
        "duration": c.talk_seconds,
        "dialing_time": c.ring_seconds,
        "record_url": c.has_recording.then(|| format!("{}/api/v1/calls/{}/recording", state.config.public_url, c.id)),
        "call_cost": cost,
        "campaign_id": opt_id(c.campaign.as_ref().map(|r| r.id.as_str())),
        "has_call_logs": true,
        "user_id": opt_id(c.operator.as_ref().map(|o| o.id.as_str())),
        "queue_id": opt_id(c.queue.as_ref().map(|r| r.id.as_str())),
        "user_group_id": opt_id(c.group.as_ref().map(|r| r.id.as_str())),
        "callback_at": c.completion_code.as_ref().and_then(|w| w.callback_at.as_deref()).map(time),
    });
    if p.flag("with_tags") {
        v["tags"] = c
            .tags
            .iter()
            .map(|t| json!({"id": int(&t.id), "tag_name": t.name}))
            .collect();
    }
    if p.flag("with_wrap_up_code") {
        v["wrap_up_code"] = c.completion_code.as_ref().map_or(Value::Null, |w| {
            json!({
                "id": int(&w.id), "title": w.name, "type": if w.callback_at.is_some() { "callback" } else { "regular" },
                "callback_at": w.callback_at.as_deref().map(time),
            })
        });
    }
    if p.flag("with_scenarios") {
        v["scenario"] = c.scenario.as_ref().map_or(
            Value::Null,
            |s| json!({"id": int(&s.id), "title": s.name, "scenario_type": s.kind.map(|k| k.code())}),
        );
    }
    v
}

/// Calls as the product lists them.
fn items(state: &AppState, account: i64, calls: &[CallView], p: &Params) -> Vec<Value> {
    calls.iter().map(|c| item(state, account, c, p)).collect()
}

/// One page of our search for the product's filters.
async fn page(
    state: &AppState,
    principal: &Principal,
    filters: &[(String, String)],
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page, AppError> {
    let mut pairs = filters.to_vec();
    pairs.push(("limit".into(), limit.to_string()));
    if let Some(c) = cursor {
        pairs.push(("cursor".into(), c.to_string()));
    }
    let (scope, req, _) = super::calls::prepare(&state.store, principal, pairs).await?;
    Ok(state.store.search(scope, req).await?)
}

/// `id=`: one call, if the principal may see it.
async fn by_id(state: &AppState, principal: &Principal, id: &str) -> Result<Vec<CallView>, AppError> {
    let id: i64 = id.parse().map_err(|_| AppError::invalid("id", "expected a call id"))?;
    let principal = principal.clone();
    let tz: Option<chrono_tz::Tz> = Some(chrono_tz::UTC);
    let found = state
        .store
        .read(move |conn| {
            let scope = access::scope_for(conn, &principal)?;
            match view::get(conn, &scope, id, tz) {
                Ok(call) => Ok(Some(call.call)),
                Err(crate::store::StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
    Ok(found.into_iter().collect())
}

struct Request {
    principal: Principal,
    params: Params,
}

async fn request(
    state: &AppState,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Request, AppError> {
    let params = Params::read(query.as_deref(), headers, body)?;
    let principal = principal(state, &params, headers).await?;
    Ok(Request { principal, params })
}

/// The reference product's `searchCalls`, version 4: cursor paging.
#[utoipa::path(
    post, path = "/api/v4/history/searchCalls", tag = "compatibility",
    params(
        ("access_token" = String, Query), ("domain" = String, Query),
        ("from" = Option<String>, Query, description = "YYYY-MM-DD HH:mm:ss, UTC"), ("to" = Option<String>, Query),
        ("call_direction" = Option<String>, Query, description = "incoming, outgoing, all"),
        ("phone" = Option<String>, Query), ("scenario_ids" = Option<String>, Query), ("campaign_ids" = Option<String>, Query),
        ("id" = Option<String>, Query), ("with_tags" = Option<bool>, Query), ("with_wrap_up_code" = Option<bool>, Query),
        ("with_scenarios" = Option<bool>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query),
    ),
    responses((status = 200, description = "{success, result:[…], _meta:{limit, cursor}}"), (status = 401), (status = 403), (status = 422)),
)]
pub async fn search_v4(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    State(state): State<AppState>,
    Body(body): Body,
) -> Answer<Json<Value>> {
    let r = request(&state, query, &headers, &body).await?;
    let limit = r.params.number("limit", 1, 500)?.unwrap_or(DEFAULT_LIMIT);
    let account = r.principal.account_id.0;
    if let Some(id) = r.params.get("id") {
        let calls = by_id(&state, &r.principal, id).await?;
        let result = items(&state, account, &calls, &r.params);
        return Ok(Json(
            json!({"success": true, "result": result, "_meta": {"limit": limit}}),
        ));
    }
    let filters = filters(&r.params)?;
    let page = page(&state, &r.principal, &filters, limit, r.params.get("cursor")).await?;
    let result = items(&state, account, &page.items, &r.params);
    let mut meta = json!({ "limit": limit });
    if let Some(c) = page.next_cursor {
        meta["cursor"] = json!(c);
    }
    Ok(Json(json!({"success": true, "result": result, "_meta": meta})))
}

/// The reference product's `searchCalls`, version 3: `page` and `per-page` (at most 50).
#[utoipa::path(
    get, path = "/api/v3/history/searchCalls", tag = "compatibility",
    params(
        ("access_token" = String, Query), ("domain" = String, Query),
        ("datetime_start" = Option<String>, Query, description = "YYYY-MM-DD HH:mm:ss, UTC (also from)"),
        ("datetime_end" = Option<String>, Query, description = "the last second included (also to)"),
        ("call_direction" = Option<String>, Query), ("phone" = Option<String>, Query),
        ("page" = Option<u32>, Query), ("per-page" = Option<u32>, Query), ("sort" = Option<String>, Query, description = "-id (newest first)"),
    ),
    responses((status = 200, description = "{success, result:[…], _meta:{totalCount, pageCount, currentPage, perPage}}"), (status = 401), (status = 403), (status = 422)),
)]
pub async fn search_v3(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    State(state): State<AppState>,
    Body(body): Body,
) -> Answer<Json<Value>> {
    let r = request(&state, query, &headers, &body).await?;
    let per_page = r.params.number("per-page", 1, MAX_PER_PAGE)?.unwrap_or(MAX_PER_PAGE);
    let current = r.params.number("page", 1, 1_000_000)?.unwrap_or(1);
    match r.params.get("sort") {
        None | Some("-id" | "-datetime_start") => {}
        Some(other) => {
            return Err(AppError::invalid("sort", format!("{other:?}: only newest first (-id) is offered")).into())
        }
    }
    let account = r.principal.account_id.0;
    let meta = |total: u64, per_page: usize| {
        json!({
            "totalCount": total,
            "pageCount": total.div_ceil(per_page as u64),
            "currentPage": current,
            "perPage": per_page,
        })
    };
    if let Some(id) = r.params.get("id") {
        let calls = by_id(&state, &r.principal, id).await?;
        let result = items(&state, account, &calls, &r.params);
        return Ok(Json(
            json!({"success": true, "result": result, "_meta": meta(result.len() as u64, per_page)}),
        ));
    }
    let filters = filters(&r.params)?;
    // Our pages are keyset pages: the pages before are walked in large steps.
    let mut skip = (current - 1) * per_page;
    let mut cursor: Option<String> = None;
    let mut total = None;
    while skip > 0 {
        let step = page(&state, &r.principal, &filters, skip.min(500), cursor.as_deref()).await?;
        total = Some(step.total);
        skip -= step.items.len().min(skip);
        cursor = step.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let (found, total) = if skip > 0 || (current > 1 && cursor.is_none()) {
        (Vec::new(), total.unwrap_or(0))
    } else {
        let p = page(&state, &r.principal, &filters, per_page, cursor.as_deref()).await?;
        (p.items, p.total)
    };
    let result = items(&state, account, &found, &r.params);
    Ok(Json(
        json!({"success": true, "result": result, "_meta": meta(total, per_page)}),
    ))
}

/// The reference product's asynchronous export: a background export of the same filters
/// (`format`/`file_format`: csv or xlsx, `lang`: ru or en); answers the `report_id` to follow.
#[utoipa::path(
    post, path = "/api/v3/history/exportCallsHistoryReport", tag = "compatibility",
    params(("access_token" = String, Query), ("domain" = String, Query), ("format" = Option<String>, Query, description = "csv (default) or xlsx")),
    responses((status = 200, description = "{success, result:{report_id}}"), (status = 401), (status = 422)),
)]
pub async fn export_report(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ClientAddr(address): ClientAddr,
    State(state): State<AppState>,
    Body(body): Body,
) -> Answer<Json<Value>> {
    let r = request(&state, query, &headers, &body).await?;
    let mut pairs = filters(&r.params)?;
    let format = r.params.get("format").or(r.params.get("file_format")).unwrap_or("csv");
    pairs.push(("format".into(), format.to_ascii_lowercase()));
    pairs.push(("lang".into(), r.params.get("lang").unwrap_or("ru").to_string()));
    let job = super::exports::start_job(&state, &r.principal, address, pairs).await?;
    Ok(Json(
        json!({"success": true, "result": {"report_id": job.id.parse::<i64>().unwrap_or_default()}}),
    ))
}

fn report_id(p: &Params) -> Result<String, AppError> {
    p.get("report_id")
        .map(str::to_string)
        .ok_or_else(|| AppError::invalid("report_id", "missing"))
}

/// Whether a report is ready (`processed`), with its progress.
#[utoipa::path(
    post, path = "/api/v3/report/getReportStatus", tag = "compatibility",
    params(("access_token" = String, Query), ("domain" = String, Query), ("report_id" = String, Query)),
    responses((status = 200, description = "{success, result:{report_id, processed, status, rows_done, rows_total}}"), (status = 404)),
)]
pub async fn report_status(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    State(state): State<AppState>,
    Body(body): Body,
) -> Answer<Json<Value>> {
    let r = request(&state, query, &headers, &body).await?;
    let id = report_id(&r.params)?;
    let job = super::exports::job(&state, &r.principal, &id).await?;
    Ok(Json(json!({"success": true, "result": {
        "report_id": job.id,
        "processed": job.state == crate::export::jobs::JobState::Done,
        "status": job.state.to_string(),
        "rows_done": job.rows_done,
        "rows_total": job.rows_total,
        "error": job.error,
    }})))
}

/// A processed report's file.
#[utoipa::path(
    post, path = "/api/v3/report/downloadReport", tag = "compatibility",
    params(("access_token" = String, Query), ("domain" = String, Query), ("report_id" = String, Query)),
    responses((status = 200, description = "the file"), (status = 404), (status = 409, description = "not processed yet")),
)]
pub async fn download_report(
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    State(state): State<AppState>,
    Body(body): Body,
) -> Answer<Response> {
    let r = request(&state, query, &headers, &body).await?;
    let id = report_id(&r.params)?;
    let job = super::exports::job(&state, &r.principal, &id).await?;
    Ok(super::exports::job_file(&state, job).await?)
}
