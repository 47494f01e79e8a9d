//! Handing calls to the QM system, against a QM import API on loopback that enforces the
//! documented rules (Basic auth with the key, required fields, `id` ≤ 32, `fileLink` ≤ 2000 and
//! downloadable — it downloads the file —, dates without offset, not in the future, end ≥
//! start, operators imported before their calls) and that can be told to fail, throttle or
//! hang for a given call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use calltrail::domain::{Role, TokenScope};
use calltrail::secrets::SealingKey;
use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{error_field, temp_dir, wav_bytes, TestApp};

const KEY: &str = "tqm-key-5f2a9c";

/// What the fake answers a call instead of taking it, in order, once each.
#[derive(Clone, Debug)]
enum Fault {
    /// This status, with this x-correlation-id.
    Status(u16, &'static str),
    /// 429 with Retry-After: this many seconds.
    Throttle(u64),
    /// No answer for this long.
    Hang(u64),
}

#[derive(Default)]
struct Seen {
    /// Bodies of the calls taken (200), in order.
    calls: Vec<Value>,
    /// Bodies of the users taken.
    users: Vec<Value>,
    /// Every request: when, path, the call id if any, the status answered.
    requests: Vec<(Instant, String, Option<String>, u16)>,
    /// Per call id: the status and SHA-256 of each download of its fileLink.
    downloads: BTreeMap<String, Vec<(u16, String)>>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Every call import waits this long before answering.
    delay_ms: u64,
    key: String,
}

#[derive(Clone)]
struct FakeQm {
    seen: Arc<Mutex<Seen>>,
    tz: Tz,
}

impl FakeQm {
    async fn start(tz: Tz) -> (FakeQm, String) {
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

    fn fail(&self, id: &str, faults: &[Fault]) {
        self.seen
            .lock()
            .unwrap()
            .faults
            .insert(id.into(), faults.iter().cloned().collect());
    }

    fn taken_ids(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn call(&self, id: &str) -> Value {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn requests_for(&self, id: &str) -> Vec<(Instant, u16)> {
        let seen = self.seen.lock().unwrap();
        seen.requests
            .iter()
            .filter(|r| r.2.as_deref() == Some(id))
            .map(|r| (r.0, r.3))
            .collect()
    }
}

fn refuse(status: u16, correlation: &str, message: impl Into<String>) -> axum::response::Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("x-correlation-id", correlation.to_string())],
        message.into(),
    )
        .into_response()
}

fn authorised(qm: &FakeQm, headers: &HeaderMap) -> bool {
    let key = qm.seen.lock().unwrap().key.clone();
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {key}"))
}

fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field).and_then(Value::as_str)
}

/// A date as the API wants it: no offset, not in the future (in the account's zone).
fn date(qm: &FakeQm, body: &Value, field: &str) -> Result<NaiveDateTime, String> {
    let s = text(body, field).ok_or(format!("{field} is required"))?;
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").map_err(|e| format!("{field} {s:?}: {e}"))?;
    if t > Utc::now().with_timezone(&qm.tz).naive_local() {
        return Err(format!("{field} is in the future"));
    }
    Ok(t)
}

