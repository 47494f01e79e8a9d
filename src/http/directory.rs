//! The directory lists: the choices of the search filters.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::domain::Principal;
use crate::error::AppError;
use crate::store::directory::{self, Dim, DirItem};

#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/queues", get(queues))
        .route("/api/v1/scenarios", get(scenarios))
        .route("/api/v1/campaigns", get(campaigns))
        .route("/api/v1/completion-codes", get(completion_codes))
        .route("/api/v1/tags", get(tags))
        .route("/api/v1/topics", get(topics))
}

/// The account whose directory this principal may read.
fn readable_account(principal: &Principal) -> Result<crate::domain::AccountId, AppError> {
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token cannot read the directory".into()));
    }
    Ok(principal.account_id)
}

async fn list_dim(principal: &Principal, state: &AppState, dim: Dim) -> Result<Json<Items<DirItem>>, AppError> {
    let (account, redacted) = (readable_account(principal)?, !principal.role.sees_price());
    let mut items = state
        .store
        .read(move |conn| directory::list(conn, dim, account))
        .await?;
    if redacted {
        items.iter_mut().for_each(|i| i.url = None);
    }
    Ok(Json(Items { items }))
}

macro_rules! dim_endpoint {
    ($fn:ident, $dim:expr, $path:literal) => {
        #[doc = concat!("Lists ", $path, ".")]
        #[utoipa::path(get, path = $path, tag = "directory",
                    responses((status = 200, body = Items<DirItem>), (status = 401, body = crate::error::ErrorBody)),
                    security(("bearer" = [])))]
        pub async fn $fn(
            principal: Principal,
            State(state): State<AppState>,
        ) -> Result<Json<Items<DirItem>>, AppError> {
            list_dim(&principal, &state, $dim).await
        }
    };
}

dim_endpoint!(queues, Dim::Queue, "/api/v1/queues");
dim_endpoint!(scenarios, Dim::Scenario, "/api/v1/scenarios");
dim_endpoint!(campaigns, Dim::Campaign, "/api/v1/campaigns");
dim_endpoint!(completion_codes, Dim::CompletionCode, "/api/v1/completion-codes");
dim_endpoint!(tags, Dim::Tag, "/api/v1/tags");
dim_endpoint!(topics, Dim::Topic, "/api/v1/topics");
