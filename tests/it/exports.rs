//! Background exports: a job gives the same file as the streamed export, can be cancelled in the
//! middle, survives a restart of the server, and its file is deleted when its time is up.

use std::io::Cursor;
use std::path::PathBuf;

use calamine::{Reader, Xlsx};
use serde_json::{json, Value};

use crate::common::{error_field, temp_dir, TestApp};

/// `n` incoming calls, one a minute from 2026-11-10 08:00 UTC, operators round-robin.
fn many_calls(n: usize) -> Value {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-10T08:00:00Z").unwrap();
    Value::Array(
        (0..n)
            .map(|i| {
                let at = start + chrono::Duration::minutes(i as i64);
                json!({
                    "external_id": format!("m{i}"), "kind": "incoming",
                    "from": format!("+7916{i:07}"), "to": "+74950000001",
                    "scenario_started_at": at.to_rfc3339(),
                    "ended_at": (at + chrono::Duration::seconds(30 + (i % 90) as i64)).to_rfc3339(),
                    "result": if i % 3 == 0 { "answered" } else { "no_answer" },
                    "operator": format!("op{}", i % 4), "tags": if i % 5 == 0 { json!(["vip"]) } else { json!([]) },
                })
            })
            .collect(),
    )
}

/// Ingests `many_calls(n)` in batches that fit the test server's body limit.
async fn ingest_many(app: &TestApp, token: &str, n: usize) {
    let calls = many_calls(n);
    for chunk in calls.as_array().unwrap().chunks(150) {
        app.ingest_ok(token, Value::Array(chunk.to_vec())).await;
    }
}

async fn start_job(app: &TestApp, token: &str, body: Value) -> String {
    let (status, job) = app.send("POST", token, "/api/v1/exports", Some(body)).await;
    assert_eq!(status, 202, "{job}");
    assert!(
        matches!(job["state"].as_str(), Some("queued" | "running" | "done")),
        "{job}"
    );
    job["id"].as_str().unwrap().to_string()
}