async fn import_call(
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

async fn import_user(
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

/// Fast delivery rules for tests: these are what each test changes.
fn fast(c: &mut calltrail::config::Config, key: &SealingKey) {
    // Links the QM system can follow: this server's own address (port known once bound).
    c.public_url = format!("http://{}", c.listen);
    c.secret_key = Some(key.clone());
    c.qm.request_interval_ms = 2;
    c.qm.batch_pause_ms = 5;
    c.qm.retry_base_ms = 40;
    c.qm.attempts = 3;
    c.qm.timeout_ms = 2_000;
}

/// An account in Moscow time with the integration connected and active.
async fn connected(app: &TestApp, owner: &str, base: &str) {
    let (status, body) = app
        .send(
            "PUT",
            owner,
            "/api/v1/settings",
            Some(json!({"timezone": "Europe/Moscow"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let change = json!({"base_url": base, "api_key": KEY, "operator_channel": "right", "active": true});
    let (status, body) = app.send("PUT", owner, "/api/v1/integrations/qm", Some(change)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["active"], &body["connected"]),
        (&json!(true), &json!(true)),
        "{body}"
    );
}

/// A fake QM system, and a server connected to it with the fast rules and `adjust`'s changes;
/// the owner's token.
async fn connected_app(
    name: &str,
    adjust: impl FnOnce(&mut calltrail::config::Config),
) -> (FakeQm, SealingKey, TestApp, String) {
    let (qm, base) = FakeQm::start(Tz::Europe__Moscow).await;
    let key = SealingKey::random();
    let app = TestApp::start_configured(temp_dir(name), |c| {
        fast(c, &key);
        adjust(c);
    })
    .await;
    let owner = app.owner().await;
    connected(&app, &owner, &base).await;
    (qm, key, app, owner)
}

/// Waits for a QM export to end and returns it with its calls.
async fn finished(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = app.get(token, &format!("/api/v1/integrations/qm/exports/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if !matches!(job["state"].as_str(), Some("queued" | "running")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("QM export {id} did not finish");
}

/// Asks for a re-run of a QM export: the status and the answer.
async fn ask_rerun(app: &TestApp, token: &str, id: &str) -> (u16, Value) {
    let path = format!("/api/v1/integrations/qm/exports/{id}/rerun");
    app.send("POST", token, &path, None).await
}

/// Asks for a QM export: the status and the answer.
async fn ask(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    app.send("POST", token, "/api/v1/integrations/qm/exports", Some(body))
        .await
}

async fn start(app: &TestApp, token: &str, body: Value) -> String {
    let (status, job) = ask(app, token, body).await;
    assert_eq!(status, 201, "{job}");
    job["id"].as_str().unwrap().to_string()
}

fn counts(job: &Value) -> [i64; 6] {
    ["total", "sent", "already_sent", "skipped", "failed", "pending"].map(|k| job[k].as_i64().unwrap())
}

fn outcome_of<'a>(job: &'a Value, call_id: &str) -> &'a Value {
    job["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["call_id"] == call_id)
        .unwrap_or_else(|| panic!("{call_id} in {job}"))
}

fn answered(ext: &str, operator: Option<(&str, &str)>, minute: u32) -> Value {
    let mut c = json!({
        "external_id": ext, "kind": "incoming", "from": "+79161230000", "to": "+74950000001",
        "started_at": format!("2026-11-10T09:{minute:02}:00Z"),
        "answered_at": format!("2026-11-10T09:{minute:02}:20Z"),
        "ended_at": format!("2026-11-10T09:{minute:02}:50Z"), "result": "answered",
    });
    if let Some((login, name)) = operator {
        c["operator"] = json!(login);
        c["operator_name"] = json!(name);
    }
    c
}

#[tokio::test]
async fn settings_are_for_administrators_and_the_key_never_leaves_the_server() {
    let (_qm, base) = FakeQm::start(Tz::Europe__Moscow).await;
    let key = SealingKey::random();
    let dir = temp_dir("qm-settings");
    let app = TestApp::start_configured(dir.clone(), |c| fast(c, &key)).await;
    let owner = app.owner().await;
    let admin = app.token("default", "admin", Role::Admin, TokenScope::Full).await;
    let manager = app.token("default", "manager", Role::Manager, TokenScope::Full).await;
    let operator = app.token("default", "op", Role::Operator, TokenScope::Full).await;
    let path = "/api/v1/integrations/qm";

    for who in [&manager, &operator] {
        assert_eq!(app.get(who, path).await.0, 403);
        let (status, _) = app.send("PUT", who, path, Some(json!({"active": false}))).await;
        assert_eq!(status, 403);
    }
    let (status, fresh) = app.get(&admin, path).await;
    assert_eq!(status, 200);
    assert_eq!(
        fresh,
        json!({"base_url": "https://tqm-cloud.tbank.ru", "api_key": null, "api_key_readable": false,
               "language_code": "ru", "operator_channel": "left", "active": false, "connected": false,
               "connected_at": null, "file_links_from": format!("{}/qm/recordings/", app.base),
               "file_links_warning": format!("{} is this machine's own address: the QM system cannot download \
                   recordings from it; start calltrail with --public-url set to an address it can reach", app.base)})
    );
    // Not active: exporting is refused with a clear conflict, and /me says so.
    let (status, body) = ask(&app, &manager, json!({"filters": {}})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not connected and active"),
        "{body}"
    );
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );

    // Bad input names its field and changes nothing.
    for (change, field) in [
        (json!({"base_url": "ftp://qm.example"}), "base_url"),
        (json!({"base_url": "not a url"}), "base_url"),
        (json!({"api_key": "has a space"}), "api_key"),
        (json!({"api_key": ""}), "api_key"),
        (json!({"api_key": "short"}), "api_key"),
        (json!({"language_code": "russian"}), "language_code"),
        (json!({"operator_channel": "middle"}), "operator_channel"),
        (json!({"active": "yes"}), "active"),
        (json!({"secret": 1}), "secret"),
        // Activating checks the key with the QM system: a wrong one is refused (401 there).
        (
            json!({"base_url": base, "api_key": "wrong-key", "active": true}),
            "api_key",
        ),
        // A QM system that cannot be reached.
        (
            json!({"base_url": "http://127.0.0.1:9", "api_key": KEY, "active": true}),
            "base_url",
        ),
        // Activating without any key.
        (json!({"active": true}), "api_key"),
    ] {
        let (status, body) = app.send("PUT", &admin, path, Some(change.clone())).await;
        assert_eq!((status, error_field(&body)), (400, field), "{change}: {body}");
    }
    let (_, wrong) = app
        .send(
            "PUT",
            &admin,
            path,
            Some(json!({"base_url": base, "api_key": "wrong-key", "active": true})),
        )
        .await;
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the API key (401)"),
        "{wrong}"
    );
    assert_eq!(app.get(&admin, path).await.1, fresh, "nothing changed");

    connected(&app, &admin, &base).await;
    let (_, shown) = app.get(&owner, path).await;
    assert_eq!(shown["api_key"], "••••2a9c", "masked: the last four characters only");
    assert_eq!(shown["api_key_readable"], true);
    assert_eq!(shown["operator_channel"], "right");
    assert_eq!(shown["base_url"], base.as_str());
    assert!(!shown.to_string().contains(KEY));
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        true
    );
    assert_eq!(
        app.get(&operator, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );
    let (status, body) = app.send("POST", &admin, "/api/v1/integrations/qm/connect", None).await;
    assert_eq!((status, &body["connected"]), (200, &json!(true)), "{body}");

    // At rest the key is sealed: the database holds neither it nor anything that opens without
    // the server's key.
    let sealed: String = app
        .store
        .read(|conn| Ok(conn.query_row("SELECT api_key_sealed FROM qm_integrations", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains(KEY), "{sealed}");
    assert_eq!(key.open(&sealed, "qm-api-key:1").unwrap(), KEY);
    // The audit log has every change, never the key.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=qm_settings_changed").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "connected once by PUT, once by connect: {audit}");
    assert_eq!(
        entries[1]["detail"]["changed"],
        json!(["base_url", "api_key", "operator_channel", "active"])
    );
    assert_eq!(entries[0]["detail"]["connected"], true);
    assert!(!audit.to_string().contains(KEY));

    // Another secret key cannot open it: the page is told to ask for the key again, and exports
    // wait for it.
    app.stop().await;
    let app = TestApp::start_configured(dir, |c| fast(c, &SealingKey::random())).await;
    let (_, shown) = app.get(&owner, path).await;
    assert_eq!(
        (&shown["api_key_readable"], &shown["active"]),
        (&json!(false), &json!(true)),
        "{shown}"
    );
    let (status, body) = app.send("POST", &admin, "/api/v1/integrations/qm/connect", None).await;
    assert_eq!((status, error_field(&body)), (400, "api_key"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enter the API key again"),
        "{body}"
    );
    let (status, body) = ask(&app, &owner, json!({"filters": {}})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );
    // Entering it again mends it; switching off turns exports off.
    let (status, _) = app.send("PUT", &admin, path, Some(json!({"api_key": KEY}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        true
    );
    let (status, off) = app.send("PUT", &admin, path, Some(json!({"active": false}))).await;
    assert_eq!((status, &off["active"]), (200, &json!(false)));
    let (status, _) = ask(&app, &owner, json!({"call_ids": ["1"]})).await;
    assert_eq!(status, 409);
    app.stop().await;
}

#[tokio::test]
async fn calls_reach_the_qm_system_once_each_with_what_it_demands() {
    let (qm, key, app, owner) = connected_app("qm-happy", |c| {
        c.retention_every_ms = 100;
        // Paced: requests 30 ms apart, two calls a batch, 150 ms between batches.
        c.qm.request_interval_ms = 30;
        c.qm.batch_size = 2;
        c.qm.batch_pause_ms = 150;
    })
    .await;
    let long = "kit-session-7c1f0d8e-93b4-4b7a-a1d2-5e6f7a8b9c0d-leg-1";
    let mut outgoing = answered(long, Some(("petrov", "Сергей Петров")), 10);
    outgoing["kind"] = json!("softphone_outgoing");
    outgoing["from"] = json!("201");
    outgoing["to"] = json!("+74957654321");
    outgoing["result"] = json!("no_answer");
    outgoing["answered_at"] = Value::Null;
    let mut abandoned = answered("q3", None, 20);
    abandoned["result"] = json!("abandoned");
    abandoned["answered_at"] = Value::Null;
    app.ingest_ok(
        &owner,
        json!([
            answered("q1", Some(("ivanova", "Анна Иванова")), 0),
            outgoing,
            abandoned,
            answered("q4", Some(("ivanova", "Анна Иванова")), 30),
        ]),
    )
    .await;
    let recordings: BTreeMap<&str, Vec<u8>> = [
        ("q1", wav_bytes(30_000, 1)),
        (long, wav_bytes(20_000, 2)),
        ("q3", wav_bytes(10_000, 3)),
    ]
    .into();
    for (ext, bytes) in &recordings {
        assert_eq!(app.upload(&owner, ext, "audio/wav", bytes.clone()).await.0, 200);
    }
    let ids: BTreeMap<&str, String> = {
        let mut m = BTreeMap::new();
        for ext in ["q1", long, "q3", "q4"] {
            m.insert(ext, app.call_id(&owner, ext).await);
        }
        m
    };

    // Only owners, administrators and managers export; bad requests name their field.
    let manager = app.token("default", "manager", Role::Manager, TokenScope::Full).await;
    for role in [Role::Supervisor, Role::Operator] {
        let who = app.token("default", role.code(), role, TokenScope::Full).await;
        let (status, _) = ask(&app, &who, json!({"filters": {}})).await;
        assert_eq!(status, 403, "{role:?}");
        assert_eq!(app.get(&who, "/api/v1/integrations/qm/exports").await.0, 403);
    }
    let feeder = app.token("default", "pbx", Role::Operator, TokenScope::Ingest).await;
    let (status, _) = ask(&app, &feeder, json!({"filters": {}})).await;
    assert_eq!(status, 403);
    for (body, field) in [
        (json!({"filters": {}, "call_ids": ["1"]}), "filters"),
        (json!({}), "filters"),
        (json!({"call_ids": []}), "call_ids"),
        (json!({"call_ids": ["abc"]}), "call_ids[0]"),
        (json!({"call_ids": [ids["q1"], "999999"]}), "call_ids[1]"),
        (json!({"filters": {"number": "12"}}), "number"),
        (json!({"filters": {"result": "won"}}), "result"),
        (json!({"filters": {"from": "yesterday-ish"}}), "from"),
        (json!({"filter": {}}), "filter"),
    ] {
        let (status, answer) = ask(&app, &manager, body.clone()).await;
        assert_eq!((status, error_field(&answer)), (400, field), "{body}: {answer}");
    }
    assert_eq!(
        app.get(&owner, "/api/v1/integrations/qm/exports").await.1["items"],
        json!([]),
        "nothing made"
    );

    let the_day = json!({"filters": {"tz": "Europe/Moscow", "from": "2026-11-10", "to": "2026-11-11"}});
    // The connection check's request is not one of the export's.
    qm.seen.lock().unwrap().requests.clear();
    let id = start(&app, &manager, the_day.clone()).await;
    let job = finished(&app, &manager, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        counts(&job),
        [4, 3, 0, 1, 0, 0],
        "total, sent, already, skipped, failed, pending: {job}"
    );
    let q4 = outcome_of(&job, &ids["q4"]);
    assert_eq!((&q4["external_id"], &q4["qm_id"]), (&json!("q4"), &json!("q4")));
    let short_id = &outcome_of(&job, &ids[long])["qm_id"];
    assert!(
        short_id.as_str().unwrap().starts_with("ct") && short_id.as_str().unwrap().len() == 32,
        "{short_id}"
    );
    assert_eq!(
        (&q4["outcome"], &q4["error"]),
        (&json!("skipped"), &json!("no recording"))
    );
    assert_eq!(outcome_of(&job, &ids["q1"])["outcome"], "sent");
    assert_eq!(outcome_of(&job, &ids["q1"])["status"], 200);

    // What the QM system was told, field by field.
    let short = format!("ct{}", &format!("{:x}", Sha256::digest(long.as_bytes()))[..30]);
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec![short.clone(), "q1".to_string(), "q3".to_string()]);
    let q1 = qm.call("q1");
    let link = q1["fileLink"].as_str().unwrap().to_string();
    let mut q1_fields = q1.clone();
    q1_fields.as_object_mut().unwrap().remove("fileLink");
    assert_eq!(
        q1_fields,
        json!({"id": "q1", "callDirection": "inbound", "startDate": "2026-11-10T12:00:00",
               "endDate": "2026-11-10T12:00:50", "operatorId": "ivanova", "clientPhoneNumber": "+79161230000",
               "languageCode": "ru", "operatorChannel": "right", "result": "Вызов принят"})
    );
    assert!(
        link.starts_with(&format!("{}/qm/recordings/{}.wav?expires=", app.base, ids["q1"])),
        "{link}"
    );
    let out = qm.call(&short);
    assert_eq!(
        (
            &out["callDirection"],
            &out["clientPhoneNumber"],
            &out["operatorId"],
            &out["hangupParty"],
            &out["result"]
        ),
        (
            &json!("outbound"),
            &json!("+74957654321"),
            &json!("petrov"),
            &json!("timeout"),
            &json!("Абонент не отвечает")
        )
    );
    assert_eq!(
        (&out["startDate"], &out["endDate"]),
        (&json!("2026-11-10T12:10:00"), &json!("2026-11-10T12:10:50"))
    );
    let q3 = qm.call("q3");
    assert_eq!((&q3["hangupParty"], q3.get("operatorId")), (&json!("client"), None));
    // It downloaded each recording through its link: the very bytes uploaded.
    {
        let seen = qm.seen.lock().unwrap();
        for (ext, qm_id) in [("q1", "q1"), (long, short.as_str()), ("q3", "q3")] {
            let sha = format!("{:x}", Sha256::digest(&recordings[ext]));
            assert_eq!(seen.downloads[qm_id], vec![(200, sha)], "{ext}");
        }
        // Operators imported once each, before their calls, with their names split.
        assert_eq!(
            seen.users,
            vec![
                json!({"id": "ivanova", "lastName": "Иванова", "firstName": "Анна", "roleId": 2}),
                json!({"id": "petrov", "lastName": "Петров", "firstName": "Сергей", "roleId": 2}),
            ]
        );
        // Paced: 30 ms between requests, and a batch pause after every two calls.
        let times: Vec<Instant> = seen.requests.iter().map(|r| r.0).collect();
        assert_eq!(times.len(), 5, "2 users + 3 calls: {:?}", seen.requests);
        let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert!(gaps.iter().all(|g| *g >= 28), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g >= 148), "a pause between batches: {gaps:?}");
    }

    // The link: ranges work; a changed signature or another call is not found; an expired one is gone.
    let r = app.http.get(&link).header("range", "bytes=0-43").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), recordings["q1"][..44].to_vec());
    let forged = format!("{}A", link);
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 404);
    let other = link.replace(&format!("/{}.wav", ids["q1"]), &format!("/{}.wav", ids["q3"]));
    assert_eq!(app.http.get(&other).send().await.unwrap().status(), 404);
    let link_key = key.derive("calltrail qm file links");
    let call: i64 = ids["q1"].parse().unwrap();
    let q1_target = calltrail::qm::link::Target {
        account: 1,
        call,
        external_id: "q1",
    };
    let past = calltrail::qm::link::file_link(&app.base, &link_key, q1_target, "wav", Utc::now().timestamp() - 1);
    assert_eq!(app.http.get(&past).send().await.unwrap().status(), 410);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=recording_download").await;
    let by_qm: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_login"] == "(QM system)")
        .collect();
    assert_eq!(by_qm.len(), 4, "three downloads and the range: {audit}");
    assert!(by_qm.iter().all(|e| e["detail"]["use"] == "qm"));

    // The same calls again: nothing is sent twice.
    let again = start(&app, &owner, the_day.clone()).await;
    let job = finished(&app, &owner, &again).await;
    assert_eq!(counts(&job), [4, 0, 3, 1, 0, 0], "{job}");
    assert!(outcome_of(&job, &ids["q1"])["error"]
        .as_str()
        .unwrap()
        .starts_with(&format!("sent in export {id} at ")));
    assert_eq!(qm.taken_ids().len(), 3);

    // A renamed operator is imported again before their next call.
    let ivanova = app.user_id(&owner, "ivanova").await;
    let (status, _) = app
        .send(
            "PUT",
            &owner,
            &format!("/api/v1/users/{ivanova}"),
            Some(json!({"name": "Анна Смирнова"})),
        )
        .await;
    assert_eq!(status, 200);
    app.ingest_ok(&owner, json!([answered("q5", Some(("ivanova", "Анна Иванова")), 40)]))
        .await;
    app.upload(&owner, "q5", "audio/wav", wav_bytes(5_000, 5)).await;
    let q5 = app.call_id(&owner, "q5").await;
    let job = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [q5]})).await).await;
    assert_eq!(counts(&job), [1, 1, 0, 0, 0, 0], "{job}");
    let users: Vec<Value> = qm.seen.lock().unwrap().users.clone();
    assert_eq!(users.len(), 3);
    assert_eq!(
        users[2],
        json!({"id": "ivanova", "lastName": "Смирнова", "firstName": "Анна", "roleId": 2})
    );

    // Another QM system (a new address): it knows none of the operators, so they are imported
    // there before their calls; calls the first one took stay delivered.
    let (qm2, base2) = FakeQm::start(Tz::Europe__Moscow).await;
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/qm",
            Some(json!({"base_url": base2})),
        )
        .await;
    assert_eq!(
        (status, &body["connected"]),
        (200, &json!(true)),
        "checked again: {body}"
    );
    app.ingest_ok(&owner, json!([answered("q6", Some(("ivanova", "Анна Смирнова")), 45)]))
        .await;
    app.upload(&owner, "q6", "audio/wav", wav_bytes(5_000, 6)).await;
    let q6 = app.call_id(&owner, "q6").await;
    let job = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [q5, q6]})).await).await;
    assert_eq!(counts(&job), [2, 1, 1, 0, 0, 0], "{job}");
    assert_eq!(qm2.taken_ids(), vec!["q6"]);
    assert_eq!(
        qm2.seen.lock().unwrap().users.len(),
        1,
        "ivanova imported into the new system"
    );

    // Listed newest first, with the audit trail of who exported what.
    let (_, list) = app.get(&manager, "/api/v1/integrations/qm/exports").await;
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[3], id);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=qm_export").await;
    let jobs: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"]["job"])
        .collect();
    assert_eq!(jobs.len(), 4);
    assert_eq!(jobs[3], &json!(id));
    assert_eq!(audit["items"][3]["actor_login"], "manager");

    // Retention forgets what the QM exports said of the calls it deletes (a later call may get
    // a deleted call's id).
    let qm_rows = || async {
        app.store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT (SELECT COUNT(*) FROM qm_deliveries) + (SELECT COUNT(*) FROM qm_export_calls) \
                     + (SELECT COUNT(*) FROM qm_export_failures)",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .await
            .unwrap()
    };
    assert!(qm_rows().await > 0);
    let (status, _) = app
        .send("PUT", &owner, "/api/v1/settings", Some(json!({"keep_calls_days": 1})))
        .await;
    assert_eq!(status, 200);
    for _ in 0..500 {
        if qm_rows().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(qm_rows().await, 0);
    let (_, page) = app
        .get(&owner, "/api/v1/calls?tz=UTC&from=2026-11-01&to=2026-12-01")
        .await;
    assert_eq!(page["total"], 0, "the calls themselves are gone");
    app.stop().await;
}

