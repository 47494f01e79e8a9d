//! The PBXs: `POST /api/v1/ingest/freeswitch` takes what `mod_json_cdr` and `mod_xml_cdr` post,
//! and `GET`/`PUT /api/v1/integrations/pbx` say what their records mean (`ingest::pbx`).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::extract::{administrator, Body, ClientAddr, IngestPrincipal};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::Principal;
use crate::error::AppError;
use crate::ingest::import::{apply, record_problems, Format, Report};
use crate::ingest::pbx::PbxSettings;
use crate::store::audit::{self, Actor};
use crate::store::{auth, pbx};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ingest/freeswitch", post(ingest_freeswitch))
        .route("/api/v1/integrations/pbx", get(get_settings).put(put_settings))
}

/// One leg's CDR as FreeSWITCH posts it: a `mod_json_cdr` JSON document, or a form whose `cdr`
/// field holds the document (`mod_xml_cdr`: XML; some setups post JSON the same way). The
/// ingest token goes as a bearer token or as HTTP Basic credentials (its password).
#[utoipa::path(
    post, path = "/api/v1/ingest/freeswitch", tag = "ingest",
    request_body(content = String, description = "mod_json_cdr JSON, or a form with cdr=<XML or JSON>"),
    responses(
        (status = 200, body = Report, description = "Stored durably (or skipped, with the reason)"),
        (status = 400, body = crate::error::ErrorBody, description = "Not a CDR FreeSWITCH writes; nothing stored"),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn ingest_freeswitch(
    IngestPrincipal(principal): IngestPrincipal,
    headers: HeaderMap,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<Report>, AppError> {
    if !principal.may_ingest() {
        return Err(AppError::Forbidden("this credential may not ingest calls".into()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let account = principal.account_id;
    let sender = format!("freeswitch ({})", principal.source());
    let stored = store_freeswitch(&state, account, &sender, &content_type, &body).await;
    if let Err(e) = &stored {
        super::health::refused(&state, account, SOURCE, e, Some(&content_type), &body).await;
    }
    Ok(Json(stored?))
}

const SETTINGS_REFUSAL: &str = "only an owner or an administrator sees and changes the PBX settings";

/// How FreeSWITCH posts are named in the ingestion health.
pub const SOURCE: &str = "freeswitch";

/// Reads and stores one posted leg (also a replayed one).
pub(super) async fn store_freeswitch(
    state: &AppState,
    account: crate::domain::AccountId,
    sender: &str,
    content_type: &str,
    body: &[u8],
) -> Result<Report, AppError> {
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let document: Vec<u8> = if form {
        form_urlencoded::parse(body)
            .find(|(k, _)| k == "cdr")
            .map(|(_, v)| v.into_owned().into_bytes())
            .ok_or_else(|| AppError::invalid("cdr", "the form has no cdr field (mod_xml_cdr posts cdr=<document>)"))?
    } else {
        body.to_vec()
    };
    let format = match document.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Format::FreeswitchXml,
        Some(b'{') => Format::FreeswitchJson,
        _ => {
            return Err(AppError::invalid(
                "cdr",
                "expected a mod_json_cdr (JSON) or mod_xml_cdr (XML) document",
            ))
        }
    };
    let (settings, zone) = state
        .store
        .read(move |conn| {
            let zone = auth::account(conn, account)?.timezone;
            Ok((pbx::settings(conn, account)?, zone))
        })
        .await?;
    let parsed = format.read(&document, None, &settings, settings.zone(&zone));
    if let Some(r) = parsed.rejected.first() {
        // Nothing of an unreadable document is stored: FreeSWITCH keeps it in its error log.
        let field = if form { "cdr" } else { "body" };
        return Err(AppError::invalid(field, format!("line {}: {}", r.line, r.reason)));
    }
    let report = apply(&state.store, account, SOURCE, sender, parsed).await?;
    if let Some(p) = report.problems.iter().find(|p| p.kind == "rejected") {
        return Err(AppError::invalid("cdr", p.reason.clone()));
    }
    record_problems(&state.store, account, SOURCE, &report).await?;
    state.live.publish(account, report.changed.clone());
    if report.fetches > 0 {
        state.wake(crate::live::Wake::Recordings);
    }
    Ok(report)
}

/// What the account's PBX records mean: own numbers, extension length, inbound contexts,
/// internal calls, recording links, the PBX's time zone.
#[utoipa::path(
    get, path = "/api/v1/integrations/pbx", tag = "integrations",
    responses((status = 200, body = PbxSettings), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_settings(principal: Principal, State(state): State<AppState>) -> Result<Json<PbxSettings>, AppError> {
    administrator(&principal, SETTINGS_REFUSAL)?;
    let account = principal.account_id;
    Ok(Json(state.store.read(move |conn| pbx::settings(conn, account)).await?))
}

/// Changes the fields present in the body; applies to records imported from now on.
#[utoipa::path(
    put, path = "/api/v1/integrations/pbx", tag = "integrations",
    request_body = PbxSettings,
    responses(
        (status = 200, body = PbxSettings),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_settings(
    principal: Principal,
    ClientAddr(address): ClientAddr,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<PbxSettings>, AppError> {
    administrator(&principal, SETTINGS_REFUSAL)?;
    let change: serde_json::Map<String, serde_json::Value> = crate::json::parse(&body)?;
    let account = principal.account_id;
    let actor = Actor::of(&principal, address);
    let saved = state
        .store
        .write(move |conn, _| {
            let mut merged = match serde_json::to_value(pbx::settings(conn, account)?) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            merged.extend(change);
            let text = serde_json::Value::Object(merged).to_string();
            let settings: PbxSettings =
                crate::json::parse(text.as_bytes()).map_err(crate::store::StoreError::Invalid)?;
            settings.validate().map_err(crate::store::StoreError::Invalid)?;
            pbx::save(conn, account, &settings, auth::now_ms())?;
            let detail = serde_json::json!({ "pbx": settings });
            audit::record(conn, &actor, AuditAction::SettingsChanged, None, Some(detail))?;
            Ok(settings)
        })
        .await?;
    Ok(Json(saved))
}
