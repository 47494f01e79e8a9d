//! The reference product's webhooks in: `POST /api/v1/ingest/voximplant-kit?token=…` (its
//! callback URL can carry only a query), checked against the subscription's salt configured
//! with `PUT /api/v1/integrations/voximplant-kit`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::extract::{administrator, Body, ClientAddr, IngestPrincipal, JsonBody};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{AccountId, FieldError, Principal};
use crate::error::AppError;
use crate::ingest::voximplant;
use crate::store::audit::{self, Actor};
use crate::store::ingest::{apply_batch, complete_partial, IngestOutcome};
use crate::store::voximplant::{self as rows, Integration};
use crate::store::{auth, health, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/ingest/voximplant-kit", post(ingest_webhooks))
        .route(
            "/api/v1/integrations/voximplant-kit",
            get(get_integration).put(put_integration),
        )
}

fn salt_context(account: AccountId) -> String {
    format!("voximplant-kit salt, account {}", account.0)
}

fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// The callbacks of one post (`{"callbacks":[{"hash","type","<type>":{…}}]}`): `new_calls`,
/// `wrap_up_code_set`, `finished_call`, `call_finalized`, merged into calls by session id. Every
/// callback's hash must be `md5(salt + domain + type)`, or nothing of the post is stored (401).
#[utoipa::path(
    post, path = "/api/v1/ingest/voximplant-kit", tag = "ingest",
    params(("token" = String, Query, description = "An ingest token of the account")),
    request_body(content = String, description = "The product's callbacks, as it posts them"),
    responses(
        (status = 200, body = IngestOutcome, description = "Stored durably"),
        (status = 400, body = crate::error::ErrorBody, description = "Not a callback the product sends; nothing stored"),
        (status = 401, body = crate::error::ErrorBody, description = "Wrong token or hash; nothing stored"),
        (status = 409, body = crate::error::ErrorBody, description = "The integration is not configured"),
    )
)]
pub async fn ingest_webhooks(
    IngestPrincipal(principal): IngestPrincipal,
    State(state): State<AppState>,
    Body(body): Body,
) -> Result<Json<IngestOutcome>, AppError> {
    if !principal.may_ingest() {
        return Err(AppError::Forbidden("this credential may not ingest calls".into()));
    }
    let account = principal.account_id;
    let sender = format!("voximplant-kit ({})", principal.source());
    let stored = store_callbacks(&state, account, &sender, &body).await;
    if let Err(e) = &stored {
        super::health::refused(&state, account, SOURCE, e, Some("application/json"), &body).await;
    }
    Ok(Json(stored?))
}

/// How the reference product's webhooks are named in the ingestion health.
pub const SOURCE: &str = "voximplant-kit";

/// Checks and stores one post of callbacks (also a replayed one).
pub(super) async fn store_callbacks(
    state: &AppState,
    account: AccountId,
    sender: &str,
    body: &[u8],
) -> Result<IngestOutcome, AppError> {
    let integration = state
        .store
        .read(move |conn| rows::integration(conn, account))
        .await?
        .ok_or_else(|| {
            AppError::Conflict("set the domain and salt with PUT /api/v1/integrations/voximplant-kit first".into())
        })?;
    let salt = state
        .qm
        .sealing
        .open(&integration.salt_sealed, &salt_context(account))
        .map_err(|_| AppError::Conflict("the salt was sealed with another secret key: set it again".into()))?;
    let callbacks = voximplant::parse(body)?;
    for (i, cb) in callbacks.iter().enumerate() {
        if !same(
            &cb.hash,
            &voximplant::expected_hash(&salt, &integration.domain, cb.kind),
        ) {
            tracing::warn!(
                account = account.0,
                callback = i,
                "a webhook with a wrong hash was refused"
            );
            return Err(AppError::Unauthorized);
        }
    }
    let patches: Vec<_> = callbacks.into_iter().flat_map(|c| c.patches).collect();
    for (i, (p, _)) in patches.iter().enumerate() {
        p.validate().map_err(|e| AppError::Invalid {
            field: e.field.clone(),
            message: format!("record {i}: {}", e.message),
            index: Some(i),
        })?;
    }
    let source = sender.to_string();
    let outcome = state
        .store
        .ingest(move |conn, cache| {
            let mut patches = patches;
            // Each event carries what it knew: together they are the call.
            complete_partial(conn, account, &mut patches)?;
            let patches = patches.into_iter().map(|(p, _)| p).collect();
            let o = apply_batch(conn, cache, account, patches, &source)?;
            health::count(conn, account, SOURCE, o.counts(), auth::now_ms())?;
            Ok(o)
        })
        .await?;
    state.live.publish(account, outcome.changed.clone());
    if outcome.fetches > 0 {
        state.wake(crate::live::Wake::Recordings);
    }
    Ok(outcome)
}

