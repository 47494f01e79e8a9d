//! The QM integration's settings: owner and administrator only; the API key goes in, never out.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::audit::AuditAction;
use crate::domain::qm::{self as words, OperatorChannel, DEFAULT_BASE_URL};
use crate::domain::{AccountId, Principal};
use crate::error::AppError;
use crate::http::extract::{administrator, ClientAddr, JsonBody};
use crate::http::AppState;
use crate::qm::client::{CheckError, QmClient};
use crate::qm::Qm;
use crate::store::audit::{self, Actor};
use crate::store::auth::now_ms;
use crate::store::qm::{self as rows, Integration};
use crate::store::view::format_time;

const STALE: &str = "the QM settings were changed meanwhile; load them again and retry";

/// The shortest API key taken: QM keys are long random strings, a short one is a typing slip.
const MIN_KEY_CHARS: usize = 8;
/// Characters of the key shown (masked view), for keys at least three times as long.
const HINT_CHARS: usize = 4;

/// The integration as an administrator sees it: the API key never leaves the server.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationView {
    pub base_url: String,
    /// The key masked (`••••` and its last four characters); null when none is set.
    pub api_key: Option<String>,
    /// False when the stored key was sealed with another secret key: enter it again.
    pub api_key_readable: bool,
    pub language_code: String,
    pub operator_channel: OperatorChannel,
    /// Exports may run.
    pub active: bool,
    /// The QM system accepted these credentials (when: `connected_at`).
    pub connected: bool,
    pub connected_at: Option<String>,
    /// Where the QM system downloads recordings from: this server's public URL
    /// (`--public-url`), which it must be able to reach.
    pub file_links_from: String,
    /// Set when that address is one the QM system surely cannot reach (loopback, unspecified).
    pub file_links_warning: Option<String>,
    /// Send it back with a change: a change made from stale settings is refused (409).
    pub version: i64,
}

fn defaults() -> Integration {
    Integration {
        base_url: DEFAULT_BASE_URL.to_string(),
        api_key_sealed: None,
        api_key_hint: None,
        language_code: "ru".into(),
        operator_channel: OperatorChannel::Left,
        connected_at: None,
        active: false,
        updated_at: 0,
    }
}

fn view(state: &AppState, account: AccountId, i: Integration) -> IntegrationView {
    let qm = &state.qm;
    let readable = i
        .api_key_sealed
        .as_deref()
        .is_some_and(|s| qm.sealing.open(s, &Qm::key_context(account)).is_ok());
    IntegrationView {
        base_url: i.base_url,
        api_key: i
            .api_key_sealed
            .as_ref()
            .map(|_| format!("••••{}", i.api_key_hint.unwrap_or_default())),
        api_key_readable: readable,
        language_code: i.language_code,
        operator_channel: i.operator_channel,
        active: i.active,
        connected: i.connected_at.is_some(),
        connected_at: i.connected_at.map(|t| format_time(t, None)),
        version: i.updated_at,
        file_links_from: format!("{}/qm/recordings/", state.config.public_url),
        file_links_warning: unreachable_from_outside(&state.config.public_url).then(|| {
            format!(
                "{} is this machine's own address: the QM system cannot download recordings from it; \
                 start calltrail with --public-url set to an address it can reach",
                state.config.public_url
            )
        }),
    }
}

/// Whether a public URL names this machine only (loopback, unspecified, `localhost`).
fn unreachable_from_outside(public_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(public_url) else {
        return true;
    };
    let Some(host) = url.host_str() else { return true };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip.is_unspecified(),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost"),
    }
}

const ADMIN_REFUSAL: &str = "only an owner or administrator sets up the QM integration";

pub(super) async fn current(state: &AppState, account: AccountId) -> Result<Integration, AppError> {
    Ok(state
        .store
        .read(move |conn| rows::integration(conn, account))
        .await?
        .unwrap_or_else(defaults))
}

