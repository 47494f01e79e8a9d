//! Recordings: uploads, byte ranges, who may play or download, fetching from the telephony's
//! URLs with retries, a file larger than memory through the real binary, and S3 storage against
//! a real S3-compatible server (moto) on loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use bytes::Bytes;
use calltrail::domain::{Role, TokenScope};
use calltrail::recording::storage::{S3Config, Storage, StorageConfig};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::{error_field, temp_dir, wav_bytes, TestApp};

fn call(external_id: &str, operator: &str, recording_url: Option<&str>) -> Value {
    let mut c = json!({
        "external_id": external_id, "kind": "incoming", "from": "+79161230000", "to": "+74950000001",
        "scenario_started_at": "2026-11-10T09:00:00Z", "answered_at": "2026-11-10T09:00:10Z",
        "ended_at": "2026-11-10T09:02:00Z", "result": "answered", "operator": operator,
    });
    if let Some(url) = recording_url {
        c["recording_url"] = json!(url);
    }
    c
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A GET with a Range header; returns status, headers and body.
async fn ranged(
    app: &TestApp,
    token: &str,
    path: &str,
    range: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut req = app.http.get(format!("{}{path}", app.base)).bearer_auth(token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn header_of<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The number of files under the data folder's recordings (temporary parts included).
fn files_under(dir: &std::path::Path) -> usize {
    fn walk(p: &std::path::Path, n: &mut usize) {
        if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, n);
                } else {
                    *n += 1;
                }
            }
        }
    }
    let mut n = 0;
    walk(&dir.join("recordings"), &mut n);
    n
}