#[tokio::test]
async fn failures_are_retried_kept_with_their_correlation_ids_and_sent_again_only_by_a_rerun() {
    let (qm, _, app, owner) = connected_app("qm-retries", |c| c.qm.timeout_ms = 1_000).await;
    let exts = ["r1", "r2", "r3", "r4", "r5", "r6"];
    let calls: Vec<Value> = exts
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, i as u32))
        .collect();
    app.ingest_ok(&owner, Value::Array(calls)).await;
    let mut ids = vec![];
    for (i, ext) in exts.iter().enumerate() {
        app.upload(&owner, ext, "audio/wav", wav_bytes(2_000, i as u8)).await;
        ids.push(app.call_id(&owner, ext).await);
    }
    qm.fail(
        "r1",
        &[Fault::Status(500, "corr-500-a"), Fault::Status(502, "corr-502-b")],
    );
    // Throttled three times (the first asking for a second's rest): not the call's attempts.
    qm.fail("r2", &[Fault::Throttle(1), Fault::Throttle(0), Fault::Throttle(0)]);
    qm.fail("r3", &[Fault::Hang(3_000)]);
    qm.fail("r4", &[Fault::Status(400, "corr-400")]);
    qm.fail(
        "r5",
        &[
            Fault::Status(503, "c1"),
            Fault::Status(503, "c2"),
            Fault::Status(503, "c3"),
        ],
    );

    let id = start(&app, &owner, json!({"call_ids": ids})).await;
    let job = finished(&app, &owner, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(counts(&job), [6, 4, 0, 0, 2, 0], "{job}");
    // r1: two failures kept with their statuses and correlation ids, then taken.
    let r1 = outcome_of(&job, &ids[0]);
    assert_eq!(
        (&r1["outcome"], &r1["attempts"], &r1["status"]),
        (&json!("sent"), &json!(3), &json!(200))
    );
    let failures: Vec<(Value, Value)> = r1["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["status"].clone(), f["correlation_id"].clone()))
        .collect();
    assert_eq!(
        failures,
        vec![(json!(500), json!("corr-500-a")), (json!(502), json!("corr-502-b"))]
    );
    // With a doubling delay: 40 ms, then 80 ms.
    let times = qm.requests_for("r1");
    assert_eq!(times.iter().map(|t| t.1).collect::<Vec<_>>(), vec![500, 502, 200]);
    assert!((times[1].0 - times[0].0) >= Duration::from_millis(40), "{times:?}");
    assert!((times[2].0 - times[1].0) >= Duration::from_millis(80), "{times:?}");
    // r2: three 429s do not use up its three attempts; the job rested as long as asked
    // before its next request, of any call.
    let r2 = outcome_of(&job, &ids[1]);
    assert_eq!((&r2["outcome"], &r2["attempts"]), (&json!("sent"), &json!(4)), "{r2}");
    let statuses: Vec<&Value> = r2["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["status"])
        .collect();
    assert_eq!(statuses, vec![&json!(429), &json!(429), &json!(429)]);
    {
        let seen = qm.seen.lock().unwrap();
        let first = seen.requests.iter().position(|r| r.2.as_deref() == Some("r2")).unwrap();
        let rest = seen.requests[first + 1].0 - seen.requests[first].0;
        assert!(rest >= Duration::from_millis(1_000), "held back {rest:?}");
    }
    // r3 timed out once, then taken.
    let r3 = outcome_of(&job, &ids[2]);
    assert_eq!((&r3["outcome"], &r3["attempts"]), (&json!("sent"), &json!(2)), "{r3}");
    assert_eq!(r3["failures"][0]["status"], Value::Null, "{r3}");
    assert!(outcome_of(&job, &ids[2])["failures"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no answer in time"));
    // r4 refused for good at once (400 is not retried); r5 gave up after three 503s.
    let r4 = outcome_of(&job, &ids[3]);
    assert_eq!(
        (&r4["outcome"], &r4["attempts"], &r4["status"], &r4["correlation_id"]),
        (&json!("failed"), &json!(1), &json!(400), &json!("corr-400"))
    );
    assert!(r4["error"].as_str().unwrap().contains("scripted 400"), "{r4}");
    let r5 = outcome_of(&job, &ids[4]);
    assert_eq!(
        (&r5["outcome"], &r5["attempts"], &r5["correlation_id"]),
        (&json!("failed"), &json!(3), &json!("c3"))
    );
    assert!(
        r5["error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 3 attempts: 503"),
        "{r5}"
    );
    assert_eq!(r5["failures"].as_array().unwrap().len(), 3);
    // Only the failed calls, on request.
    let (_, only) = app
        .get(&owner, &format!("/api/v1/integrations/qm/exports/{id}?outcome=failed"))
        .await;
    let failed: Vec<&str> = only["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![ids[3].as_str(), ids[4].as_str()]);
    let (status, body) = app
        .get(&owner, &format!("/api/v1/integrations/qm/exports/{id}?outcome=lost"))
        .await;
    assert_eq!((status, error_field(&body)), (400, "outcome"));

    // A re-run sends exactly what failed, once.
    let (status, rerun) = ask_rerun(&app, &owner, &id).await;
    assert_eq!(status, 201, "{rerun}");
    assert_eq!(rerun["rerun_of"], json!(id));
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [2, 2, 0, 0, 0, 0], "{rerun}");
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec!["r1", "r2", "r3", "r4", "r5", "r6"], "each once");
    let (status, body) = ask_rerun(&app, &owner, &id).await;
    assert_eq!(status, 201, "the first job's failures are now already sent: {body}");
    let third = finished(&app, &owner, body["id"].as_str().unwrap()).await;
    assert_eq!(counts(&third), [2, 0, 2, 0, 0, 0], "{third}");
    let (status, body) = ask_rerun(&app, &owner, third["id"].as_str().unwrap()).await;
    assert_eq!(status, 409, "nothing failed: {body}");

    // A key the QM system no longer accepts stops the job, saying so; nothing is lost.
    qm.seen.lock().unwrap().key = "rotated".into();
    app.ingest_ok(&owner, json!([answered("r7", None, 50), answered("r8", None, 51)]))
        .await;
    let r7 = app.call_id(&owner, "r7").await;
    let r8 = app.call_id(&owner, "r8").await;
    app.upload(&owner, "r7", "audio/wav", wav_bytes(2_000, 7)).await;
    app.upload(&owner, "r8", "audio/wav", wav_bytes(2_000, 8)).await;
    let stopped = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [r7, r8]})).await).await;
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert!(
        stopped["error"].as_str().unwrap().contains("refused the API key (401)"),
        "{stopped}"
    );
    assert_eq!(counts(&stopped), [2, 0, 0, 0, 2, 0], "{stopped}");
    assert!(outcome_of(&stopped, &r8)["error"]
        .as_str()
        .unwrap()
        .starts_with("not sent: the QM system refused"));
    qm.seen.lock().unwrap().key = KEY.into();
    let (_, rerun) = ask_rerun(&app, &owner, stopped["id"].as_str().unwrap()).await;
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [2, 2, 0, 0, 0, 0], "{rerun}");
    app.stop().await;
}