/// The QM integration's settings (owner, administrator).
#[utoipa::path(get, path = "/api/v1/integrations/qm", tag = "integrations",
    responses((status = 200, body = IntegrationView), (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_integration(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal, ADMIN_REFUSAL)?;
    let account = principal.account_id;
    let i = current(&state, account).await?;
    Ok(Json(view(&state, account, i)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntegrationChange {
    /// The QM system's address (default https://tqm-cloud.tbank.ru).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The API key of the QM account; write-only.
    #[serde(default)]
    pub api_key: Option<String>,
    /// The language calls are in, e.g. `ru`.
    #[serde(default)]
    pub language_code: Option<String>,
    /// Which side of a stereo recording is the operator.
    #[serde(default)]
    pub operator_channel: Option<OperatorChannel>,
    /// true: check the credentials with the QM system, then turn exports on; false: off.
    #[serde(default)]
    pub active: Option<bool>,
    /// The `version` the change was made from; when given and no longer current, 409.
    #[serde(default)]
    pub version: Option<i64>,
}

fn check_change(c: &IntegrationChange) -> Result<(), AppError> {
    if let Some(url) = &c.base_url {
        let parsed =
            reqwest::Url::parse(url).map_err(|e| AppError::invalid("base_url", format!("not a URL ({e}): {url:?}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(AppError::invalid("base_url", "expected an http(s) URL with a host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
            return Err(AppError::invalid(
                "base_url",
                "no query, fragment or credentials in the base URL",
            ));
        }
        if url.len() > 500 {
            return Err(AppError::invalid("base_url", "at most 500 characters"));
        }
    }
    if let Some(key) = &c.api_key {
        if key.len() < MIN_KEY_CHARS || key.len() > 1000 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::invalid(
                "api_key",
                format!("the API key is {MIN_KEY_CHARS} … 1000 printable characters without spaces"),
            ));
        }
    }
    if let Some(code) = &c.language_code {
        if !words::check_language(code) {
            return Err(AppError::invalid(
                "language_code",
                format!("expected a language code such as ru or kk-KZ, got {code:?}"),
            ));
        }
    }
    Ok(())
}

/// The credentials checked with the QM system; a refusal names the field to fix.
async fn check_credentials(state: &AppState, base_url: &str, key: &str) -> Result<(), AppError> {
    let timeout = std::time::Duration::from_millis(state.config.qm.timeout_ms.min(15_000));
    let client = QmClient::new(base_url, key, timeout).map_err(AppError::Internal)?;
    client.check().await.map_err(|e| match e {
        CheckError::KeyRefused(_) => AppError::invalid("api_key", e.to_string()),
        CheckError::BaseUrl(m) => AppError::invalid("base_url", m),
    })
}

/// The stored key, opened; a key sealed with another secret key must be entered again.
pub(super) fn open_key(qm: &Qm, account: AccountId, i: &Integration) -> Result<String, AppError> {
    let sealed = i
        .api_key_sealed
        .as_deref()
        .ok_or_else(|| AppError::invalid("api_key", "set the QM system's API key first"))?;
    qm.sealing
        .open(sealed, &Qm::key_context(account))
        .map_err(|e| AppError::invalid("api_key", format!("{e}; enter the API key again")))
}

/// Changes the QM integration (owner, administrator). `active: true` first checks the
/// credentials with the QM system; a refusal is a 400 naming `api_key` or `base_url`, and
/// nothing changes.
#[utoipa::path(put, path = "/api/v1/integrations/qm", tag = "integrations", request_body = IntegrationChange,
    responses((status = 200, body = IntegrationView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_integration(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(change): JsonBody<IntegrationChange>,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal, ADMIN_REFUSAL)?;
    check_change(&change)?;
    let account = principal.account_id;
    let before = current(&state, account).await?;
    if change.version.is_some_and(|v| v != before.updated_at) {
        return Err(AppError::Conflict(STALE.into()));
    }
    let mut after = before.clone();
    let mut changed = vec![];
    if let Some(url) = &change.base_url {
        let url = url.trim_end_matches('/').to_string();
        if url != after.base_url {
            after.base_url = url;
            changed.push("base_url");
        }
    }
    if let Some(key) = &change.api_key {
        after.api_key_sealed = Some(state.qm.sealing.seal(key, &Qm::key_context(account)));
        // Its last characters, to tell keys apart, only while they are a small part of it.
        let tail = if key.len() >= 3 * HINT_CHARS {
            &key[key.len() - HINT_CHARS..]
        } else {
            ""
        };
        after.api_key_hint = Some(tail.to_string());
        changed.push("api_key");
    }
    if changed.iter().any(|f| matches!(*f, "base_url" | "api_key")) {
        // Other credentials: connected again before they are used.
        after.connected_at = None;
    }
    if let Some(code) = &change.language_code {
        if *code != after.language_code {
            after.language_code = code.clone();
            changed.push("language_code");
        }
    }
    if let Some(channel) = change.operator_channel {
        if channel != after.operator_channel {
            after.operator_channel = channel;
            changed.push("operator_channel");
        }
    }
    if let Some(active) = change.active {
        if active != before.active {
            changed.push("active");
        }
        after.active = active;
    }
    if after.active && (after.connected_at.is_none() || !before.active) {
        let key = match &change.api_key {
            Some(k) => k.clone(),
            None => open_key(&state.qm, account, &after)?,
        };
        check_credentials(&state, &after.base_url, &key).await?;
        after.connected_at = Some(now_ms());
    }
    let before_at = before.updated_at;
    after.updated_at = now_ms().max(before_at + 1);
    let actor = Actor::of(&principal, address);
    let saved = after.clone();
    state
        .store
        .write(move |conn, _| {
            rows::save_integration(conn, account, &saved, before_at)?;
            if changed.contains(&"base_url") {
                rows::forget_operators(conn, account)?;
            }
            if !changed.is_empty() {
                let detail = serde_json::json!({
                    "changed": changed,
                    "base_url": saved.base_url,
                    "language_code": saved.language_code,
                    "operator_channel": saved.operator_channel.code(),
                    "active": saved.active,
                });
                audit::record(conn, &actor, AuditAction::QmSettingsChanged, None, Some(detail))?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(view(&state, account, after)))
}

/// Checks the stored credentials with the QM system without changing whether exports run.
#[utoipa::path(post, path = "/api/v1/integrations/qm/connect", tag = "integrations",
    responses((status = 200, body = IntegrationView), (status = 400, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn connect(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
) -> Result<Json<IntegrationView>, AppError> {
    administrator(&principal, ADMIN_REFUSAL)?;
    let account = principal.account_id;
    let mut i = current(&state, account).await?;
    let key = open_key(&state.qm, account, &i)?;
    check_credentials(&state, &i.base_url, &key).await?;
    let (now, before_at) = (now_ms(), i.updated_at);
    i.connected_at = Some(now);
    i.updated_at = now.max(before_at + 1);
    let actor = Actor::of(&principal, address);
    let saved = i.clone();
    state
        .store
        .write(move |conn, _| {
            rows::save_integration(conn, account, &saved, before_at)?;
            let detail = serde_json::json!({ "connected": true, "base_url": saved.base_url });
            audit::record(conn, &actor, AuditAction::QmSettingsChanged, None, Some(detail))
        })
        .await?;
    Ok(Json(view(&state, account, i)))
}
