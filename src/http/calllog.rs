//! A call's log shared by link: creating and revoking the links (full roles), and the read-only
//! page `/log/{token}` that shows one call's log to someone without an account, and nothing else.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Body, ClientAddr};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::recording::CallEvent;
use crate::domain::Principal;
use crate::error::AppError;
use crate::store::audit::{self, Actor};
use crate::store::auth::{self, now_ms};
use crate::store::calllog::{self, CallLog, LinkTarget};
use crate::store::view::format_time;
use crate::store::{access, search, StoreError};

/// How long a link lives unless asked otherwise, and at most.
const DEFAULT_HOURS: u32 = 72;
const MAX_HOURS: u32 = 30 * 24;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls/{id}/log-link", post(create_link).delete(revoke_links))
        .route("/log/{token}", get(shared_log))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// 1 … 720; default 72.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogLink {
    /// Open without an account; shows this call's log only.
    pub url: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// How many live links stopped working.
    pub revoked: usize,
}

/// The call id of a request on one call's log, after checking the principal may see details of
/// that call (full roles, call in scope).
async fn call_for_details(state: &AppState, principal: &Principal, id: &str) -> Result<i64, AppError> {
    if !principal.may_read_calls() || !principal.role.sees_everything() {
        return Err(AppError::Forbidden("call logs are not available to your role".into()));
    }
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let p = principal.clone();
    let visible = state
        .store
        .read(move |conn| search::in_scope(conn, &access::scope_for(conn, &p)?, id))
        .await?;
    if !visible {
        return Err(AppError::NotFound);
    }
    Ok(id)
}

/// Creates a read-only link to the call's log (for the account's support).
#[utoipa::path(post, path = "/api/v1/calls/{id}/log-link", tag = "calls", params(("id" = String, Path)),
    request_body(content = Option<LinkRequest>),
    responses((status = 201, body = LogLink), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_link(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
    Body(body): Body,
) -> Result<(StatusCode, Json<LogLink>), AppError> {
    let call = call_for_details(&state, &principal, &id).await?;
    // The body is optional: an empty one asks for the default lifetime.
    let asked: LinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LinkRequest::default()
    } else {
        crate::json::parse(&body)?
    };
    let hours = asked.expires_in_hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(AppError::invalid("expires_in_hours", format!("1 … {MAX_HOURS} hours")));
    }
    let token = crate::secrets::new_token("lg_");
    let now = now_ms();
    let expires_at = now + i64::from(hours) * 3_600_000;
    let (account, user, source) = (principal.account_id, principal.user_id.0, principal.source());
    let actor = Actor::of(&principal, address);
    let t = token.clone();
    state
        .store
        .write(move |conn, _| {
            calllog::create_link(conn, account, call, &t, user, now, expires_at)?;
            let detail = serde_json::json!({ "expires_at": format_time(expires_at, None) });
            tell(conn, call, CREATED, &source, &actor, detail, now)
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(LogLink {
            url: format!("{}/log/{token}", state.config.public_url),
            expires_at: format_time(expires_at, None),
        }),
    ))
}

