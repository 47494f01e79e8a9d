//! The call history: search, one call, and live updates.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use chrono_tz::Tz;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::extract::QueryPairs;
use super::AppState;
use crate::domain::{AccountId, CallScope, Credential, Principal, SearchRequest};
use crate::error::AppError;
use crate::live::LiveEvent;
use crate::store::search::{self, Page};
use crate::store::view::{self, CallDetailView};
use crate::store::{access, auth, Store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls", get(list_calls))
        .route("/api/v1/calls/live", get(live_calls))
        .route("/api/v1/calls/{id}", get(get_call))
}

/// Refuses credentials that may not read call history (ingest tokens).
fn check_reader(p: &Principal) -> Result<(), AppError> {
    if !p.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read call history".into()));
    }
    Ok(())
}

/// The principal's call scope and the search, as `access::prepare_search` reads them now.
pub(super) async fn prepare(
    store: &Store,
    principal: &Principal,
    pairs: Vec<(String, String)>,
) -> Result<(CallScope, SearchRequest, Tz), AppError> {
    check_reader(principal)?;
    let principal = principal.clone();
    let now = chrono::Utc::now();
    Ok(store
        .read(move |conn| access::prepare_search(conn, &principal, &pairs, now))
        .await?)
}

/// Searches calls, newest first, with the exact number of matches. Filters repeat for OR.
#[utoipa::path(
    get, path = "/api/v1/calls", tag = "calls",
    params(
        ("from" = Option<String>, Query, description = "RFC 3339 instant or YYYY-MM-DD (in tz)"),
        ("to" = Option<String>, Query, description = "exclusive end, like from"),
        ("preset" = Option<String>, Query, description = "today, yesterday, last_7_days, last_30_days, this_week, this_month, last_month"),
        ("tz" = Option<String>, Query, description = "IANA time zone for dates, presets and output"),
        ("direction" = Option<Vec<String>>, Query, description = "incoming, outgoing"),
        ("kind" = Option<Vec<String>>, Query, description = "incoming, softphone_outgoing, auto_campaign, operator_campaign"),
        ("number" = Option<String>, Query, description = "at least 3 characters of the caller's or callee's number"),
        ("talk_min" = Option<u32>, Query), ("talk_max" = Option<u32>, Query),
        ("group" = Option<Vec<String>>, Query), ("operator" = Option<Vec<String>>, Query),
        ("queue" = Option<Vec<String>>, Query), ("campaign" = Option<Vec<String>>, Query),
        ("scenario" = Option<Vec<String>>, Query), ("completion_code" = Option<Vec<String>>, Query),
        ("tag" = Option<Vec<String>>, Query), ("topic" = Option<Vec<String>>, Query),
        ("scenario_kind" = Option<Vec<String>>, Query, description = "automated, operator"),
        ("result" = Option<Vec<crate::domain::AttemptResult>>, Query),
        ("limit" = Option<u32>, Query, description = "1 … 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = Page), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_calls(
    principal: Principal,
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<Page>, AppError> {
    let (scope, req, _) = prepare(&state.store, &principal, pairs).await?;
    Ok(Json(state.store.search(scope, req).await?))
}

/// One call with its details: timeline, call flow, notes in full.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}", tag = "calls",
    params(("id" = String, Path), ("tz" = Option<String>, Query)),
    responses((status = 200, body = CallDetailView), (status = 404, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_call(
    principal: Principal,
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Json<CallDetailView>, AppError> {
    check_reader(&principal)?;
    // Decided by role alone, before the id is looked up: the answer says nothing about the id.
    if !principal.role.sees_price() {
        return Err(AppError::Forbidden(
            "call details are not available to your role".into(),
        ));
    }
    let id: i64 = id.parse().map_err(|_| AppError::NotFound)?;
    let tz = match pairs.iter().find(|(k, _)| k == "tz") {
        Some((_, v)) => Some(
            v.parse::<Tz>()
                .map_err(|_| AppError::invalid("tz", format!("unknown time zone {v:?}")))?,
        ),
        None => None,
    };
    let call = state
        .store
        .read(move |conn| {
            let scope = access::scope_for(conn, &principal)?;
            view::get(conn, &scope, id, tz)
        })
        .await?;
    Ok(Json(call))
}

/// Server-Sent Events: every new or changed call matching the filters, as event `call`.
/// A subscriber that fell behind gets event `resync` and should search again.
#[utoipa::path(
    get, path = "/api/v1/calls/live", tag = "calls",
    params(("filters" = Option<String>, Query, description = "the same filters as GET /api/v1/calls")),
    responses((status = 200, content_type = "text/event-stream", description = "events `call` (a call as listed) and `resync`")),
    security(("bearer" = []))
)]
pub async fn live_calls(
    principal: Principal,
    State(state): State<AppState>,
    QueryPairs(pairs): QueryPairs,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (scope, req, _) = prepare(&state.store, &principal, pairs).await?;
    let every = Duration::from_secs(30);
    let stream = LiveStream {
        account: scope.account,
        rx: state.live.subscribe(),
        store: state.store.clone(),
        principal,
        req,
        closed: Box::pin(state.live.closed()),
        check: tokio::time::interval_at(tokio::time::Instant::now() + every, every),
        idle_ms: state.config.auth.session_idle_ms,
    };
    let events = stream::unfold(stream, |mut s| async move {
        let events = s.next_events().await?;
        Some((events, s))
    })
    .flat_map(|events| stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// One subscriber's live stream: its filter, and its principal, whose scope and credential are
/// checked again for every batch and every half minute — a demotion, a group change, a block,
/// a sign-out or a revoked token applies to an open stream at once.
struct LiveStream {
    account: AccountId,
    rx: tokio::sync::broadcast::Receiver<crate::live::LiveEvent>,
    store: Store,
    principal: Principal,
    req: SearchRequest,
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    check: tokio::time::Interval,
    idle_ms: i64,
}

impl LiveStream {
    /// The next events to send; `None` ends the stream.
    async fn next_events(&mut self) -> Option<Vec<Event>> {
        loop {
            let received = tokio::select! {
                r = self.rx.recv() => r,
                _ = self.check.tick() => {
                    if !still_allowed(self.store.clone(), self.principal.credential, self.idle_ms).await {
                        return None;
                    }
                    continue;
                }
                () = &mut self.closed => return None,
            };
            let batch = match received {
                Ok(LiveEvent::Changed(batch)) => batch,
                Ok(LiveEvent::Missed) | Err(RecvError::Lagged(_)) => {
                    return Some(vec![Event::default().event("resync").data("{}")])
                }
                Err(RecvError::Closed) => return None,
            };
            if batch.account != self.account {
                continue;
            }
            let (p, f, tz, idle) = (
                self.principal.clone(),
                self.req.filter.clone(),
                self.req.tz,
                self.idle_ms,
            );
            let calls = self
                .store
                .read(move |conn| match access::live_scope(conn, &p, auth::now_ms(), idle)? {
                    Some(scope) => search::matching(conn, &scope, &f, &batch.ids, tz).map(Some),
                    None => Ok(None),
                })
                .await;
            match calls {
                Ok(None) => return None,
                Ok(Some(calls)) if calls.is_empty() => continue,
                Ok(Some(calls)) => {
                    return Some(
                        calls
                            .iter()
                            .filter_map(|c| Event::default().event("call").json_data(c).ok())
                            .collect(),
                    )
                }
                Err(e) => {
                    tracing::error!(error = %e, "live update query failed");
                    continue;
                }
            }
        }
    }
}

/// Whether the credential still stands; an open stream counts as activity of its session.
async fn still_allowed(store: Store, credential: Credential, idle: i64) -> bool {
    let now = auth::now_ms();
    let live = store
        .read(move |conn| auth::credential_live(conn, &credential, now, idle))
        .await;
    match (live, credential) {
        (Ok(true), Credential::Session { id }) => {
            if let Err(e) = store.write(move |conn, _| auth::touch_session(conn, id, now)).await {
                tracing::warn!(error = %e, "could not record session activity");
            }
            true
        }
        (Ok(live), _) => live,
        (Err(e), _) => {
            tracing::warn!(error = %e, "checking a live stream's credential failed");
            true
        }
    }
}
