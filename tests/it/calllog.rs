//! One call's story: its flow and log as the details show them, links that share the log with
//! someone without an account, and retention that deletes old calls and recordings.

use std::time::Duration;

use calltrail::domain::{Role, TokenScope};
use chrono::{SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::common::{error_field, temp_dir, wav_bytes, TestApp};

fn call_with_flow(external_id: &str) -> Value {
    json!({
        "external_id": external_id, "kind": "incoming", "from": "+79161230000", "to": "+74950000001",
        "scenario_started_at": "2026-11-10T09:00:00Z", "answered_at": "2026-11-10T09:00:40Z",
        "ended_at": "2026-11-10T09:05:00Z", "result": "answered", "operator": "ivanova", "queue": "line",
        "flow": [
            {"at": "2026-11-10T09:00:00Z", "block": "Start", "type": "start"},
            {"at": "2026-11-10T09:00:05Z", "block": "Main menu", "type": "menu", "outcome": "pressed 2"},
            {"at": "2026-11-10T09:00:40Z", "block": "Connect operator", "type": "connect", "outcome": "answered"}
        ],
        "log": ["09:00:00.120 INVITE sip:+74950000001 <script>alert(1)</script>", "09:05:00.004 BYE NORMAL_CLEARING"]
    })
}

#[tokio::test]
async fn the_log_tells_what_happened_to_a_call() {
    let app = TestApp::start("calllog-events").await;
    let owner = app.owner().await;
    let feeder = app.token("default", "pbx", Role::Operator, TokenScope::Ingest).await;
    app.ingest_ok(&feeder, json!([call_with_flow("e1")])).await;
    // A later update: a completion code and a tag; then the same again (nothing new).
    let update = json!([{"external_id": "e1", "completion_code": {"id": "sale", "name": "Продажа"}, "tags": ["vip"]}]);
    app.ingest_ok(&owner, update.clone()).await;
    assert_eq!(app.ingest_ok(&owner, update).await["unchanged"], 1);
    let id = app.call_id(&owner, "e1").await;
    let (status, d) = app.get(&owner, &format!("/api/v1/calls/{id}?tz=Europe/Moscow")).await;
    assert_eq!(status, 200, "{d}");
    let flow = &d["details"]["flow"];
    assert_eq!(
        flow,
        &json!([
            {"at": "2026-11-10T12:00:00+03:00", "block": "Start", "type": "start", "outcome": null},
            {"at": "2026-11-10T12:00:05+03:00", "block": "Main menu", "type": "menu", "outcome": "pressed 2"},
            {"at": "2026-11-10T12:00:40+03:00", "block": "Connect operator", "type": "connect", "outcome": "answered"}
        ])
    );
    let log = &d["details"]["log"];
    assert_eq!(
        log["lines"],
        json!([
            "09:00:00.120 INVITE sip:+74950000001 <script>alert(1)</script>",
            "09:05:00.004 BYE NORMAL_CLEARING"
        ])
    );
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{log}");
    assert_eq!(events[0]["event"], "created");
    assert_eq!(events[0]["source"], "pbx (token 2)");
    assert_eq!(
        events[0]["detail"]["fields"],
        json!([
            "from",
            "to",
            "operator",
            "queue",
            "answered_at",
            "scenario_started_at",
            "ended_at",
            "talk_seconds",
            "result",
            "flow",
            "log"
        ])
    );
    assert_eq!(events[1]["event"], "updated");
    assert_eq!(events[1]["source"], "owner (token 1)");
    assert_eq!(events[1]["detail"]["fields"], json!(["completion_code", "tags"]));
    assert!(events[1]["at"].as_str().unwrap().ends_with("+03:00"));

    // New log lines replace the old; flow blocks and lines are bounded and named when wrong.
    app.ingest_ok(&owner, json!([{"external_id": "e1", "log": ["one line"]}]))
        .await;
    let (_, d) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    assert_eq!(d["details"]["log"]["lines"], json!(["one line"]));
    assert_eq!(d["details"]["log"]["events"][2]["detail"]["fields"], json!(["log"]));
    let long = "x".repeat(9_000);
    for (bad, field) in [
        (json!({"external_id": "e1", "log": [long]}), "log[0]"),
        (json!({"external_id": "e1", "log": "not a list"}), "log"),
        (
            json!({"external_id": "e1", "flow": [{"at": "2026-11-10T09:00:00Z", "block": "x", "colour": "red"}]}),
            "flow[0]",
        ),
        (
            json!({"external_id": "e1", "flow": [{"at": "yesterday", "block": "x"}]}),
            "flow[0].at",
        ),
    ] {
        let (status, body) = app.ingest(&owner, json!([bad])).await;
        assert_eq!(status, 400, "{body}");
        assert!(error_field(&body).starts_with(field), "{field}: {body}");
    }
    let (_, after) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    assert_eq!(
        after["details"]["log"], d["details"]["log"],
        "bad input changed nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn log_links_work_expire_are_revoked_and_show_one_call_only() {
    let app = TestApp::start("calllog-links").await;
    let owner = app.owner().await;
    let manager = app.token("default", "boss", Role::Manager, TokenScope::Full).await;
    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    app.ingest_ok(&owner, json!([call_with_flow("l1"), call_with_flow("l2")]))
        .await;
    let (one, two) = (app.call_id(&owner, "l1").await, app.call_id(&owner, "l2").await);
    let link_path = format!("/api/v1/calls/{one}/log-link");

    let (status, link) = app.send("POST", &manager, &link_path, None).await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1/log/lg_"), "{url}");
    let token = url.rsplit('/').next().unwrap().to_string();
    assert!(token.len() >= 46, "256 random bits: {token}");
    let expires = chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let hours = (expires.with_timezone(&Utc) - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((71.9..=72.0).contains(&hours), "default lifetime 72 h, got {hours}");

    // Opened without any credential: the page of that call's log, escaped, and nothing else.
    let open = |path: String, json: bool| {
        let mut req = app.http.get(format!("{}{path}", app.base));
        if json {
            req = req.header("accept", "application/json");
        }
        req.send()
    };
    let r = open(format!("/log/{token}"), false).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let html = r.text().await.unwrap();
    assert!(html.contains("Лог звонка l1"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !html.contains("<script>"),
        "{html}"
    );
    assert!(html.contains("BYE NORMAL_CLEARING"));
    assert!(
        html.contains("<td>Звонок записан</td><td>owner (token 1)</td><td>поля: from, to, operator, queue,"),
        "{html}"
    );
    assert!(
        html.contains("<td>Создана ссылка на лог</td><td>boss (token 2)</td>"),
        "{html}"
    );
    assert!(!html.contains("l2"), "another call's id is not on the page");
    let shared: Value = open(format!("/log/{token}"), true).await.unwrap().json().await.unwrap();
    assert_eq!(shared["call"]["external_id"], "l1");
    assert_eq!(shared["log"]["lines"][1], "09:05:00.004 BYE NORMAL_CLEARING");
    let kinds: Vec<&str> = shared["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "log_link_created"]);
    assert_eq!(
        shared.as_object().unwrap().len(),
        2,
        "the call's id and log, nothing more: {shared}"
    );

    // Forged or altered tokens, and tricks to reach another call, find nothing.
    let mut altered = token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for path in [
        format!("/log/{altered}"),
        "/log/lg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
        format!("/log/{one}"),
        "/log/".to_string(),
    ] {
        assert_eq!(open(path.clone(), false).await.unwrap().status(), 404, "{path}");
    }
    let r = open(format!("/log/{token}?call={two}"), true).await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["call"]["external_id"], "l1",
        "the query string does not choose the call"
    );
    // The log link API needs the details permission and a call in the account.
    assert_eq!(app.send("POST", &supervisor, &link_path, None).await.0, 403);
    assert_eq!(
        app.send("POST", &owner, "/api/v1/calls/999999/log-link", None).await.0,
        404
    );
    let (status, body) = app
        .send("POST", &owner, &link_path, Some(json!({"expires_in_hours": 0})))
        .await;
    assert_eq!((status, error_field(&body)), (400, "expires_in_hours"));
    let (status, body) = app.send("POST", &owner, &link_path, Some(json!({"expires": 5}))).await;
    assert_eq!((status, error_field(&body)), (400, "expires"));

    // A link for the other call, one hour long, that then expires (its end moved into the past,
    // as an hour passing would).
    let (status, short) = app
        .send(
            "POST",
            &owner,
            &format!("/api/v1/calls/{two}/log-link"),
            Some(json!({"expires_in_hours": 1})),
        )
        .await;
    assert_eq!(status, 201);
    let short_token = short["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let shared: Value = open(format!("/log/{short_token}"), true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shared["call"]["external_id"], "l2");
    let moved = app
        .store
        .write(move |conn, _| {
            let past = calltrail::store::auth::now_ms() - 1;
            Ok(conn.execute(
                "UPDATE log_links SET expires_at = ? WHERE call_id = ?",
                [past, two.parse::<i64>().unwrap()],
            )?)
        })
        .await
        .unwrap();
    assert_eq!(moved, 1);
    let r = open(format!("/log/{short_token}"), false).await.unwrap();
    assert_eq!(r.status(), 410);
    assert!(r.text().await.unwrap().contains("истёк"));
    assert_eq!(
        open(format!("/log/{token}"), false).await.unwrap().status(),
        200,
        "the first link still works"
    );

    // Revoked: every live link of the call stops working at once.
    let (status, second) = app.send("POST", &owner, &link_path, None).await;
    assert_eq!(status, 201);
    let second_token = second["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let (status, revoked) = app.send("DELETE", &manager, &link_path, None).await;
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(2)));
    for t in [&token, &second_token] {
        let r = open(format!("/log/{t}"), true).await.unwrap();
        assert_eq!(r.status(), 410);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "gone");
    }
    let (_, again) = app.send("DELETE", &manager, &link_path, None).await;
    assert_eq!(again["revoked"], 0);
    // The audit log and the call's log both say who made and revoked links.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=log_link_created").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=log_link_revoked").await;
    assert_eq!(audit["items"][0]["detail"]["links"], 2);
    assert_eq!(audit["items"][0]["actor_login"], "boss");
    let (_, d) = app.get(&owner, &format!("/api/v1/calls/{one}")).await;
    let kinds: Vec<&str> = d["details"]["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["created", "log_link_created", "log_link_created", "log_link_revoked"]
    );
    app.stop().await;
}

/// A call `days_ago` days ago (at this time of day).
fn old_call(external_id: &str, days_ago: i64) -> Value {
    let start = Utc::now() - chrono::Duration::days(days_ago);
    let at = |s: i64| (start + chrono::Duration::seconds(s)).to_rfc3339_opts(SecondsFormat::Secs, true);
    json!({
        "external_id": external_id, "kind": "incoming", "from": "+79161230000", "to": "+74950000001",
        "scenario_started_at": at(0), "answered_at": at(10), "ended_at": at(70), "result": "answered",
        "operator": "ivanova", "tags": ["kept"], "notes": [{"id": "n", "at": at(80), "text": "note"}],
        "log": ["a line"]
    })
}

#[tokio::test]
async fn retention_deletes_old_calls_and_recordings_with_their_files() {
    let app = TestApp::start_configured(temp_dir("retention"), |c| c.retention_every_ms = 150).await;
    let owner = app.owner().await;
    let ages = [("new", 10), ("middle", 45), ("old", 90), ("older", 200)];
    let calls: Vec<Value> = ages.iter().map(|(e, d)| old_call(e, *d)).collect();
    app.ingest_ok(&owner, Value::Array(calls)).await;
    for (i, (ext, _)) in ages.iter().enumerate() {
        assert_eq!(
            app.upload(&owner, ext, "audio/wav", wav_bytes(3_000, i as u8)).await.0,
            200
        );
    }
    let ids: Vec<String> = {
        let mut v = vec![];
        for (ext, _) in ages {
            v.push(app.call_id(&owner, ext).await);
        }
        v
    };
    let keys: Vec<String> = app
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT object_key FROM recordings ORDER BY external_id")?;
            let keys = stmt.query_map((), |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(keys)
        })
        .await
        .unwrap();
    assert_eq!(keys.len(), 4);
    let file_exists = |key: &str| app.dir.join("recordings").join(key).exists();
    assert!(keys.iter().all(|k| file_exists(k)));
    let (_, before) = app.get(&owner, "/api/v1/calls?from=2020-01-01&tz=UTC").await;
    assert_eq!(before["total"], 4);

    // Bad settings are refused by name and change nothing.
    for (body, field) in [
        (json!({"keep_calls_days": 0}), "keep_calls_days"),
        (json!({"keep_recordings_days": 40000}), "keep_recordings_days"),
        (json!({"keep_calls_days": "forever"}), "keep_calls_days"),
    ] {
        let (status, answer) = app.send("PUT", &owner, "/api/v1/settings", Some(body)).await;
        assert_eq!((status, error_field(&answer)), (400, field), "{answer}");
    }
    let (status, settings) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/settings",
            Some(json!({"keep_calls_days": 100, "keep_recordings_days": 30})),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        (
            settings["keep_calls_days"].as_u64(),
            settings["keep_recordings_days"].as_u64()
        ),
        (Some(100), Some(30))
    );

    // Wait for the next round of retention.
    let mut total = Value::Null;
    for _ in 0..100 {
        let (_, page) = app.get(&owner, "/api/v1/calls?from=2020-01-01&tz=UTC").await;
        total = page["total"].clone();
        if total == 3 && !file_exists(&keys[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Ordered by external id: middle, new, old, older.
    assert_eq!(total, 3, "older (200 days) is gone, old (90) stays as a call");
    assert_eq!(
        app.search_ids(&owner, "from=2020-01-01&tz=UTC").await,
        ["middle", "new", "old"]
    );
    let (status, _) = app.get(&owner, &format!("/api/v1/calls/{}", ids[3])).await;
    assert_eq!(status, 404);
    // Recordings: kept for the 10-day call; deleted (file too) for the 45- and 90-day calls and
    // with the 200-day call itself.
    assert!(file_exists(&keys[1]), "new keeps its file");
    for (i, name) in [(0, "middle"), (2, "old"), (3, "older")] {
        assert!(!file_exists(&keys[i]), "{name}'s file is deleted");
    }
    let (_, middle) = app.get(&owner, &format!("/api/v1/calls/{}", ids[1])).await;
    assert_eq!(middle["has_recording"], false);
    assert_eq!(middle["details"]["recording"], Value::Null);
    let last = middle["details"]["log"]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["event"].as_str(), last["source"].as_str()),
        (Some("recording_deleted"), Some("retention"))
    );
    assert_eq!(
        app.get(&owner, &format!("/api/v1/calls/{}/recording", ids[1])).await.0,
        404
    );
    assert_eq!(
        app.get(&owner, &format!("/api/v1/calls/{}/recording", ids[0])).await.0,
        200
    );
    // Nothing of the deleted call is left behind, and the counts agree with the calls.
    let older_id: i64 = ids[3].parse().unwrap();
    let leftovers: i64 = app
        .store
        .read(move |conn| {
            let mut n = 0;
            for table in ["call_tags", "call_notes", "call_events", "call_log_lines"] {
                n += conn.query_row(
                    &format!("SELECT COUNT(*) FROM {table} WHERE call_id = ?"),
                    [older_id],
                    |r| r.get::<_, i64>(0),
                )?;
            }
            n += conn.query_row("SELECT COUNT(*) FROM recordings WHERE external_id = 'older'", (), |r| {
                r.get::<_, i64>(0)
            })?;
            n += conn.query_row("SELECT CAST(SUM(n) AS BIGINT) - 3 FROM call_counts_day", (), |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(n)
        })
        .await
        .unwrap();
    assert_eq!(leftovers, 0);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=retention_deleted").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["detail"]["calls"], 1);
    assert_eq!(
        entries[0]["detail"]["recordings"], 3,
        "middle, old and older (before its call went)"
    );
    assert_eq!(entries[0]["actor_login"], "(retention)");
    // Keeping forever again: nothing more is deleted.
    app.send(
        "PUT",
        &owner,
        "/api/v1/settings",
        Some(json!({"keep_calls_days": null, "keep_recordings_days": null})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(app.search_ids(&owner, "from=2020-01-01&tz=UTC").await.len(), 3);
    assert!(file_exists(&keys[1]));
    app.stop().await;
}

/// A batch's log events, log lines, tags, topics and notes are written together at its end; a
/// record that comes back to a call the same batch wrote must still see everything before it.
#[tokio::test]
async fn one_batch_may_carry_a_call_several_times() {
    let app = TestApp::start("calllog-batch").await;
    let owner = app.owner().await;
    let batch = json!([
        call_with_flow("b1"),
        {"external_id": "b1", "tags": ["vip"], "topics": ["billing/refund"],
         "notes": [{"id": "n1", "author": "ivanova", "at": "2026-11-10T09:10:00Z", "text": "Первая"}]},
        call_with_flow("b2"),
        {"external_id": "b1", "tags": ["complaint"], "log": ["replaced"],
         "notes": [{"id": "n2", "author": "petrov", "at": "2026-11-10T09:20:00Z", "text": "Вторая"}]},
        {"external_id": "b1", "tags": ["complaint"]},
    ]);
    assert_eq!(
        app.ingest_ok(&owner, batch).await,
        json!({"created": 2, "updated": 2, "unchanged": 1, "pending": 0})
    );
    let id = app.call_id(&owner, "b1").await;
    let (_, d) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&d["tags"]), ["complaint"], "{d}");
    assert_eq!(d["topics"].as_array().unwrap().len(), 1, "{d}");
    let notes: Vec<&str> = d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["Первая", "Вторая"]);
    assert_eq!(d["details"]["log"]["lines"], json!(["replaced"]));
    let fields: Vec<&Value> = d["details"]["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"]["fields"])
        .collect();
    assert_eq!(
        fields[1..],
        [&json!(["tags", "topics", "notes"]), &json!(["log", "tags", "notes"])],
        "{d}"
    );
    assert_eq!(fields.len(), 3);
    // The other call of the batch is whole too.
    let other = app.call_id(&owner, "b2").await;
    let (_, d) = app.get(&owner, &format!("/api/v1/calls/{other}")).await;
    assert_eq!(d["details"]["log"]["events"].as_array().unwrap().len(), 1);
    assert_eq!(d["details"]["log"]["lines"].as_array().unwrap().len(), 2);
    // The tag search sees the final tags only.
    let tag = |name: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move { app.dir_id(&owner, "/api/v1/tags", "name", name).await }
    };
    assert_eq!(
        app.search_ids(&owner, &format!("tag={}", tag("vip").await)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.search_ids(&owner, &format!("tag={}", tag("complaint").await)).await,
        ["b1"]
    );
    app.stop().await;
}
