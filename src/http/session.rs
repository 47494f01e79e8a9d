//! Signing in and out: `POST /api/v1/session` starts a server-side session held in an
//! `HttpOnly` cookie, `GET` tells who is signed in (and the CSRF token the page must send with
//! its writes), `DELETE` ends it. Failed attempts are throttled per login and per address.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ClientAddr, JsonBody, SESSION_COOKIE};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{AccountId, Credential, Principal};
use crate::error::AppError;
use crate::secrets;
use crate::store::audit::{self, Actor, SignInLimits};
use crate::store::auth::{self, NewSession};
use crate::store::people::{self, UserItem};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/session", post(sign_in).get(current).delete(sign_out))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub login: String,
    pub password: String,
    /// The account's name; needed only when the login exists in several accounts.
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user: UserItem,
    pub account: AccountRef,
    /// Send it back as the `X-CSRF-Token` header with every write made with the cookie.
    pub csrf_token: String,
    /// RFC 3339: the latest the session can last (it ends earlier when left idle).
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRef {
    pub id: String,
    pub name: String,
}

async fn session_info(
    state: &AppState,
    account: AccountId,
    user: i64,
    csrf: String,
    expires_at: i64,
) -> Result<SessionInfo, AppError> {
    let (user, account) = state
        .store
        .read(move |conn| Ok((people::user(conn, account, user)?, auth::account(conn, account)?)))
        .await?;
    Ok(SessionInfo {
        user,
        account: AccountRef {
            id: account.id.0.to_string(),
            name: account.name,
        },
        csrf_token: csrf,
        expires_at: crate::store::view::format_time(expires_at, None),
    })
}

fn cookie(state: &AppState, value: &str, max_age_secs: i64) -> Result<HeaderValue, AppError> {
    // Secure when people reach the server over TLS (at a proxy in front of it).
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .map_err(|e| AppError::Internal(e.to_string()))
}

/// Signs in with a login and password. Too many failures for the login or from the address:
/// 429 with `Retry-After`.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = SignIn,
    responses((status = 200, body = SessionInfo, description = "signed in; the session cookie is set"),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 429, body = crate::error::ErrorBody)))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    JsonBody(body): JsonBody<SignIn>,
) -> Result<Response, AppError> {
    let rules = state.config.auth.clone();
    let (login, account_name) = (body.login.clone(), body.account.clone());
    let candidates = state
        .store
        .read(move |conn| auth::login_candidates(conn, &login, account_name.as_deref()))
        .await?;
    if candidates.len() > 1 {
        return Err(AppError::invalid(
            "account",
            "this login exists in several accounts: give the account's name",
        ));
    }
    let candidate = candidates.into_iter().next();
    let actor = Actor {
        account: candidate.as_ref().map(|c| c.account_id),
        user: None,
        login: Some(body.login.clone()),
        address: address.clone(),
    };
    let limits = SignInLimits {
        per_login: rules.failures_per_login,
        per_address: rules.failures_per_address,
        window_ms: rules.throttle_window_ms,
    };
    let attempt = state
        .store
        .write(move |conn, _| audit::begin_sign_in(conn, &actor, limits))
        .await?
        .map_err(|retry_after_secs| AppError::TooManyRequests {
            message: "too many failed sign-ins; try again later".into(),
            retry_after_secs,
        })?;
    let hash = candidate.as_ref().and_then(|c| c.password_hash.clone());
    let verified = secrets::verify_password_queued(body.password, hash)
        .await
        .map_err(AppError::Internal)?;
    let candidate = match candidate {
        Some(c) if verified => c,
        // The attempt is already recorded as failed.
        _ => return Err(AppError::Unauthorized),
    };
    if candidate.blocked {
        // The same answer as a wrong password: a blocked account confirms nothing.
        state
            .store
            .write(move |conn, _| audit::sign_in_refused(conn, attempt, "blocked"))
            .await?;
        return Err(AppError::Unauthorized);
    }
    let token = secrets::new_token("cs_");
    let csrf = secrets::new_token("");
    let expires_at = auth::now_ms() + rules.session_max_ms;
    let (user, account) = (candidate.user_id, candidate.account_id);
    let (hash, csrf_stored) = (secrets::token_hash(&token), csrf.clone());
    state
        .store
        .write(move |conn, _| {
            auth::create_session(
                conn,
                &NewSession {
                    user,
                    token_hash: &hash,
                    csrf_token: &csrf_stored,
                    expires_at,
                    address: address.as_deref(),
                },
            )?;
            audit::sign_in_succeeded(conn, attempt, user.0)
        })
        .await?;
    let info = session_info(&state, account, user.0, csrf, expires_at).await?;
    let mut response = Json(info).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, &token, rules.session_max_ms / 1000)?);
    Ok(response)
}

/// Who is signed in with this cookie, and the session's CSRF token.
#[utoipa::path(get, path = "/api/v1/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = crate::error::ErrorBody)))]
pub async fn current(principal: Principal, State(state): State<AppState>) -> Result<Json<SessionInfo>, AppError> {
    let Credential::Session { id } = principal.credential else {
        return Err(AppError::invalid(
            "session",
            "this request is authenticated with a token, not a session",
        ));
    };
    let session = state.store.read(move |conn| auth::session(conn, id)).await?;
    let info = session_info(
        &state,
        principal.account_id,
        principal.user_id.0,
        session.csrf_token,
        session.expires_at,
    )
    .await?;
    Ok(Json(info))
}

/// Signs out: the session ends on the server, whatever happens to the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "signed out; the cookie is cleared"), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody)))]
pub async fn sign_out(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
) -> Result<Response, AppError> {
    let Credential::Session { id } = principal.credential else {
        return Err(AppError::invalid(
            "session",
            "this request is authenticated with a token, not a session",
        ));
    };
    let actor = Actor::of(&principal, address);
    state
        .store
        .write(move |conn, _| {
            auth::end_session(conn, id)?;
            audit::record(conn, &actor, AuditAction::Logout, None, None)
        })
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
