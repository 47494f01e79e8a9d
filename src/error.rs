//! The one error type of the HTTP layer and its mapping to status codes and the JSON shape
//! `{"error":{"code","message","field"}}`. Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::FieldError;
use crate::ingest::native::RecordError;
use crate::recording::storage::StorageError;
use crate::recording::RecordingError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Invalid {
        field: String,
        message: String,
        /// The index of the record at fault in a batch.
        index: Option<usize>,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// Something that existed and is deliberately gone (an expired export file).
    #[error("{0}")]
    Gone(String),
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A byte range past the end of a file of `size` bytes.
    #[error("the range is outside the file's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// A dependency (object storage) is not answering.
    #[error("{0}")]
    Unavailable(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error("internal error")]
    Internal(String),
}

/// The error body, as documented in the OpenAPI document.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl AppError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
            index: None,
        }
    }

    /// Status and stable error code, in one table.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            AppError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Gone(_) => (StatusCode::GONE, "gone"),
            AppError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            AppError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            AppError::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::Invalid {
            field: e.field,
            message: e.message,
            index: None,
        }
    }
}

impl From<RecordError> for AppError {
    fn from(e: RecordError) -> Self {
        AppError::Invalid {
            field: e.error.field,
            message: e.error.message,
            index: e.index,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(f) => f.into(),
            StoreError::InvalidRecord { index, error } => AppError::Invalid {
                message: format!("record {index}: {}", error.message),
                field: error.field,
                index: Some(index),
            },
            StoreError::NotFound => AppError::NotFound,
            StoreError::Conflict(m) => AppError::Conflict(m),
            StoreError::Forbidden(m) => AppError::Forbidden(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<RecordingError> for AppError {
    fn from(e: RecordingError) -> Self {
        match e {
            RecordingError::NotAudio(m) => AppError::UnsupportedMediaType(m),
            RecordingError::TooLarge { limit } => AppError::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            RecordingError::Source(m) => AppError::invalid("body", format!("the upload broke off: {m}")),
            RecordingError::Storage(m) => AppError::Unavailable(format!("recording storage: {m}")),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => AppError::NotFound,
            other => RecordingError::from(other).into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (field, index) = match &self {
            AppError::Invalid { field, index, .. } => (Some(field.clone()), *index),
            _ => (None, None),
        };
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(detail = %detail, "request failed");
                "internal error; see the server log".to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
                index,
            },
        };
        let mut response = (status, Json(body)).into_response();
        match self {
            AppError::TooManyRequests { retry_after_secs, .. } => {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
            }
            AppError::RangeNotSatisfiable { size } => {
                if let Ok(v) = axum::http::HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.headers_mut().insert(axum::http::header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_status() {
        let table = [
            (AppError::invalid("number", "too short"), 400),
            (AppError::Unauthorized, 401),
            (AppError::Forbidden("no".into()), 403),
            (AppError::NotFound, 404),
            (AppError::Conflict("taken".into()), 409),
            (AppError::PayloadTooLarge { limit: 1 }, 413),
            (AppError::UnsupportedMediaType("xml".into()), 415),
            (
                AppError::TooManyRequests {
                    message: "slow down".into(),
                    retry_after_secs: 9,
                },
                429,
            ),
            (AppError::RangeNotSatisfiable { size: 10 }, 416),
            (AppError::Unavailable("s3".into()), 503),
            (AppError::Internal("boom".into()), 500),
        ];
        for (e, status) in table {
            assert_eq!(e.status_and_code().0.as_u16(), status, "{e:?}");
        }
        let e: AppError = StoreError::InvalidRecord {
            index: 3,
            error: FieldError::new("kind", "bad"),
        }
        .into();
        assert!(matches!(e, AppError::Invalid { index: Some(3), ref field, .. } if field == "kind"));
    }
}
