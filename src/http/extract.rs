//! Request extractors: who is asking (`Principal`), the raw query pairs, and a size-limited body
//! whose rejections come back in the API's error shape.

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

use super::AppState;
use crate::domain::Principal;
use crate::error::AppError;
use crate::secrets::token_hash;
use crate::store::auth;

/// The cookie that carries a browser session.
pub const SESSION_COOKIE: &str = "calltrail_session";
/// The header a cookie-authenticated write must carry: the session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session's last-seen time is written at most this often, not on every request.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Compares secrets by their digests, so the time taken says nothing about where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// A bearer token, else a session cookie. A token that is given but wrong is refused even when
/// a cookie is present: a program must not silently act as whoever uses the browser.
impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(AppError::Unauthorized)?;
            return token_principal(state, token).await;
        }
        let hash = token_hash(session_cookie(&parts.headers).ok_or(AppError::Unauthorized)?);
        let (now, idle) = (auth::now_ms(), state.config.auth.session_idle_ms);
        let (principal, session) = state
            .store
            .read(move |conn| auth::principal_for_session(conn, &hash, now, idle))
            .await?
            .ok_or(AppError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|t| same_secret(t, &session.csrf_token)) {
                return Err(AppError::Forbidden(
                    "missing or wrong X-CSRF-Token header (the csrf_token of POST /api/v1/session)".into(),
                ));
            }
        }
        if now - session.last_seen_at >= TOUCH_EVERY_MS {
            let store = state.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.write(move |c, _| auth::touch_session(c, session.id, now)).await {
                    tracing::warn!(error = %e, "could not record session activity");
                }
            });
        }
        Ok(principal)
    }
}

/// The principal an API token acts as; a wrong token is 401.
pub(super) async fn token_principal(state: &AppState, token: &str) -> Result<Principal, AppError> {
    let hash = token_hash(token);
    state
        .store
        .read(move |conn| auth::principal_for_token(conn, &hash))
        .await?
        .ok_or(AppError::Unauthorized)
}

/// A principal for telephony that cannot send a bearer header: the reference product's
/// webhooks carry the token in their URL (`?token=`), FreeSWITCH's CDR modules speak only HTTP
/// Basic (the token is the password or, with an empty password, the user name). Bearer tokens
/// and sessions work as everywhere else.
pub struct IngestPrincipal(pub Principal);

impl FromRequestParts<AppState> for IngestPrincipal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let in_query = parts
            .uri
            .query()
            .into_iter()
            .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned());
        if let Some(token) = in_query {
            return token_principal(state, &token).await.map(IngestPrincipal);
        }
        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic ").or_else(|| h.strip_prefix("basic ")));
        let Some(encoded) = basic else {
            return Principal::from_request_parts(parts, state).await.map(IngestPrincipal);
        };
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(AppError::Unauthorized)?;
        let (user, password) = decoded.split_once(':').unwrap_or((decoded.as_str(), ""));
        let token = if password.is_empty() { user } else { password };
        if token.is_empty() {
            return Err(AppError::Unauthorized);
        }
        token_principal(state, token).await.map(IngestPrincipal)
    }
}

/// Owner and administrator only; `refusal` says what the others may not do.
pub(super) fn administrator(principal: &Principal, refusal: &str) -> Result<(), AppError> {
    if principal.may_administer() {
        Ok(())
    } else {
        Err(AppError::Forbidden(refusal.into()))
    }
}

/// Where a request came from, for the audit log and sign-in throttling.
pub struct ClientAddr(pub Option<String>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.config.auth.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').map(str::trim).find(|a| !a.is_empty()));
            if let Some(addr) = forwarded {
                return Ok(ClientAddr(Some(addr.to_string())));
            }
        }
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

/// A JSON body (within the size limit) whose errors name the field at fault.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|t| t.starts_with("application/json"));
        if !json {
            return Err(AppError::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let Body(bytes) = Body::from_request(req, state).await?;
        Ok(JsonBody(crate::json::parse(&bytes)?))
    }
}

/// The query string as `(key, value)` pairs, repeated keys kept in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }
}

/// The request body, within the configured limit (413 in the API's shape beyond it).
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::PayloadTooLarge {
                limit: state.config.max_body_bytes,
            }),
            Err(rejection) => Err(AppError::invalid("body", rejection.body_text())),
        }
    }
}
