//! The recording behind a signed link, for the QM system.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::domain::recording::RecordingUse;
use crate::error::AppError;
use crate::http::extract::QueryPairs;
use crate::http::AppState;
use crate::qm::link::{self, LinkError};
use crate::store::audit::Actor;
use crate::store::auth::now_ms;
use crate::store::recordings;

/// A recording for the QM system, by the signed link handed to it with the call: no account
/// needed, works until it expires (410), with byte ranges; a link not made by this server is
/// 404. Each download is in the audit log as the QM system's.
#[utoipa::path(get, path = "/qm/recordings/{file}", tag = "integrations",
    params(("file" = String, Path, description = "{call id}.{extension}"), ("expires" = i64, Query),
           ("signature" = String, Query), ("Range" = Option<String>, Header)),
    responses((status = 200, description = "the recording"), (status = 206, description = "the asked range"),
              (status = 404, body = crate::error::ErrorBody), (status = 410, body = crate::error::ErrorBody)))]
pub async fn recording_for_qm(
    State(state): State<AppState>,
    Path(file): Path<String>,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let call: i64 = file
        .split_once('.')
        .map_or(file.as_str(), |(id, _)| id)
        .parse()
        .map_err(|_| AppError::NotFound)?;
    let find = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let expires: i64 = find("expires").and_then(|v| v.parse().ok()).ok_or(AppError::NotFound)?;
    let signature = find("signature").ok_or(AppError::NotFound)?.to_string();
    let key = state.qm.link_key;
    let (account, recording) = state
        .store
        .read(move |conn| {
            let Some((account, external_id)) = recordings::call_identity(conn, call)? else {
                return Ok(Err(LinkError::Forged));
            };
            let target = link::Target {
                account: account.0,
                call,
                external_id: &external_id,
            };
            if let Err(e) = link::verify(&key, target, expires, &signature, now_ms() / 1000) {
                return Ok(Err(e));
            }
            Ok(Ok((account, recordings::of_call(conn, account, call)?)))
        })
        .await?
        .map_err(|e| match e {
            LinkError::Forged => AppError::NotFound,
            LinkError::Expired => AppError::Gone("this recording link has expired".into()),
        })?;
    let recording = recording.ok_or(AppError::NotFound)?;
    let actor = Actor::system(account, "QM system");
    crate::http::recording::serve(&state, call, recording, &headers, RecordingUse::Download, "qm", actor).await
}