#[tokio::test]
async fn a_restart_mid_job_sends_every_call_exactly_once() {
    let (qm, key, app, owner) = connected_app("qm-restart", |_| {}).await;
    qm.seen.lock().unwrap().delay_ms = 60;
    let dir = app.dir.clone();
    let exts: Vec<String> = (0..12).map(|i| format!("s{i:02}")).collect();
    let calls: Vec<Value> = exts
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, i as u32))
        .collect();
    app.ingest_ok(&owner, Value::Array(calls)).await;
    for (i, ext) in exts.iter().enumerate() {
        app.upload(&owner, ext, "audio/wav", wav_bytes(1_000, i as u8)).await;
    }
    let id = start(&app, &owner, json!({"filters": {}})).await;
    for _ in 0..500 {
        if qm.taken_ids().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Stopped mid-job: the request that is out is let finish and recorded.
    app.stop().await;
    let sent_before = qm.taken_ids().len();
    assert!((4..12).contains(&sent_before), "{sent_before}");
    // As if the server had died with the next call's request out: it may have been taken, so it
    // is not sent again on its own.
    let store = calltrail::store::Store::open(&dir).unwrap();
    let job: i64 = id.parse().unwrap();
    let unsure: i64 = store
        .write(move |conn, _| {
            Ok(conn.query_row(
                "UPDATE qm_export_calls SET outcome = 'sending' WHERE export_id = ?1 AND call_id = \
                 (SELECT MIN(call_id) FROM qm_export_calls WHERE export_id = ?1 AND outcome = 'pending') RETURNING call_id",
                [job],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    store.shutdown();
    drop(store);

    let app = TestApp::start_configured(dir, |c| fast(c, &key)).await;
    let done = finished(&app, &owner, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(counts(&done), [12, 11, 0, 0, 1, 0], "{done}");
    let interrupted = outcome_of(&done, &unsure.to_string());
    assert_eq!(interrupted["outcome"], "failed");
    assert!(
        interrupted["error"].as_str().unwrap().starts_with("interrupted:"),
        "{interrupted}"
    );
    assert_eq!(qm.taken_ids().len(), 11);
    let (_, rerun) = ask_rerun(&app, &owner, &id).await;
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [1, 1, 0, 0, 0, 0], "{rerun}");
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, exts, "every call exactly once");
    app.stop().await;
}

/// Ingests calls with these external ids (a minute apart from `minute`), each with a recording;
/// their ids.
async fn recorded_calls(app: &TestApp, owner: &str, exts: &[&str], minute: u32) -> Vec<String> {
    let calls: Vec<Value> = exts
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, minute + i as u32))
        .collect();
    app.ingest_ok(owner, Value::Array(calls)).await;
    let mut ids = vec![];
    for (i, ext) in exts.iter().enumerate() {
        assert_eq!(
            app.upload(owner, ext, "audio/wav", wav_bytes(1_000, i as u8)).await.0,
            200
        );
        ids.push(app.call_id(owner, ext).await);
    }
    ids
}

/// Waits until the fake QM system has taken at least `n` of these calls.
async fn taken_at_least(qm: &FakeQm, exts: &[&str], n: usize) {
    for _ in 0..1_000 {
        if qm.taken_ids().iter().filter(|id| exts.contains(&id.as_str())).count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the QM system did not take {n} of {exts:?}");
}

#[tokio::test]
async fn jobs_take_turns_stop_when_cancelled_or_switched_off_and_a_rerun_finishes_them() {
    let (qm, _, app, owner) = connected_app("qm-turns", |c| c.qm.batch_size = 2).await;
    qm.seen.lock().unwrap().delay_ms = 40;

    // Two jobs: the second does not wait for the first to finish.
    let a = ["a1", "a2", "a3", "a4", "a5", "a6"];
    let b = ["b1", "b2"];
    let a_ids = recorded_calls(&app, &owner, &a, 0).await;
    let b_ids = recorded_calls(&app, &owner, &b, 10).await;
    let first = start(&app, &owner, json!({"call_ids": a_ids})).await;
    let second = start(&app, &owner, json!({"call_ids": b_ids})).await;
    assert_eq!(counts(&finished(&app, &owner, &first).await), [6, 6, 0, 0, 0, 0]);
    assert_eq!(counts(&finished(&app, &owner, &second).await), [2, 2, 0, 0, 0, 0]);
    let order = qm.taken_ids();
    let at = |id: &str| order.iter().position(|x| x == id).unwrap();
    assert!(
        at("b2") < at("a5"),
        "the second job's batch went between the first's: {order:?}"
    );

    // Cancelled part way: the calls not yet sent stay for a re-run.
    let c = ["c1", "c2", "c3", "c4", "c5", "c6"];
    let c_ids = recorded_calls(&app, &owner, &c, 20).await;
    let cancelled = start(&app, &owner, json!({"call_ids": c_ids})).await;
    taken_at_least(&qm, &c, 1).await;
    let (status, job) = app
        .send(
            "DELETE",
            &owner,
            &format!("/api/v1/integrations/qm/exports/{cancelled}"),
            None,
        )
        .await;
    assert_eq!((status, &job["state"]), (200, &json!("cancelled")), "{job}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let job = finished(&app, &owner, &cancelled).await;
    let [total, sent, _, _, failed, pending] = counts(&job);
    assert_eq!((total, failed, sent + pending), (6, 0, 6), "{job}");
    assert!(pending >= 2, "stopped part way: {job}");
    let taken_c = qm.taken_ids().iter().filter(|id| c.contains(&id.as_str())).count() as i64;
    assert_eq!(taken_c, sent, "nothing more was sent after the cancel");
    let (_, rerun) = ask_rerun(&app, &owner, &cancelled).await;
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [pending, pending, 0, 0, 0, 0], "{rerun}");

    // Switched off part way: the job stops saying why; switched on again, a re-run finishes it.
    let d = ["d1", "d2", "d3", "d4", "d5", "d6"];
    let d_ids = recorded_calls(&app, &owner, &d, 30).await;
    let stopped = start(&app, &owner, json!({"call_ids": d_ids})).await;
    taken_at_least(&qm, &d, 1).await;
    let (status, _) = app
        .send("PUT", &owner, "/api/v1/integrations/qm", Some(json!({"active": false})))
        .await;
    assert_eq!(status, 200);
    let job = finished(&app, &owner, &stopped).await;
    assert_eq!(
        (&job["state"], &job["error"]),
        (&json!("failed"), &json!("the QM integration was deactivated"))
    );
    let [_, sent, _, _, failed, pending] = counts(&job);
    assert_eq!((sent + failed, pending), (6, 0), "{job}");
    assert!(failed >= 1, "{job}");
    let (_, only) = app
        .get(
            &owner,
            &format!("/api/v1/integrations/qm/exports/{stopped}?outcome=failed"),
        )
        .await;
    assert!(only["calls"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["error"] == "not sent: the QM integration was deactivated"));
    let (status, _) = ask_rerun(&app, &owner, &stopped).await;
    assert_eq!(status, 409, "not while switched off");
    let (status, _) = app
        .send("PUT", &owner, "/api/v1/integrations/qm", Some(json!({"active": true})))
        .await;
    assert_eq!(status, 200);
    let (_, rerun) = ask_rerun(&app, &owner, &stopped).await;
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [failed, failed, 0, 0, 0, 0], "{rerun}");
    let mut taken = qm.taken_ids();
    taken.sort();
    let mut all: Vec<&str> = [a.as_slice(), &b, &c, &d].concat();
    all.sort();
    assert_eq!(taken, all, "every call exactly once");
    app.stop().await;
}

/// `calltrail serve` as a process of its own, to be killed.
struct Process {
    child: std::process::Child,
    base: String,
    // Kept open: a server whose stdout is closed fails when it prints.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Process {
    fn serve(data: &str, key: &str) -> Process {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data",
                data,
                "--qm-requests-per-second",
                "1000",
            ])
            .args(["--qm-batch-pause-seconds", "0", "--qm-timeout-seconds", "60"])
            .env("CALLTRAIL_SECRET_KEY", key)
            .env("CALLTRAIL_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn calltrail serve");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        stdout.read_line(&mut line).expect("the listening line");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Process {
            child,
            base,
            _stdout: stdout,
        }
    }

    /// As a power cut would: no shutdown, nothing finished.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