/// Revokes every link to the call's log.
#[utoipa::path(delete, path = "/api/v1/calls/{id}/log-link", tag = "calls", params(("id" = String, Path)),
    responses((status = 200, body = Revoked), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn revoke_links(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(address): ClientAddr,
) -> Result<Json<Revoked>, AppError> {
    let call = call_for_details(&state, &principal, &id).await?;
    let source = principal.source();
    let actor = Actor::of(&principal, address);
    let revoked = state
        .store
        .write(move |conn, _| {
            let now = now_ms();
            let n = calllog::revoke_links(conn, call, now)?;
            if n > 0 {
                let detail = serde_json::json!({ "links": n });
                tell(conn, call, REVOKED, &source, &actor, detail, now)?;
            }
            Ok(n)
        })
        .await?;
    Ok(Json(Revoked { revoked }))
}

/// A change to a call's links, as the call's log and the audit log name it.
type LinkChange = (CallEvent, AuditAction);
const CREATED: LinkChange = (CallEvent::LogLinkCreated, AuditAction::LogLinkCreated);
const REVOKED: LinkChange = (CallEvent::LogLinkRevoked, AuditAction::LogLinkRevoked);

/// Writes a change to a call's links to the call's log and to the audit log, with one detail.
fn tell(
    conn: &crate::store::db::Connection,
    call: i64,
    (event, action): LinkChange,
    source: &str,
    actor: &Actor,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    calllog::event(conn, call, event, source, Some(detail.clone()), now)?;
    audit::record(conn, actor, action, Some(&call.to_string()), Some(detail))
}

/// The shared log as JSON.
#[derive(Debug, Serialize)]
struct SharedLog {
    call: SharedCall,
    log: CallLog,
}

#[derive(Debug, Serialize)]
struct SharedCall {
    external_id: String,
    started_at: String,
    timezone: String,
}

/// What a link leads to, read in one go.
enum Shared {
    Log(SharedLog),
    Ended,
    Unknown,
}

/// `/log/{token}`: the call's log, read-only, as a page (or JSON when asked for). Unknown
/// tokens are 404, expired or revoked ones 410.
async fn shared_log(State(state): State<AppState>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    let found = state
        .store
        .read(move |conn| {
            let (account, call) = match calllog::resolve_link(conn, &token, now_ms())? {
                LinkTarget::Call { account, call } => (account, call),
                LinkTarget::Ended => return Ok(Shared::Ended),
                LinkTarget::Unknown => return Ok(Shared::Unknown),
            };
            let zone = auth::account(conn, account)?.timezone;
            let tz = zone.parse::<Tz>().ok();
            let (external_id, started): (String, i64) = conn.query_row(
                "SELECT external_id, started_at FROM calls WHERE id = ? AND account_id = ?",
                crate::store::db::params![call, account.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok::<_, StoreError>(Shared::Log(SharedLog {
                call: SharedCall {
                    external_id,
                    started_at: format_time(started, tz),
                    timezone: zone,
                },
                log: calllog::log(conn, call, tz)?,
            }))
        })
        .await;
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    let (status, shared) = match found {
        Ok(Shared::Log(log)) => (StatusCode::OK, Some(log)),
        Ok(Shared::Ended) => (StatusCode::GONE, None),
        // A link to a call that retention has deleted since is as good as unknown.
        Ok(Shared::Unknown) | Err(StoreError::Database(crate::store::db::Error::NoRows)) => {
            (StatusCode::NOT_FOUND, None)
        }
        Err(e) => return AppError::from(e).into_response(),
    };
    let mut response = match (&shared, wants_json) {
        (Some(log), true) => (status, Json(log)).into_response(),
        (Some(log), false) => (status, Html(render(log))).into_response(),
        (None, true) if status == StatusCode::GONE => {
            AppError::Gone("the link expired or was revoked".into()).into_response()
        }
        (None, true) => AppError::NotFound.into_response(),
        (None, false) => (status, Html(render_missing(status))).into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"),
    );
    response
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2330}\
    h1{font-size:1.3rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e6ec;padding:.35rem .5rem;\
    text-align:left;vertical-align:top;overflow-wrap:anywhere}th{color:#5b6475;font-weight:600}pre{background:#f5f6f8;padding:.75rem;overflow:auto;\
    white-space:pre-wrap}.muted{color:#5b6475}";

/// The Russian label of an event, as the page shows it.
fn label(event: CallEvent) -> &'static str {
    match event {
        CallEvent::Created => "Звонок записан",
        CallEvent::Updated => "Звонок изменён",
        CallEvent::RecordingRequested => "Запрошена запись",
        CallEvent::RecordingStored => "Запись сохранена",
        CallEvent::RecordingRetry => "Повтор загрузки записи",
        CallEvent::RecordingFailed => "Запись не получена",
        CallEvent::RecordingDeleted => "Запись удалена по сроку хранения",
        CallEvent::LogLinkCreated => "Создана ссылка на лог",
        CallEvent::LogLinkRevoked => "Ссылки на лог отозваны",
    }
}

/// An event's detail as a line of text: the changed fields, or `key: value` pairs.
fn detail_text(detail: Option<&serde_json::Value>) -> String {
    let Some(serde_json::Value::Object(map)) = detail else {
        return String::new();
    };
    if let Some(serde_json::Value::Array(fields)) = map.get("fields") {
        let names: Vec<&str> = fields.iter().filter_map(|f| f.as_str()).collect();
        return format!("поля: {}", names.join(", "));
    }
    map.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn render(shared: &SharedLog) -> String {
    let mut rows = String::new();
    for e in &shared.log.events {
        // The zone is stated once above the table.
        let at = e.at.get(..19).unwrap_or(&e.at).replace('T', " ");
        rows.push_str(&format!(
            "<tr data-event=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.event.code(),
            escape(&at),
            label(e.event),
            escape(e.source.as_deref().unwrap_or("")),
            escape(&detail_text(e.detail.as_ref()))
        ));
    }
    let lines = if shared.log.lines.is_empty() {
        "<p class=\"muted\">Телефония не прислала строк лога.</p>".to_string()
    } else {
        format!("<pre>{}</pre>", escape(&shared.log.lines.join("\n")))
    };
    format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Лог звонка {id}</title><style>{STYLE}</style></head><body>\
         <h1>Лог звонка {id}</h1><p class=\"muted\">Начало: {start} ({tz}). Только для чтения.</p>\
         <h2>События</h2><table><thead><tr><th>Время</th><th>Событие</th><th>Источник</th><th>Подробности</th></tr></thead>\
         <tbody>{rows}</tbody></table><h2>Строки лога телефонии</h2>{lines}</body></html>",
        id = escape(&shared.call.external_id),
        start = escape(&shared.call.started_at.get(..19).unwrap_or(&shared.call.started_at).replace('T', " ")),
        tz = escape(&shared.call.timezone),
    )
}

fn render_missing(status: StatusCode) -> String {
    let text = if status == StatusCode::GONE {
        "Срок действия ссылки истёк, или её отозвали. Попросите новую."
    } else {
        "Такой ссылки нет."
    };
    format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>Лог звонка</title><style>{STYLE}</style></head>\
         <body><h1>Лог звонка</h1><p>{text}</p></body></html>"
    )
}
