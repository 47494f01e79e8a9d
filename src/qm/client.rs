//! The QM system's import API as calltrail speaks it: `POST {base}/v2/integration/import/call`,
//! `POST {base}/integration/import/user`, `Authorization: Basic <API key>`. Any answer but 200
//! means "not taken"; what may pass (429, 408, 5xx, no answer) is told apart from what will not.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Serialize;

use crate::domain::qm::HangupParty;

/// One call as the import API takes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CallPayload {
    pub id: String,
    pub file_link: String,
    pub call_direction: &'static str,
    pub start_date: String,
    pub end_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_phone_number: Option<String>,
    pub language_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup_party: Option<HangupParty>,
    pub operator_channel: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<&'static str>,
}

/// One operator as the user import takes them (role 2: agent).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserPayload {
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub middle_name: String,
    pub role_id: u8,
}

pub const AGENT_ROLE: u8 = 2;

const CALL_PATH: &str = "/v2/integration/import/call";

/// What became of one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200: taken.
    Taken,
    /// Not taken, and sending the same again will not change that (400, 401, 403, 404, 413, …).
    Refused {
        status: u16,
        correlation_id: Option<String>,
        message: String,
    },
    /// Not taken for now: throttled (429), the QM system failing (5xx, 408), or no answer in time.
    Retry {
        status: Option<u16>,
        correlation_id: Option<String>,
        message: String,
        /// What the QM system asked for with Retry-After.
        after: Option<Duration>,
    },
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    #[error("the QM system refused the API key ({0})")]
    KeyRefused(u16),
    #[error("{0}")]
    BaseUrl(String),
}

pub struct QmClient {
    http: reqwest::Client,
    base_url: String,
    authorization: String,
}

impl QmClient {
    pub fn new(base_url: &str, api_key: &str, timeout: Duration) -> Result<QmClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("calltrail/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(QmClient {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: format!("Basic {api_key}"),
        })
    }

    pub async fn import_call(&self, call: &CallPayload) -> Answer {
        self.post(CALL_PATH, call).await
    }

    pub async fn import_user(&self, user: &UserPayload) -> Answer {
        self.post("/integration/import/user", user).await
    }

    /// Whether the QM system accepts the key: an empty call import must be refused for its
    /// missing fields (400/422: the key was accepted), not for the key (401/403). Nothing is
    /// imported either way.
    pub async fn check(&self) -> Result<(), CheckError> {
        let answer = self.post(CALL_PATH, &serde_json::json!({})).await;
        let url = self.url(CALL_PATH);
        match answer {
            Answer::Taken => Ok(()),
            Answer::Refused { status: 400 | 422, .. } => Ok(()),
            Answer::Refused {
                status: s @ (401 | 403),
                ..
            } => Err(CheckError::KeyRefused(s)),
            Answer::Refused { status, message, .. } => Err(CheckError::BaseUrl(format!(
                "{url} answered {status}: is the base URL the QM system's? {message}"
            ))),
            Answer::Retry {
                status: Some(status),
                correlation_id,
                message,
                ..
            } => Err(CheckError::BaseUrl(format!(
                "the QM system answered {status}{}; try again later. {message}",
                correlation_id
                    .map(|c| format!(" (x-correlation-id {c})"))
                    .unwrap_or_default()
            ))),
            Answer::Retry { message, .. } => Err(CheckError::BaseUrl(format!("cannot reach {url}: {message}"))),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    async fn post(&self, path: &str, body: &impl Serialize) -> Answer {
        let sent = self
            .http
            .post(self.url(path))
            .header(AUTHORIZATION, &self.authorization)
            .header(CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let message = if e.is_timeout() {
                    "no answer in time".to_string()
                } else {
                    // The chain says what failed (refused connection, DNS, TLS).
                    let mut text = e.to_string();
                    let mut source = std::error::Error::source(&e);
                    while let Some(s) = source {
                        text = format!("{text}: {s}");
                        source = s.source();
                    }
                    text
                };
                return Answer::Retry {
                    status: None,
                    correlation_id: None,
                    message,
                    after: None,
                };
            }
        };
        let status = response.status();
        let correlation_id = header_text(response.headers(), "x-correlation-id");
        let after = retry_after(response.headers());
        if status == StatusCode::OK {
            return Answer::Taken;
        }
        // The body says why; kept short.
        let text = response.text().await.unwrap_or_default();
        let mut message: String = text.trim().chars().take(300).collect();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("no reason given").to_string();
        }
        let code = status.as_u16();
        if code == 429 || code == 408 || status.is_server_error() {
            Answer::Retry {
                status: Some(code),
                correlation_id,
                message,
                after,
            }
        } else {
            Answer::Refused {
                status: code,
                correlation_id,
                message,
            }
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(200).collect())
}

/// Retry-After in seconds (the HTTP-date form is not used by rate limiters we know of).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}