#[tokio::test]
async fn a_server_killed_mid_request_reports_that_call_failed_and_never_sends_it_on_its_own() {
    let dir = temp_dir("qm-killed");
    let data = dir.to_str().unwrap().to_string();
    let (code, out, err) = crate::cli::calltrail(
        &["user", "add", "--login", "boss", "--role", "owner", "--data", &data],
        "correct horse battery\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, token, err) = crate::cli::calltrail(&["token", "create", "--login", "boss", "--data", &data], "");
    assert_eq!(code, 0, "{err}");
    let owner = token.trim().to_string();
    let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let (qm, qm_base) = FakeQm::start(Tz::UTC).await;
    // The second call's request is never answered while the first server lives.
    qm.fail("k2", &[Fault::Hang(60_000)]);

    let server = Process::serve(&data, key);
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, base: &str, path: &str, body: Option<Value>| {
        let mut req = http.request(method, format!("{base}{path}")).bearer_auth(&owner);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };
    let calls: Vec<Value> = ["k1", "k2", "k3"]
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, i as u32))
        .collect();
    let r = send(
        reqwest::Method::POST,
        &server.base,
        "/api/v1/ingest/calls",
        Some(Value::Array(calls)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    for (i, ext) in ["k1", "k2", "k3"].iter().enumerate() {
        let r = http
            .put(format!("{}/api/v1/ingest/calls/{ext}/recording", server.base))
            .bearer_auth(&owner)
            .header("content-type", "audio/wav")
            .body(wav_bytes(1_000, i as u8))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let change = json!({"base_url": qm_base, "api_key": KEY, "active": true});
    let r = send(
        reqwest::Method::PUT,
        &server.base,
        "/api/v1/integrations/qm",
        Some(change),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::POST,
        &server.base,
        "/api/v1/integrations/qm/exports",
        Some(json!({"filters": {}})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    // The API shows the call whose request is out as `sending`.
    let path = format!("/api/v1/integrations/qm/exports/{id}?outcome=sending");
    let mut out = Value::Null;
    for _ in 0..1_000 {
        out = send(reqwest::Method::GET, &server.base, &path, None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if out["calls"][0]["external_id"] == "k2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(out["calls"][0]["external_id"], "k2", "{out}");
    server.kill();

    let server = Process::serve(&data, key);
    let path = format!("/api/v1/integrations/qm/exports/{id}");
    let mut job = Value::Null;
    for _ in 0..1_000 {
        job = send(reqwest::Method::GET, &server.base, &path, None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counts(&job), [3, 2, 0, 0, 1, 0], "{job}");
    let k2 = job["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_id"] == "k2")
        .unwrap();
    assert_eq!(k2["outcome"], "failed");
    assert!(k2["error"].as_str().unwrap().starts_with("interrupted:"), "{k2}");
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec!["k1", "k3"], "k2 is not sent again on its own");
    // Only a re-run sends it (the QM system answers it now).
    let r = send(reqwest::Method::POST, &server.base, &format!("{path}/rerun"), None)
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for _ in 0..1_000 {
        if qm.taken_ids().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec!["k1", "k2", "k3"]);
    server.kill();
}
