//! Jobs across stops, kills, cancels and switch-offs, and jobs side by side.

use std::time::Duration;

use chrono_tz::Tz;
use serde_json::{json, Value};

use super::fake::Fault;
use super::*;
use crate::common::{temp_dir, wav_bytes, TestApp};

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
    let store = crate::common::open_store(&dir);
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

    // Cancelled part way: the calls not yet sent stay for a re-run. (Slower calls, so that the
    // cancel surely lands part way.)
    qm.seen.lock().unwrap().delay_ms = 150;
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
    // The request that was out (if one was) settles; after that nothing more reaches the QM
    // system, however long one waits.
    let taken_of_c = || qm.taken_ids().iter().filter(|id| c.contains(&id.as_str())).count() as i64;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let settled = taken_of_c();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(taken_of_c(), settled, "nothing more was sent after the cancel");
    let job = finished(&app, &owner, &cancelled).await;
    let [total, sent, _, _, failed, pending] = counts(&job);
    assert_eq!((total, failed, sent + pending, sent), (6, 0, 6, settled), "{job}");
    assert!(pending >= 2, "stopped part way: {job}");
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

/// Starts an export of every call on a server running as a process of its own; its id.
async fn started_on(http: &reqwest::Client, base: &str, token: &str) -> String {
    let r = http
        .post(format!("{base}/api/v1/integrations/qm/exports"))
        .bearer_auth(token)
        .json(&json!({"filters": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

/// Waits until a job is done on a server running as a process of its own; the job and its calls.
async fn done_on(http: &reqwest::Client, base: &str, token: &str, id: &str) -> Value {
    let url = format!("{base}/api/v1/integrations/qm/exports/{id}");
    for _ in 0..1_000 {
        let job: Value = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] == "done" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("export {id} did not finish");
}

fn by_external<'a>(job: &'a Value, external_id: &str) -> &'a Value {
    job["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_id"] == external_id)
        .unwrap_or_else(|| panic!("{external_id} in {job}"))
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
        let mut child = crate::common::binary(&[
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
    let id = started_on(&http, &server.base, &owner).await;
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
    let job = done_on(&http, &server.base, &owner, &id).await;
    assert_eq!(counts(&job), [3, 2, 0, 0, 1, 0], "{job}");
    let k2 = by_external(&job, "k2");
    assert_eq!(k2["outcome"], "failed");
    assert!(k2["error"].as_str().unwrap().starts_with("interrupted:"), "{k2}");
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec!["k1", "k3"], "k2 is not sent again on its own");
    // Nor by another export of the same calls: in doubt until a re-run of that export.
    let other = started_on(&http, &server.base, &owner).await;
    let again = done_on(&http, &server.base, &owner, &other).await;
    assert_eq!(counts(&again), [3, 0, 2, 0, 1, 0], "{again}");
    let doubt = by_external(&again, "k2");
    assert!(
        doubt["error"]
            .as_str()
            .unwrap()
            .starts_with(&format!("in doubt: export {id} was interrupted")),
        "{doubt}"
    );
    assert_eq!(qm.taken_ids().len(), 2);
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

/// Two instances on one PostgreSQL database (recordings in shared object storage, so that the QM
/// system can download a file from either): one job, in batches of three that either instance
/// may take turns on — every call is sent once, none twice.
#[tokio::test]
async fn two_instances_send_each_call_of_a_job_once() {
    let moto = crate::common::Moto::start();
    let files = moto.bucket("qm-shared", "").await;
    let db = tokio::task::spawn_blocking(|| crate::schema::Scratch::create().0)
        .await
        .unwrap();
    let (qm, base) = super::fake::FakeQm::start(Tz::Europe__Moscow).await;
    qm.seen.lock().unwrap().delay_ms = 15;
    let key = calltrail::secrets::SealingKey::random();
    let instance = |name: &str| {
        let (files, key, url) = (files.clone(), key.clone(), db.url());
        let dir = temp_dir(name);
        async move {
            let database = calltrail::store::Database::Postgres { url, read_url: None };
            TestApp::start_on(crate::common::open_database(database), dir, move |c| {
                fast(c, &key);
                c.qm.batch_size = 3;
                c.recordings.storage = files;
            })
            .await
        }
    };
    let (a, b) = (instance("qm-two-a").await, instance("qm-two-b").await);
    let owner = a.owner().await;
    connected(&a, &owner, &base).await;
    let exts: Vec<String> = (0..18).map(|i| format!("t{i:02}")).collect();
    let calls: Vec<Value> = exts
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, i as u32))
        .collect();
    b.ingest_ok(&owner, Value::Array(calls)).await;
    for (i, ext) in exts.iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        let (status, body) = app.upload(&owner, ext, "audio/wav", wav_bytes(1_000, i as u8)).await;
        assert_eq!(status, 200, "{body}");
    }
    let id = start(&a, &owner, json!({"filters": {}})).await;
    let done = finished(&b, &owner, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(counts(&done), [18, 18, 0, 0, 0, 0], "{done}");
    let mut taken = qm.taken_ids();
    assert_eq!(taken.len(), 18, "{taken:?}");
    taken.sort();
    taken.dedup();
    assert_eq!(taken.len(), 18, "a call was taken twice");
    for ext in &exts {
        assert_eq!(qm.requests_for(ext).len(), 1, "{ext} was requested more than once");
    }
    a.stop().await;
    b.stop().await;
    drop(db);
}