async fn audit_of(app: &TestApp, owner: &str, action: &str) -> Vec<Value> {
    let (status, body) = app
        .get(owner, &format!("/api/v1/audit?action={action}&limit=500"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn uploads_and_byte_ranges() {
    let app = TestApp::start("rec-ranges").await;
    let owner = app.owner().await;
    let feeder = app.token("default", "pbx", Role::Operator, TokenScope::Ingest).await;
    // The recording arrives before its call: kept, and attached when the call comes.
    let file = wav_bytes(1_000_000, 9);
    let (status, up) = app.upload(&feeder, "r1", "audio/x-wav", file.clone()).await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["call_id"], Value::Null);
    assert_eq!(up["content_type"], "audio/wav");
    assert_eq!(up["bytes"], 1_000_000);
    assert_eq!(up["sha256"], sha(&file));
    app.ingest_ok(&feeder, json!([call("r1", "ivanova", None)])).await;
    let id = app.call_id(&owner, "r1").await;
    let (_, listed) = app.get(&owner, "/api/v1/calls").await;
    assert_eq!(listed["items"][0]["has_recording"], true);
    let path = format!("/api/v1/calls/{id}/recording");

    // The whole file.
    let (status, h, body) = ranged(&app, &owner, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(body, file);
    assert_eq!(header_of(&h, "content-type"), "audio/wav");
    assert_eq!(header_of(&h, "content-length"), "1000000");
    assert_eq!(header_of(&h, "accept-ranges"), "bytes");
    assert_eq!(header_of(&h, "content-disposition"), "inline");
    // First bytes, the middle, a suffix, an open end, an end past the file.
    let cases: [(&str, std::ops::Range<usize>); 5] = [
        ("bytes=0-99", 0..100),
        ("bytes=400000-400999", 400_000..401_000),
        ("bytes=-500", 999_500..1_000_000),
        ("bytes=999990-", 999_990..1_000_000),
        ("bytes=999000-2000000", 999_000..1_000_000),
    ];
    for (range, want) in cases.clone() {
        let (status, h, body) = ranged(&app, &owner, &path, Some(range)).await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, file[want.clone()], "{range}");
        assert_eq!(
            header_of(&h, "content-range"),
            format!("bytes {}-{}/1000000", want.start, want.end - 1),
            "{range}"
        );
        assert_eq!(header_of(&h, "content-length"), (want.end - want.start).to_string());
    }
    // Past the end: 416 with the size; nothing audited for it.
    let (status, h, body) = ranged(&app, &owner, &path, Some("bytes=1000000-")).await;
    assert_eq!(status, 416, "{}", String::from_utf8_lossy(&body));
    assert_eq!(header_of(&h, "content-range"), "bytes */1000000");
    // A header that is not a byte range is ignored (RFC 9110): the whole file.
    let (status, _, body) = ranged(&app, &owner, &path, Some("bytes=50-10")).await;
    assert_eq!((status, body.len()), (200, 1_000_000));
    // If-Range with another file's tag: the whole file, not a piece of a different one.
    let r = app
        .http
        .get(format!("{}{path}", app.base))
        .bearer_auth(&owner)
        .header("range", "bytes=0-9")
        .header("if-range", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // As a file to save.
    let (status, h, _) = ranged(&app, &owner, &format!("{path}?download=1"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        header_of(&h, "content-disposition"),
        format!("attachment; filename=\"call-{id}.wav\"")
    );
    let (status, body) = app.get(&owner, &format!("{path}?download=yes")).await;
    assert_eq!((status, error_field(&body)), (400, "download"));

    // Every answer with bytes is in the audit log, with its range: 1 + 5 + 1 + 1 + 1.
    let entries = audit_of(&app, &owner, "recording_download").await;
    assert_eq!(entries.len(), 9, "{entries:?}");
    let ranges: Vec<Value> = entries.iter().rev().map(|e| e["detail"]["range"].clone()).collect();
    assert_eq!(ranges[0], Value::Null);
    assert_eq!(ranges[1], "0-99");
    assert_eq!(ranges[2], "400000-400999");
    assert_eq!(ranges[3], "999500-999999");
    assert!(entries
        .iter()
        .all(|e| e["target"] == id.as_str() && e["actor_login"] == "owner"));
    assert_eq!(entries[0]["detail"]["use"], "download");

    // Not audio, too large, empty: refused, and nothing is left in storage.
    let before = files_under(&app.dir);
    let (status, body) = app
        .upload(&feeder, "r1", "text/html", b"<html>hi</html>".to_vec())
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = app
        .upload(
            &feeder,
            "r1",
            "application/octet-stream",
            b"<html>not audio at all</html>".to_vec(),
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, _) = app.upload(&feeder, "r1", "audio/wav", vec![]).await;
    assert_eq!(status, 415);
    let (status, body) = app.upload(&feeder, &"x".repeat(129), "audio/wav", file.clone()).await;
    assert_eq!((status, error_field(&body)), (400, "external_id"));
    assert_eq!(files_under(&app.dir), before);
    let (_, h, body) = ranged(&app, &owner, &path, None).await;
    assert_eq!((body.len(), header_of(&h, "content-type")), (1_000_000, "audio/wav"));

    // Replaced by a second upload: the new file plays; the old one is deleted from storage.
    let second = wav_bytes(5_000, 4);
    let (status, up) = app.upload(&feeder, "r1", "audio/wav", second.clone()).await;
    assert_eq!((status, up["call_id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(ranged(&app, &owner, &path, None).await.2, second);
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = files_under(&app.dir);
        if left == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left, before, "the replaced file is deleted, the new one kept");
    let (_, detail) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    assert_eq!(detail["details"]["recording"]["state"], "stored");
    assert_eq!(detail["details"]["recording"]["bytes"], 5_000);
    assert_eq!(detail["details"]["recording"]["url"], path);
    let stored: Vec<&Value> = detail["details"]["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "recording_stored")
        .collect();
    assert_eq!(stored.len(), 2, "{detail}");
    assert_eq!(
        stored[1]["source"],
        format!("pbx (token {})", token_id(&app, "pbx").await)
    );
    assert_eq!(audit_of(&app, &owner, "recording_uploaded").await.len(), 2);

    // A call without a recording, and one that does not exist.
    app.ingest_ok(&owner, json!([call("r2", "ivanova", None)])).await;
    let other = app.call_id(&owner, "r2").await;
    assert_eq!(
        app.get(&owner, &format!("/api/v1/calls/{other}/recording")).await.0,
        404
    );
    assert_eq!(app.get(&owner, "/api/v1/calls/999999/recording").await.0, 404);
    // An ingest token may upload but not listen.
    assert_eq!(app.get(&feeder, &path).await.0, 403);
    app.stop().await;
}

async fn token_id(app: &TestApp, login: &'static str) -> i64 {
    app.store
        .read(move |conn| {
            Ok(conn.query_row(
                "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.login = ?",
                [login],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn restricted_roles_play_or_download_as_the_account_allows() {
    let app = TestApp::start("rec-restricted").await;
    let owner = app.owner().await;
    let manager = app.token("default", "boss", Role::Manager, TokenScope::Full).await;
    let operator = app.token("default", "ivanova", Role::Operator, TokenScope::Full).await;
    let other = app.token("default", "petrov", Role::Operator, TokenScope::Full).await;
    app.send(
        "PUT",
        &owner,
        "/api/v1/settings",
        Some(json!({"call_history_access": true})),
    )
    .await;
    app.ingest_ok(&owner, json!([call("mine", "ivanova", None)])).await;
    let file = wav_bytes(3_000, 5);
    assert_eq!(app.upload(&owner, "mine", "audio/wav", file.clone()).await.0, 200);
    let id = app.call_id(&owner, "mine").await;
    let play = format!("/api/v1/calls/{id}/recording");
    let download = format!("{play}?download=1");
    // (setting, operator plays, operator downloads); the manager always may; another operator
    // who does not see the call gets 404 where the setting lets them try.
    let table = [
        ("play", 200, 403),
        ("none", 403, 403),
        ("download", 200, 200),
        ("play", 200, 403),
    ];
    for (setting, plays, downloads) in table {
        let (status, body) = app
            .send(
                "PUT",
                &owner,
                "/api/v1/settings",
                Some(json!({"restricted_recordings": setting})),
            )
            .await;
        assert_eq!((status, body["restricted_recordings"].as_str()), (200, Some(setting)));
        assert_eq!(
            app.fetch(&operator, &play).await.status().as_u16(),
            plays,
            "{setting} play"
        );
        assert_eq!(
            app.fetch(&operator, &download).await.status().as_u16(),
            downloads,
            "{setting} download"
        );
        assert_eq!(app.fetch(&manager, &download).await.status().as_u16(), 200, "{setting}");
        let (_, me) = app.get(&operator, "/api/v1/me").await;
        assert_eq!(me["permissions"]["recording_play"], plays == 200, "{setting}");
        assert_eq!(me["permissions"]["recording_download"], downloads == 200, "{setting}");
        let expected_other = if plays == 200 { 404 } else { 403 };
        assert_eq!(
            app.fetch(&other, &play).await.status().as_u16(),
            expected_other,
            "{setting}"
        );
    }
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/settings",
            Some(json!({"restricted_recordings": "stream"})),
        )
        .await;
    assert_eq!((status, error_field(&body)), (400, "restricted_recordings"));
    // Only the owner and administrators change it.
    let (status, _) = app
        .send(
            "PUT",
            &manager,
            "/api/v1/settings",
            Some(json!({"restricted_recordings": "none"})),
        )
        .await;
    assert_eq!(status, 403);
    let (_, settings) = app.get(&owner, "/api/v1/settings").await;
    assert_eq!(settings["restricted_recordings"], "play");
    app.stop().await;
}

/// A telephony file server on loopback: what each path answers, and how often it was asked.
#[derive(Clone, Default)]
struct Pbx {
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Pbx {
    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let me = me.clone();
            async move {
                let path = uri.path().to_string();
                let n = {
                    let mut hits = me.hits.lock().unwrap();
                    let n = hits.entry(path.clone()).or_insert(0);
                    *n += 1;
                    *n
                };
                let wav = |seed| ([(header::CONTENT_TYPE, "audio/wav")], wav_bytes(20_000, seed)).into_response();
                match path.as_str() {
                    "/ok.wav" => wav(1),
                    // Fails twice, then works.
                    "/flaky.wav" if n <= 2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                    "/flaky.wav" => wav(2),
                    "/throttled.wav" if n == 1 => StatusCode::TOO_MANY_REQUESTS.into_response(),
                    "/throttled.wav" => (
                        [(header::CONTENT_TYPE, "application/octet-stream")],
                        wav_bytes(10_000, 3),
                    )
                        .into_response(),
                    "/page.html" => ([(header::CONTENT_TYPE, "text/html")], "<html>login</html>").into_response(),
                    "/huge.wav" => ([(header::CONTENT_TYPE, "audio/wav")], wav_bytes(300_000, 4)).into_response(),
                    "/gone.wav" => StatusCode::FORBIDDEN.into_response(),
                    _ => StatusCode::NOT_FOUND.into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn recordings_are_fetched_from_urls_with_retries() {
    let pbx = Pbx::default();
    let base = pbx.start().await;
    let app = TestApp::start_configured(temp_dir("rec-fetch"), |c| {
        c.recordings.retry_base_ms = 100;
        c.recordings.fetch_attempts = 3;
        c.recordings.max_bytes = 100_000;
    })
    .await;
    let owner = app.owner().await;
    let cases = ["ok", "flaky", "throttled", "page", "huge", "gone", "missing"];
    let urls: BTreeMap<&str, String> = cases
        .iter()
        .map(|c| {
            let file = if *c == "page" {
                "page.html".to_string()
            } else {
                format!("{c}.wav")
            };
            (*c, format!("{base}/{file}"))
        })
        .collect();
    let batch: Vec<Value> = cases.iter().map(|c| call(c, "ivanova", Some(&urls[c]))).collect();
    app.ingest_ok(&owner, Value::Array(batch)).await;
    // (state, hits, sha of the stored file)
    let expected: BTreeMap<&str, (&str, usize, Option<Vec<u8>>)> = BTreeMap::from([
        ("ok", ("stored", 1, Some(wav_bytes(20_000, 1)))),
        ("flaky", ("stored", 3, Some(wav_bytes(20_000, 2)))),
        ("throttled", ("stored", 2, Some(wav_bytes(10_000, 3)))),
        ("page", ("failed", 1, None)),
        ("huge", ("failed", 1, None)),
        ("gone", ("failed", 1, None)),
        ("missing", ("failed", 3, None)),
    ]);
    let mut details = BTreeMap::new();
    for _ in 0..200 {
        details.clear();
        for c in cases {
            let id = app.call_id(&owner, c).await;
            let (_, d) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
            details.insert(c, (id, d));
        }
        if details
            .values()
            .all(|(_, d)| d["details"]["recording"]["state"] != "pending")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (c, (state, hits, file)) in &expected {
        let (id, d) = &details[c];
        let rec = &d["details"]["recording"];
        assert_eq!(rec["state"], *state, "{c}: {d}");
        assert_eq!(
            pbx.hits(&urls[c].replace(&base, "")),
            *hits,
            "{c}: how often it was asked"
        );
        assert_eq!(d["has_recording"], file.is_some(), "{c}");
        match file {
            Some(bytes) => {
                let (status, _, body) = ranged(&app, &owner, &format!("/api/v1/calls/{id}/recording"), None).await;
                assert_eq!((status, &body), (200, bytes), "{c}");
                assert_eq!(rec["error"], Value::Null, "{c}");
            }
            None => assert!(!rec["error"].as_str().unwrap_or("").is_empty(), "{c}: {rec}"),
        }
    }
    let error = |c: &str| {
        details[c].1["details"]["recording"]["error"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(error("page").contains("text/html"), "{}", error("page"));
    assert!(error("huge").contains("100000"), "{}", error("huge"));
    assert!(error("gone").contains("403"), "{}", error("gone"));
    assert!(error("missing").contains("404"), "{}", error("missing"));
    // The call log tells the story of the flaky one: asked, two retries, stored.
    let events: Vec<String> = details["flaky"].1["details"]["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        [
            "created",
            "recording_requested",
            "recording_retry",
            "recording_retry",
            "recording_stored"
        ]
    );

    // Sending the same URLs again changes nothing and fetches nothing; a new URL is fetched.
    let batch: Vec<Value> = cases.iter().map(|c| call(c, "ivanova", Some(&urls[c]))).collect();
    let answer = app.ingest_ok(&owner, Value::Array(batch)).await;
    assert_eq!(answer["unchanged"], 7);
    let moved = format!("{base}/ok.wav?v=2");
    app.ingest_ok(&owner, json!([call("page", "ivanova", Some(&moved))]))
        .await;
    let id = details["page"].0.clone();
    let mut state = Value::Null;
    for _ in 0..100 {
        let (_, d) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
        state = d["details"]["recording"]["state"].clone();
        if state == "stored" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "stored");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (c, (_, hits, _)) in &expected {
        let extra = usize::from(*c == "ok");
        assert_eq!(
            pbx.hits(&urls[c].replace(&base, "")),
            hits + extra,
            "{c} was not fetched again"
        );
    }
    // A recording URL must be a web address.
    let (status, body) = app
        .ingest(&owner, json!([call("bad", "x", Some("file:///etc/passwd"))]))
        .await;
    assert_eq!((status, error_field(&body)), (400, "recording_url"));
    app.stop().await;
}

/// The real binary, on its own data folder, printing where it listens.
struct Binary {
    child: std::process::Child,
    base: String,
    /// Kept open: a closed pipe would fail the server's next line of output.
    _stdout: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Binary {
    fn start(data: &str, extra: &[&str]) -> Binary {
        let mut child = crate::common::binary(&["serve", "--data", data, "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn calltrail");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("the server says where it listens").expect("line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Binary {
            child,
            base,
            _stdout: lines,
        }
    }

    /// The most memory the process has held at once, in bytes (Linux `VmHWM`).
    fn peak_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real binary's output, insisting that it succeeded.
fn run(args: &[&str], stdin: &str) -> String {
    let (code, out, err) = crate::cli::calltrail(args, stdin);
    assert_eq!(code, 0, "{err}");
    out
}

/// A deterministic body of `len` bytes that starts as a WAV file, produced chunk by chunk.
fn big_body(len: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    const CHUNK: u64 = 256 * 1024;
    let head = wav_bytes(CHUNK as usize, 7);
    futures_util::stream::iter(0..len.div_ceil(CHUNK)).map(move |i| {
        let size = CHUNK.min(len - i * CHUNK) as usize;
        let mut chunk = if i == 0 {
            head.clone()
        } else {
            vec![(i % 251) as u8; CHUNK as usize]
        };
        chunk.truncate(size);
        Ok(Bytes::from(chunk))
    })
}

#[tokio::test]
async fn a_recording_larger_than_memory_streams_through() {
    const SIZE: u64 = 300 * 1024 * 1024;
    let dir = temp_dir("rec-big");
    let data = dir.to_str().unwrap();
    run(
        &["user", "add", "--login", "boss", "--role", "owner", "--data", data],
        "correct horse battery\n",
    );
    let token = run(&["token", "create", "--login", "boss", "--data", data], "")
        .trim()
        .to_string();
    let server = Binary::start(data, &["--recording-max-mb", "400"]);
    let http = reqwest::Client::new();
    let mut expected = Sha256::new();
    let mut s = Box::pin(big_body(SIZE));
    while let Some(chunk) = s.next().await {
        expected.update(chunk.unwrap());
    }
    let expected: String = expected.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let r = http
        .put(format!("{}/api/v1/ingest/calls/big/recording", server.base))
        .bearer_auth(&token)
        .header("content-type", "audio/wav")
        .body(reqwest::Body::wrap_stream(big_body(SIZE)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let up: Value = r.json().await.unwrap();
    assert_eq!(
        (up["bytes"].as_u64(), up["sha256"].as_str()),
        (Some(SIZE), Some(expected.as_str()))
    );
    let r = http
        .post(format!("{}/api/v1/ingest/calls", server.base))
        .bearer_auth(&token)
        .json(&json!([call("big", "ivanova", None)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = http
        .get(format!("{}/api/v1/calls", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = page["items"][0]["id"].as_str().unwrap().to_string();
    // Download it whole, hashing as it comes.
    let r = http
        .get(format!("{}/api/v1/calls/{id}/recording", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.content_length(), Some(SIZE));
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut stream = r.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        n += chunk.len() as u64;
        got.update(&chunk);
    }
    let got: String = got.finalize().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!((n, got), (SIZE, expected));
    // Neither direction held the file: the server's peak memory stays far below its size.
    let peak = server.peak_memory();
    assert!(
        peak < 120 * 1024 * 1024,
        "peak memory {} MB for a {} MB file",
        peak >> 20,
        SIZE >> 20
    );
    // Over the limit: 413 before a byte is stored, from the declared length.
    let r = http
        .put(format!("{}/api/v1/ingest/calls/big2/recording", server.base))
        .bearer_auth(&token)
        .header("content-type", "audio/wav")
        .header("content-length", (500u64 * 1024 * 1024).to_string())
        .body(wav_bytes(1000, 1))
        .send()
        .await;
    // The server may answer before reading the (shorter) body, or the client may notice the
    // mismatch; either way nothing is stored.
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
    }
}

#[tokio::test]
async fn recordings_on_s3_compatible_storage() {
    let moto = crate::common::Moto::start();
    // The bucket exists before calltrail is pointed at it, as an operator would set it up.
    let created = reqwest::Client::new()
        .put(format!("{}/calls-bucket", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.text().await.unwrap());
    let s3 = StorageConfig::S3(S3Config {
        bucket: "calls-bucket".into(),
        prefix: "tenant-1/recordings".into(),
        endpoint: Some(moto.endpoint.clone()),
        region: "us-east-1".into(),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
    });
    let dir = temp_dir("rec-s3");
    let config = s3.clone();
    let app = TestApp::start_configured(dir.clone(), move |c| {
        c.recordings.storage = config;
        c.retention_every_ms = 200;
    })
    .await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, json!([call("s3", "ivanova", None)])).await;
    let file = wav_bytes(2 * 1024 * 1024 + 17, 6);
    let (status, up) = app.upload(&owner, "s3", "audio/wav", file.clone()).await;
    assert_eq!(status, 200, "{up}");
    let id = app.call_id(&owner, "s3").await;
    let path = format!("/api/v1/calls/{id}/recording");
    assert_eq!(ranged(&app, &owner, &path, None).await.2, file);
    let (status, h, body) = ranged(&app, &owner, &path, Some("bytes=1048576-1048675")).await;
    assert_eq!((status, body.as_slice()), (206, &file[1_048_576..1_048_676]));
    assert_eq!(
        header_of(&h, "content-range"),
        format!("bytes 1048576-1048675/{}", file.len())
    );
    let (status, _, body) = ranged(&app, &owner, &path, Some("bytes=-10")).await;
    assert_eq!((status, body.as_slice()), (206, &file[file.len() - 10..]));
    assert_eq!(ranged(&app, &owner, &path, Some("bytes=99999999-")).await.0, 416);
    // Nothing went to the data folder; the object is in the bucket under the prefix.
    assert_eq!(files_under(&dir), 0);
    let key: String = app
        .store
        .read(|conn| Ok(conn.query_row("SELECT object_key FROM recordings", (), |r| r.get(0))?))
        .await
        .unwrap();
    let listing = reqwest::get(format!("{}/calls-bucket?list-type=2", moto.endpoint))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listing.contains(&format!("tenant-1/recordings/{key}")), "{listing}");
    let storage = Storage::open(&s3).unwrap();
    assert!(storage.exists(&key).await.unwrap());

    // Retention removes it from the bucket.
    app.send(
        "PUT",
        &owner,
        "/api/v1/settings",
        Some(json!({"keep_recordings_days": 1})),
    )
    .await;
    let mut gone = false;
    for _ in 0..100 {
        if !storage.exists(&key).await.unwrap() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "retention deleted the object");
    assert_eq!(app.get(&owner, &path).await.0, 404);
    app.stop().await;
}