async fn bytes_of(app: &TestApp, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = app.fetch(token, path).await;
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_job_writes_the_same_file_as_the_streamed_export() {
    let app = TestApp::start("jobs-same").await;
    let owner = app.owner().await;
    ingest_many(&app, &owner, 600).await;
    let filters = json!({"from": "2026-11-10", "to": "2026-11-11", "tz": "Europe/Moscow", "result": ["answered", "no_answer"], "tag": []});
    let id = start_job(
        &app,
        &owner,
        json!({"format": "csv", "lang": "ru", "filters": filters, "columns": "time,from,operator,talk_duration,result,tags"}),
    )
    .await;
    let job = app.finished_job(&owner, &id).await;
    assert_eq!(
        (&job["state"], &job["rows_done"], &job["rows_total"]),
        (&json!("done"), &json!(600), &json!(600))
    );
    assert!(
        job["expires_at"].is_string() && job["file_bytes"].as_i64().unwrap() > 0,
        "{job}"
    );
    let name = job["file_name"].as_str().unwrap();
    assert!(
        name.starts_with("calls_2026-11-10_exported_") && name.ends_with(".csv"),
        "{name}"
    );

    let (status, from_job) = bytes_of(&app, &owner, job["file_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let query = "format=csv&lang=ru&from=2026-11-10&to=2026-11-11&tz=Europe/Moscow&result=answered&result=no_answer\
                 &columns=time,from,operator,talk_duration,result,tags";
    let (status, streamed) = bytes_of(&app, &owner, &format!("/api/v1/calls/export?{query}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        from_job, streamed,
        "the job's file and the streamed export are the same bytes"
    );
    let text = String::from_utf8(from_job).unwrap();
    assert_eq!(text.trim_end().split("\r\n").count(), 601);

    // XLSX: the same rows, and the About sheet with the count.
    let id = start_job(
        &app,
        &owner,
        json!({"format": "xlsx", "lang": "en", "filters": {"tz": "UTC"}, "columns": ["from"]}),
    )
    .await;
    let job = app.finished_job(&owner, &id).await;
    let (_, bytes) = bytes_of(&app, &owner, job["file_url"].as_str().unwrap()).await;
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(book.sheet_names(), ["Calls", "About"]);
    assert_eq!(book.worksheet_range("Calls").unwrap().rows().count(), 601);
    let about = book.worksheet_range("About").unwrap();
    let rows: Vec<String> = about.rows().map(|r| format!("{}={}", r[0], r[1])).collect();
    assert!(rows.contains(&"Rows=600".to_string()), "{rows:?}");

    // Each job is one export in the audit log, with its job id.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=export").await;
    let jobs: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detail"]["job"].is_string())
        .collect();
    assert_eq!(jobs.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn bad_job_requests_are_refused_by_field_and_start_nothing() {
    let app = TestApp::start("jobs-bad").await;
    let owner = app.owner().await;
    for (body, field) in [
        (json!({}), "format"),
        (json!({"format": "pdf"}), "format"),
        (json!({"format": "csv", "filters": {"number": "12"}}), "number"),
        (
            json!({"format": "csv", "filters": {"result": ["answered", "maybe"]}}),
            "result",
        ),
        (
            json!({"format": "csv", "filters": {"operator": {"id": 1}}}),
            "filters.operator",
        ),
        (
            json!({"format": "csv", "filters": {"columns": "time"}}),
            "filters.columns",
        ),
        (json!({"format": "csv", "filters": {"cursor": "x"}}), "cursor"),
        (json!({"format": "csv", "columns": ["time", "when"]}), "columns"),
        (json!({"format": "csv", "lang": "de"}), "lang"),
        (json!({"format": "csv", "tz": "Mars/Base"}), "tz"),
        (json!({"format": "csv", "sheet": 2}), "sheet"),
    ] {
        let (status, answer) = app.send("POST", &owner, "/api/v1/exports", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(error_field(&answer), field, "{body}");
    }
    let (_, list) = app.get(&owner, "/api/v1/exports").await;
    assert_eq!(list["items"], json!([]));
    for path in ["/api/v1/exports/999", "/api/v1/exports/x", "/api/v1/exports/999/file"] {
        assert_eq!(app.get(&owner, path).await.0, 404, "{path}");
    }
    app.stop().await;
}

/// A server whose exports read one call at a time: a job over a thousand calls takes long
/// enough to be watched in the middle.
async fn slow_app(dir: PathBuf, keep_ms: i64) -> TestApp {
    TestApp::start_configured(dir, |c| {
        c.export_stretch = 1;
        c.export_keep_ms = keep_ms;
    })
    .await
}

async fn running_with_progress(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..400 {
        let (_, job) = app.get(token, &format!("/api/v1/exports/{id}")).await;
        if job["state"] == "running" && job["rows_done"].as_i64().unwrap_or(0) > 0 {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("export {id} never ran");
}

#[tokio::test]
async fn a_job_can_be_cancelled_in_the_middle() {
    let app = slow_app(temp_dir("jobs-cancel"), 24 * 3_600_000).await;
    let owner = app.owner().await;
    ingest_many(&app, &owner, 1000).await;
    let id = start_job(&app, &owner, json!({"format": "csv"})).await;
    let running = running_with_progress(&app, &owner, &id).await;
    assert_eq!(running["rows_total"], 1000);
    let (status, file) = app.get(&owner, &format!("/api/v1/exports/{id}/file")).await;
    assert_eq!(status, 409, "not ready while it runs: {file}");
    assert!(
        file["error"]["message"].as_str().unwrap().contains("of 1000 rows"),
        "{file}"
    );

    let (status, job) = app.send("DELETE", &owner, &format!("/api/v1/exports/{id}"), None).await;
    assert_eq!((status, &job["state"]), (200, &json!("cancelled")), "{job}");
    // The worker sees it between two stretches and stops; no file is left.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, job) = app.get(&owner, &format!("/api/v1/exports/{id}")).await;
    assert_eq!(job["state"], "cancelled");
    let done = job["rows_done"].as_i64().unwrap();
    assert!(done > 0 && done < 1000, "stopped part way: {done}");
    assert_eq!(job["file_url"], Value::Null);
    assert_eq!(app.get(&owner, &format!("/api/v1/exports/{id}/file")).await.0, 410);
    let exports = app.dir.join("exports");
    let left: Vec<_> = std::fs::read_dir(&exports)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no partial file: {left:?}");
    // The next job runs as usual.
    let next = start_job(
        &app,
        &owner,
        json!({"format": "csv", "filters": {"result": "answered"}}),
    )
    .await;
    let _ = next;
    app.stop().await;
}

#[tokio::test]
async fn a_job_running_when_the_server_stops_runs_again_after_the_restart() {
    let dir = temp_dir("jobs-restart");
    let app = slow_app(dir.clone(), 24 * 3_600_000).await;
    let owner = app.owner().await;
    ingest_many(&app, &owner, 1000).await;
    let id = start_job(&app, &owner, json!({"format": "csv", "lang": "en"})).await;
    running_with_progress(&app, &owner, &id).await;
    app.stop().await;

    // Back up (at full speed): the job starts again from its first row and finishes.
    let app = TestApp::start_in(dir.clone()).await;
    let job = app.finished_job(&owner, &id).await;
    assert_eq!(
        (&job["state"], &job["rows_done"], &job["rows_total"]),
        (&json!("done"), &json!(1000), &json!(1000)),
        "{job}"
    );
    let (status, text) = app.download(&owner, job["file_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(text.trim_end().split("\r\n").count(), 1001, "every row once");

    // A job the server keeps stopping in fails after three tries instead of looping.
    let id = start_job(&app, &owner, json!({"format": "csv"})).await;
    app.finished_job(&owner, &id).await;
    let job_id: i64 = id.parse().unwrap();
    app.store
        .write(move |conn, _| {
            conn.execute(
                "UPDATE export_jobs SET state = 'running', attempts = 3 WHERE id = ?",
                [job_id],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    app.stop().await;
    let app = TestApp::start_in(dir).await;
    let job = app.finished_job(&owner, &id).await;
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(
        job["error"],
        "the server stopped during this export 3 times; start it again"
    );
    app.stop().await;
}

#[tokio::test]
async fn finished_files_are_deleted_when_their_time_is_up() {
    let app = TestApp::start_configured(temp_dir("jobs-expire"), |c| c.export_keep_ms = 1).await;
    let owner = app.owner().await;
    ingest_many(&app, &owner, 10).await;
    let first = start_job(&app, &owner, json!({"format": "csv"})).await;
    let job = app.finished_job(&owner, &first).await;
    assert_eq!(job["state"], "done");
    let path = app.dir.join("exports").join(format!("job-{first}.csv"));
    assert!(path.exists());
    // The worker deletes what expired each time it wakes (a new job wakes it).
    let second = start_job(&app, &owner, json!({"format": "xlsx"})).await;
    app.finished_job(&owner, &second).await;
    assert!(!path.exists(), "the expired file is gone");
    let (_, job) = app.get(&owner, &format!("/api/v1/exports/{first}")).await;
    assert_eq!((&job["state"], &job["file_url"]), (&json!("done"), &Value::Null));
    let (status, body) = app.get(&owner, &format!("/api/v1/exports/{first}/file")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (410, Some("gone")));

    // Deleting a finished job's file at once.
    let (status, job) = app
        .send("DELETE", &owner, &format!("/api/v1/exports/{second}"), None)
        .await;
    assert_eq!(
        (status, &job["state"], &job["file_url"]),
        (200, &json!("done"), &Value::Null)
    );
    assert!(!app.dir.join("exports").join(format!("job-{second}.xlsx")).exists());
    app.stop().await;
}
