//! A QM import API on loopback that enforces the documented rules and can be told to fail.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(super) const KEY: &str = "tqm-key-5f2a9c";

/// What the fake answers a call instead of taking it, in order, once each.
#[derive(Clone, Debug)]
pub(super) enum Fault {
    /// This status, with this x-correlation-id.
    Status(u16, &'static str),
    /// 429 with Retry-After: this many seconds.
    Throttle(u64),
    /// No answer for this long.
    Hang(u64),
}

#[derive(Default)]
pub(super) struct Seen {
    /// Bodies of the calls taken (200), in order.
    pub(super) calls: Vec<Value>,
    /// Bodies of the users taken.
    pub(super) users: Vec<Value>,
    /// Every request: when, path, the call id if any, the status answered.
    pub(super) requests: Vec<(Instant, String, Option<String>, u16)>,
    /// Per call id: the status and SHA-256 of each download of its fileLink.
    pub(super) downloads: BTreeMap<String, Vec<(u16, String)>>,
    pub(super) faults: HashMap<String, VecDeque<Fault>>,
    /// Every call import waits this long before answering.
    pub(super) delay_ms: u64,
    pub(super) key: String,
}

#[derive(Clone)]
pub(super) struct FakeQm {
    pub(super) seen: Arc<Mutex<Seen>>,
    pub(super) tz: Tz,
}

impl FakeQm {
    pub(super) async fn start(tz: Tz) -> (FakeQm, String) {
        let me = FakeQm {
            seen: Arc::new(Mutex::new(Seen {
                key: KEY.into(),
                ..Seen::default()
            })),
            tz,
        };
        let app = axum::Router::new()
            .route("/v2/integration/import/call", axum::routing::post(import_call))
            .route("/integration/import/user", axum::routing::post(import_user))
            .with_state(me.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (me, base)
    }

    pub(super) fn fail(&self, id: &str, faults: &[Fault]) {
        self.seen
            .lock()
            .unwrap()
            .faults
            .insert(id.into(), faults.iter().cloned().collect());
    }

    pub(super) fn taken_ids(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub(super) fn call(&self, id: &str) -> Value {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub(super) fn requests_for(&self, id: &str) -> Vec<(Instant, u16)> {
        let seen = self.seen.lock().unwrap();
        seen.requests
            .iter()
            .filter(|r| r.2.as_deref() == Some(id))
            .map(|r| (r.0, r.3))
            .collect()
    }
}

pub(super) fn refuse(status: u16, correlation: &str, message: impl Into<String>) -> axum::response::Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("x-correlation-id", correlation.to_string())],
        message.into(),
    )
        .into_response()
}

pub(super) fn authorised(qm: &FakeQm, headers: &HeaderMap) -> bool {
    let key = qm.seen.lock().unwrap().key.clone();
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {key}"))
}

pub(super) fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

/// A date as the API wants it: no offset, not in the future (in the account's zone).
pub(super) fn date(qm: &FakeQm, body: &Value, field: &str) -> Result<NaiveDateTime, String> {
    let s = text(body, field).ok_or(format!("{field} is required"))?;
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").map_err(|e| format!("{field} {s:?}: {e}"))?;
    if t > Utc::now().with_timezone(&qm.tz).naive_local() {
        return Err(format!("{field} is in the future"));
    }
    Ok(t)
}

pub(super) async fn import_call(
    axum::extract::State(qm): axum::extract::State<FakeQm>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let status_of = |qm: &FakeQm, id: Option<String>, status: u16| {
        qm.seen
            .lock()
            .unwrap()
            .requests
            .push((Instant::now(), "call".into(), id, status));
    };
    if !authorised(&qm, &headers) {
        status_of(&qm, None, 401);
        return refuse(401, "auth", "unauthorized");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(400, "json", "malformed json");
    };
    let id = text(&body, "id").map(String::from);
    let checked = (|| -> Result<(), String> {
        let id = id.as_deref().ok_or("id is required")?;
        if id.is_empty() || id.chars().count() > 32 {
            return Err(format!("id {id:?} must be 1 … 32 characters"));
        }
        let link = text(&body, "fileLink").ok_or("fileLink is required")?;
        if link.len() > 2000 {
            return Err("fileLink is longer than 2000".into());
        }
        if !matches!(text(&body, "callDirection"), Some("inbound" | "outbound")) {
            return Err("callDirection must be inbound or outbound".into());
        }
        let start = date(&qm, &body, "startDate")?;
        let end = date(&qm, &body, "endDate")?;
        if end < start {
            return Err("endDate is before startDate".into());
        }
        if let Some(p) = body.get("hangupParty") {
            if !matches!(p.as_str(), Some("client" | "timeout" | "operator" | "server")) {
                return Err(format!("hangupParty {p}"));
            }
        }
        if !matches!(text(&body, "operatorChannel"), Some("left" | "right")) {
            return Err("operatorChannel must be left or right".into());
        }
        if let Some(op) = text(&body, "operatorId") {
            let seen = qm.seen.lock().unwrap();
            if !seen.users.iter().any(|u| u["id"] == op) {
                return Err(format!("operator {op} was not imported"));
            }
        }
        Ok(())
    })();
    if let Err(why) = checked {
        status_of(&qm, id, 400);
        return refuse(400, "validation", why);
    }
    let id = id.unwrap_or_default();
    let (fault, delay) = {
        let mut seen = qm.seen.lock().unwrap();
        let fault = seen.faults.get_mut(&id).and_then(VecDeque::pop_front);
        (fault, seen.delay_ms)
    };
    match fault {
        Some(Fault::Status(s, correlation)) => {
            status_of(&qm, Some(id), s);
            return refuse(s, correlation, format!("scripted {s}"));
        }
        Some(Fault::Throttle(secs)) => {
            status_of(&qm, Some(id), 429);
            let after = secs.to_string();
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", after)], "slow down").into_response();
        }
        Some(Fault::Hang(ms)) => {
            status_of(&qm, Some(id), 0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return refuse(504, "hang", "too late");
        }
        None => {}
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    // The QM system downloads the recording from the link it was given.
    let link = text(&body, "fileLink").unwrap_or_default().to_string();
    let download = match reqwest::get(&link).await {
        Ok(r) => {
            let status = r.status().as_u16();
            let bytes = r.bytes().await.unwrap_or_default();
            (status, format!("{:x}", Sha256::digest(&bytes)))
        }
        Err(_) => (0, String::new()),
    };
    let mut seen = qm.seen.lock().unwrap();
    seen.downloads.entry(id.clone()).or_default().push(download.clone());
    if download.0 != 200 {
        seen.requests.push((Instant::now(), "call".into(), Some(id), 400));
        return refuse(400, "file", format!("fileLink answered {}", download.0));
    }
    seen.requests.push((Instant::now(), "call".into(), Some(id), 200));
    seen.calls.push(body);
    (StatusCode::OK, "{}").into_response()
}

pub(super) async fn import_user(
    axum::extract::State(qm): axum::extract::State<FakeQm>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    if !authorised(&qm, &headers) {
        return refuse(401, "auth", "unauthorized");
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return refuse(400, "json", "malformed json");
    };
    if text(&body, "id").is_none() || !matches!(body["roleId"].as_u64(), Some(2 | 3)) {
        return refuse(400, "user", "id and roleId are required");
    }
    let mut seen = qm.seen.lock().unwrap();
    seen.requests.push((Instant::now(), "user".into(), None, 200));
    seen.users.push(body);
    (StatusCode::OK, "{}").into_response()
}
