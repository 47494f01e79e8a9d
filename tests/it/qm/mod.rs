//! Handing calls to the QM system, against a QM import API on loopback (`fake.rs`) that
//! enforces the documented rules (Basic auth with the key, required fields, `id` ≤ 32,
//! `fileLink` ≤ 2000 and downloadable — it downloads the file —, dates without offset, not in
//! the future, end ≥ start, operators imported before their calls) and that can be told to
//! fail, throttle or hang for a given call.

mod delivery;
mod fake;
mod jobs;
mod settings;

use std::time::Duration;

use calltrail::secrets::SealingKey;
use chrono_tz::Tz;
use serde_json::{json, Value};

use crate::common::{temp_dir, wav_bytes, TestApp};
use fake::{FakeQm, KEY};

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
