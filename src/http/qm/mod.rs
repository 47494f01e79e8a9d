//! The QM integration over HTTP: its settings (owner, administrator, `settings.rs`), export
//! jobs (owner, administrator, manager, `exports.rs`), and the signed recording links the QM
//! system downloads from (`link.rs`).

pub mod exports;
pub mod link;
pub mod settings;

use axum::routing::{get, post};
use axum::Router;

use super::AppState;

pub(crate) use exports::not_ready;
use exports::{cancel_export, get_export, list_exports, rerun_export, start_export};
use link::recording_for_qm;
use settings::{connect, get_integration, put_integration};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/integrations/qm", get(get_integration).put(put_integration))
        .route("/api/v1/integrations/qm/connect", post(connect))
        .route("/api/v1/integrations/qm/exports", get(list_exports).post(start_export))
        .route(
            "/api/v1/integrations/qm/exports/{id}",
            get(get_export).delete(cancel_export),
        )
        .route("/api/v1/integrations/qm/exports/{id}/rerun", post(rerun_export))
        .route("/qm/recordings/{file}", get(recording_for_qm))
}
