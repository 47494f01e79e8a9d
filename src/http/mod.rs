//! The HTTP API: one module per resource, each with its own `router()`; this module puts them
//! together with the shared state, the body limit and the OpenAPI document.

pub mod account;
pub mod calllog;
pub mod calls;
pub mod compat;
pub mod directory;
pub mod export;
pub mod exports;
pub mod extract;
pub mod health;
pub mod ingest;
pub mod meta;
pub mod pbx;
pub mod people;
pub mod preferences;
pub mod qm;
pub mod recording;
pub mod session;
pub mod voximplant;
pub mod web;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Config;
use crate::error::AppError;
use crate::live::LiveHub;
use crate::store::Store;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub live: LiveHub,
    pub config: Arc<Config>,
    pub jobs: crate::export::jobs::JobQueue,
    /// Where finished background exports are kept.
    pub exports: crate::export::files::ExportFiles,
    pub recordings: crate::recording::Recordings,
    pub qm: crate::qm::Qm,
}

impl AppState {
    /// Wakes a background worker here and on every other instance: work was queued that any
    /// instance may take.
    pub fn wake(&self, what: crate::live::Wake) {
        use crate::live::Wake;
        match what {
            Wake::Exports => self.jobs.queued(),
            Wake::Qm => self.qm.wake.notify_one(),
            Wake::Recordings => self.recordings.wake.notify_one(),
        }
        self.live.wake_others(what);
    }
}

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(meta::router())
        .merge(ingest::router())
        .merge(pbx::router())
        .merge(voximplant::router())
        .merge(compat::router())
        .merge(health::router())
        .merge(calls::router())
        .merge(export::router())
        .merge(exports::router())
        .merge(directory::router())
        .merge(people::router())
        .merge(session::router())
        .merge(account::router())
        .merge(preferences::router())
        .merge(recording::router())
        .merge(calllog::router())
        .merge(qm::router())
        .merge(web::router())
        .fallback(|| async { AppError::NotFound })
        .layer(DefaultBodyLimit::max(limit))
        // Spans name the path, not the query: the reference product's webhooks carry their
        // token in it (`?token=`).
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<axum::body::Body>| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "calltrail", description = "Self-hosted call history for contact centers"),
    paths(
        meta::healthz, meta::openapi,
        ingest::ingest_calls, pbx::ingest_freeswitch, pbx::get_settings, pbx::put_settings,
        voximplant::ingest_webhooks, voximplant::get_integration, voximplant::put_integration,
        health::get_health, health::get_rejection, health::replay,
        compat::search_v4, compat::search_v3, compat::export_report, compat::report_status, compat::download_report,
        calls::list_calls, calls::get_call, calls::live_calls, export::export_calls,
        recording::get_recording, recording::upload_recording, calllog::create_link, calllog::revoke_links,
        exports::start_export, exports::list_exports, exports::get_export, exports::cancel_export, exports::export_file,
        directory::queues, directory::scenarios, directory::campaigns, directory::completion_codes,
        directory::tags, directory::topics,
        people::list_users, people::get_user, people::create_user, people::update_user,
        people::list_groups, people::get_group, people::create_group, people::update_group,
        session::sign_in, session::current, session::sign_out,
        account::me, account::settings, account::update_settings, account::audit_log,
        preferences::get_preferences, preferences::put_preferences,
        qm::settings::get_integration, qm::settings::put_integration, qm::settings::connect,
        qm::exports::start_export, qm::exports::list_exports, qm::exports::get_export,
        qm::exports::cancel_export, qm::exports::rerun_export, qm::link::recording_for_qm,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // PBX modules that only speak HTTP Basic: the ingest token is the password.
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        // The browser's alternative to a token, accepted wherever a token is; writes made with
        // it carry the session's X-CSRF-Token header.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
        );
    }
}