/// The subscription as an administrator sees it: the salt never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    /// The account name in the reference product.
    pub domain: Option<String>,
    pub salt_set: bool,
    /// The subscription's URL, with an ingest token in place of `INGEST_TOKEN`.
    pub callback_url: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationChange {
    pub domain: Option<String>,
    /// Write-only.
    pub salt: Option<String>,
}

fn view(state: &AppState, i: Option<Integration>) -> IntegrationView {
    IntegrationView {
        salt_set: i.is_some(),
        domain: i.map(|i| i.domain),
        callback_url: format!(
            "{}/api/v1/ingest/voximplant-kit?token=INGEST_TOKEN",
            state.config.public_url
        ),
    }
}

#[utoipa::path(
    get, path = "/api/v1/integrations/voximplant-kit", tag = "integrations",
    responses((status = 200, body = IntegrationView), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_integration(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal, "only an owner or an administrator manages integrations")?;
    let account = principal.account_id;
    let i = state.store.read(move |conn| rows::integration(conn, account)).await?;
    Ok(Json(view(&state, i)))
}

/// Sets the domain and the salt of the product's webhook subscription (both needed the first
/// time; later, the fields present).
#[utoipa::path(
    put, path = "/api/v1/integrations/voximplant-kit", tag = "integrations",
    request_body = IntegrationChange,
    responses(
        (status = 200, body = IntegrationView),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn put_integration(
    principal: Principal,
    ClientAddr(address): ClientAddr,
    State(state): State<AppState>,
    JsonBody(change): JsonBody<IntegrationChange>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal, "only an owner or an administrator manages integrations")?;
    if let Some(d) = &change.domain {
        let ok = !d.is_empty() && d.len() <= 128 && d.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok {
            return Err(AppError::invalid(
                "domain",
                "the account name: 1–128 letters, digits, '-', '_' or '.'",
            ));
        }
    }
    if let Some(s) = &change.salt {
        if s.is_empty() || s.len() > 256 {
            return Err(AppError::invalid("salt", "1–256 characters"));
        }
    }
    let account = principal.account_id;
    let sealed = change
        .salt
        .as_deref()
        .map(|s| state.qm.sealing.seal(s, &salt_context(account)));
    let actor = Actor::of(&principal, address);
    let saved = state
        .store
        .write(move |conn, _| {
            let before = rows::integration(conn, account)?;
            let domain = change.domain.or_else(|| before.as_ref().map(|b| b.domain.clone()));
            let salt_sealed = sealed
                .clone()
                .or_else(|| before.as_ref().map(|b| b.salt_sealed.clone()));
            let (Some(domain), Some(salt_sealed)) = (domain, salt_sealed) else {
                let field = if before.is_none() && sealed.is_none() {
                    "salt"
                } else {
                    "domain"
                };
                return Err(StoreError::Invalid(FieldError::new(
                    field,
                    "needed to set up the integration",
                )));
            };
            let i = Integration {
                domain,
                salt_sealed,
                updated_at: auth::now_ms(),
            };
            rows::save(conn, account, &i)?;
            let detail =
                serde_json::json!({ "voximplant_kit": { "domain": i.domain, "salt_changed": sealed.is_some() } });
            audit::record(conn, &actor, AuditAction::SettingsChanged, None, Some(detail))?;
            Ok(i)
        })
        .await?;
    Ok(Json(view(&state, Some(saved))))
}
