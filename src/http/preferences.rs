//! `GET/PUT /api/v1/me/preferences`: the signed-in user's own view, kept on the server so it
//! follows them from browser to browser.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::JsonBody;
use super::AppState;
use crate::domain::record::nullable;
use crate::domain::{Column, Lang, Principal};
use crate::error::AppError;
use crate::store::preferences::{self, Change, Chosen};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/me/preferences", get(get_preferences).put(put_preferences))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Preferences {
    /// The visible columns, in order: the user's choice, or every column their role may see.
    pub columns: Vec<Column>,
    /// Whether `columns` is the user's own choice.
    pub columns_chosen: bool,
    /// The interface language; `null`: never chosen (the page follows the browser).
    pub lang: Option<Lang>,
    /// IANA zone for dates and times; `null`: the account's zone.
    pub timezone: Option<String>,
}

impl Preferences {
    fn of(chosen: &Chosen, principal: &Principal) -> Self {
        Preferences {
            columns: chosen.columns_for(principal.role),
            columns_chosen: chosen.columns.is_some(),
            lang: chosen.lang,
            timezone: chosen.timezone.clone(),
        }
    }
}

/// A change: fields present replace, `null` returns a field to its default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesChange {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<Column>>)]
    pub columns: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Lang>)]
    pub lang: Option<Option<Lang>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
}

fn own_view(principal: &Principal) -> Result<(), AppError> {
    if !principal.may_read_calls() {
        return Err(AppError::Forbidden("an ingest token has no view preferences".into()));
    }
    Ok(())
}

/// The signed-in user's visible columns, language and time zone.
#[utoipa::path(get, path = "/api/v1/me/preferences", tag = "account",
    responses((status = 200, body = Preferences), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_preferences(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Preferences>, AppError> {
    own_view(&principal)?;
    let user = principal.user_id;
    let chosen = state.store.read(move |conn| preferences::get(conn, user)).await?;
    Ok(Json(Preferences::of(&chosen, &principal)))
}

/// Changes the signed-in user's preferences.
#[utoipa::path(put, path = "/api/v1/me/preferences", tag = "account", request_body = PreferencesChange,
    responses((status = 200, body = Preferences), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_preferences(
    principal: Principal,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<PreferencesChange>,
) -> Result<Json<Preferences>, AppError> {
    own_view(&principal)?;
    let columns = match body.columns {
        Some(Some(codes)) => Some(Some(Column::parse_choice(&codes, principal.role, "columns")?)),
        Some(None) => Some(None),
        None => None,
    };
    if let Some(Some(tz)) = &body.timezone {
        tz.parse::<Tz>()
            .map_err(|_| AppError::invalid("timezone", format!("unknown time zone {tz:?}")))?;
    }
    let change = Change {
        columns,
        lang: body.lang,
        timezone: body.timezone,
    };
    let user = principal.user_id;
    let chosen = state
        .store
        .write(move |conn, _| preferences::set(conn, user, change))
        .await?;
    Ok(Json(Preferences::of(&chosen, &principal)))
}
