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
use crate::store::audit::{self, Actor};
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
    let auth_cfg = state.config.auth.clone();
    let now = auth::now_ms();
    let since = now - auth_cfg.throttle_window_ms;
    let (login, addr) = (body.login.clone(), address.clone());
    let account_name = body.account.clone();
    let (by_login, by_addr, candidates) = state
        .store
        .read(move |conn| {
            Ok((
                audit::recent_failures(conn, Some(&login), None, since)?,
                audit::recent_failures(conn, None, addr.as_deref(), since)?,
                auth::login_candidates(conn, &login, account_name.as_deref())?,
            ))
        })
        .await?;
    for ((failures, oldest), limit) in [
        (by_login, auth_cfg.failures_per_login),
        (by_addr, auth_cfg.failures_per_address),
    ] {
        if failures >= i64::from(limit) {
            let retry = (oldest.unwrap_or(now) + auth_cfg.throttle_window_ms - now).max(1000) / 1000;
            return Err(AppError::TooManyRequests {
                message: "too many failed sign-ins; try again later".into(),
                retry_after_secs: retry as u64,
            });
        }
    }
    if candidates.len() > 1 {
        return Err(AppError::invalid(
            "account",
            "this login exists in several accounts: give the account's name",
        ));
    }
    let candidate = candidates.into_iter().next();
    let (password, hash) = (
        body.password.clone(),
        candidate.as_ref().and_then(|c| c.password_hash.clone()),
    );
    let verified = tokio::task::spawn_blocking(move || secrets::verify_password(&password, hash.as_deref()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let candidate = match candidate {
        Some(c) if verified => c,
        other => {
            let actor = Actor {
                account: other.map(|c| c.account_id),
                user: None,
                login: Some(body.login.clone()),
                address: address.clone(),
            };
            state
                .store
                .write(move |conn, _| audit::record(conn, &actor, AuditAction::LoginFailed, None, None))
                .await?;
            return Err(AppError::Unauthorized);
        }
    };
    if candidate.blocked {
        return Err(AppError::Forbidden("this user is blocked".into()));
    }
    let token = secrets::new_token("cs_");
    let csrf = secrets::new_token("");
    let expires_at = now + auth_cfg.session_max_ms;
    let (user, account) = (candidate.user_id, candidate.account_id);
    let (hash, csrf_stored, login, addr) = (secrets::token_hash(&token), csrf.clone(), body.login.clone(), address);
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
                    address: addr.as_deref(),
                },
            )?;
            let actor = Actor {
                account: Some(account),
                user: Some(user.0),
                login: Some(login),
                address: addr,
            };
            audit::record(conn, &actor, AuditAction::LoginOk, None, None)
        })
        .await?;
    let info = session_info(&state, account, user.0, csrf, expires_at).await?;
    let mut response = Json(info).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, &token, auth_cfg.session_max_ms / 1000)?,
    );
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
