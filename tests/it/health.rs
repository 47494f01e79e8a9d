//! Ingestion health: what each source sent and what became of it, the refusals kept with their
//! payloads (bounded), and a replay once the cause is fixed.

use calltrail::domain::{Role, TokenScope};
use md5::{Digest, Md5};
use serde_json::{json, Value};

use crate::cli::calltrail;
use crate::common::{error_field, temp_dir, TestApp};

fn source<'a>(health: &'a Value, name: &str) -> &'a Value {
    health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("{name} in {health}"))
}

fn counts(health: &Value, name: &str) -> [i64; 6] {
    let s = source(health, name);
    ["accepted", "updated", "duplicates", "pending", "skipped", "rejected"].map(|k| s[k].as_i64().unwrap())
}

fn call(id: &str, talk_end: &str) -> Value {
    json!({"external_id": id, "kind": "incoming", "from": "74951112233", "to": "100",
           "scenario_started_at": "2026-11-25T09:00:00Z", "ended_at": talk_end})
}

#[tokio::test]
async fn sources_are_counted_and_refusals_kept_and_replayed() {
    let dir = temp_dir("health");
    let app = TestApp::start_in(dir.clone()).await;
    let owner = app.owner().await;
    let feeder = app.token("default", "pbx", Role::Admin, TokenScope::Ingest).await;

    // The native API: two new, the same two again, one changed, one bad batch.
    app.ingest_ok(
        &feeder,
        json!([call("h1", "2026-11-25T09:01:00Z"), call("h2", "2026-11-25T09:02:00Z")]),
    )
    .await;
    app.ingest_ok(
        &feeder,
        json!([call("h1", "2026-11-25T09:01:00Z"), call("h2", "2026-11-25T09:02:00Z")]),
    )
    .await;
    app.ingest_ok(&feeder, json!([call("h1", "2026-11-25T09:05:00Z")]))
        .await;
    let bad = json!([call("h3", "2026-11-25T09:01:00Z"), {"external_id": "h4", "kind": "sideways"}]);
    let (status, body) = app.ingest(&feeder, bad.clone()).await;
    assert_eq!((status, error_field(&body)), (400, "kind"));

    // The reference product's webhook signed with a salt calltrail does not know yet.
    let (status, _) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": "default", "salt": "old"})),
        )
        .await;
    assert_eq!(status, 200);
    let hash = format!("{:x}", Md5::digest(b"newdefaultnew_calls"));
    let webhook = json!({"callbacks": [{"hash": hash, "type": "new_calls", "new_calls": {"calls": [{
        "session_id": 77, "is_incoming": true, "datetime_start": "2026-11-25 10:00:00",
        "phone_a": "79161234567", "phone_b": "74951112233", "duration": 30
    }]}}]});
    let r = app
        .http
        .post(format!("{}/api/v1/ingest/voximplant-kit?token={feeder}", app.base))
        .json(&webhook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    assert_eq!(app.get(&supervisor, "/api/v1/ingest/health").await.0, 403);
    let (status, health) = app.get(&owner, "/api/v1/ingest/health").await;
    assert_eq!(status, 200, "{health}");
    let names: Vec<&str> = health["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "voximplant-kit"]);
    assert_eq!(counts(&health, "api"), [2, 1, 2, 0, 0, 1]);
    assert_eq!(counts(&health, "voximplant-kit"), [0, 0, 0, 0, 0, 1]);
    assert!(source(&health, "api")["last_rejected_at"].is_string());
    let rejections = health["rejections"].as_array().unwrap();
    assert_eq!(rejections.len(), 2);
    // Newest first.
    let kit = &rejections[0];
    assert_eq!(
        (&kit["source"], &kit["replayable"], &kit["replayed_at"]),
        (&json!("voximplant-kit"), &json!(true), &Value::Null)
    );
    assert_eq!(kit["reason"], "the hash does not match the configured salt and domain");
    let api = &rejections[1];
    assert_eq!(
        (&api["source"], &api["field"], &api["content_type"]),
        (&json!("api"), &json!("kind"), &json!("application/json"))
    );
    assert!(api["reason"].as_str().unwrap().contains("record 1"), "{api}");
    // The payload as it came.
    let (status, one) = app
        .get(
            &owner,
            &format!("/api/v1/ingest/rejections/{}", api["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    let kept: Value = serde_json::from_str(one["payload"].as_str().unwrap()).unwrap();
    assert_eq!(kept, bad);
    assert_eq!(one["bytes"], bad.to_string().len());

    // Replayed unchanged, the bad batch is refused again and stays; with the salt fixed, the
    // webhook goes in.
    let replay = |id: &Value| format!("/api/v1/ingest/rejections/{}/replay", id.as_str().unwrap());
    let (status, body) = app.send("POST", &owner, &replay(&api["id"]), None).await;
    assert_eq!((status, error_field(&body)), (400, "kind"), "{body}");
    let (status, body) = app.send("POST", &owner, &replay(&kit["id"]), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"salt": "new"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.send("POST", &owner, &replay(&kit["id"]), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["replay_outcome"]["created"], 1, "{body}");
    assert!(body["replayed_at"].is_string());
    let id = app.call_id(&owner, "77").await;
    let (_, replayed) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    let by = replayed["details"]["log"]["events"][0]["source"].as_str().unwrap();
    assert!(by.starts_with("replay by owner (token "), "{by}");
    let (_, health) = app.get(&owner, "/api/v1/ingest/health").await;
    assert_eq!(counts(&health, "voximplant-kit"), [1, 0, 0, 0, 0, 1]);

    // Refusals are kept per source up to 100; all are counted.
    for i in 0..101 {
        let (status, _) = app
            .ingest(&feeder, json!([{"external_id": format!("x{i}"), "kind": "nope"}]))
            .await;
        assert_eq!(status, 400);
    }
    let (_, health) = app.get(&owner, "/api/v1/ingest/health").await;
    assert_eq!(counts(&health, "api")[5], 102);
    let kept_api = app
        .store
        .read(|conn| {
            Ok(
                conn.query_row("SELECT count(*) FROM ingest_rejections WHERE source = 'api'", (), |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(kept_api, 100);
    let dir = app.stop().await;

    // A file import: its bad line is listed by line and cannot be replayed from here.
    let file = dir.join("Master.csv");
    std::fs::write(&file, "\"\",\"test\",\"100\",\"context\",\"x\",\"SIP/test-1\",\"\",\"Hangup\",\"\",\"2009-01-14 23:51:15\",\"\",\"2009-01-14 23:51:20\",5,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1.0\",\"\"\n\"broken,\n").unwrap();
    let (code, out, err) = calltrail(
        &[
            "import",
            "--format",
            "asterisk-csv",
            "--data",
            dir.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 2, "{out}{err}");
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    let (_, health) = app.get(&owner, "/api/v1/ingest/health").await;
    assert_eq!(counts(&health, "import:asterisk-csv"), [1, 0, 0, 0, 0, 1]);
    let line = &health["rejections"][0];
    assert_eq!(
        (&line["source"], &line["replayable"], &line["bytes"]),
        (&json!("import:asterisk-csv"), &json!(false), &Value::Null)
    );
    assert_eq!(
        line["reason"],
        "line 2: a quoted value is not closed (the line is cut short)"
    );
    let (status, body) = app.send("POST", &owner, &replay(&line["id"]), None).await;
    assert_eq!(status, 409, "{body}");
}
