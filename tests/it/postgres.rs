//! One flow on both databases in the same run, whichever database the rest of the suite runs on
//! (`CALLTRAIL_TEST_DATABASE`): calls in, found (by period, number fragment, operator), detailed,
//! counted, exported, and the directory — so that a plain `cargo test` exercises PostgreSQL too.

use serde_json::json;

use crate::common::{temp_dir, TestApp};
use crate::schema::Scratch;

#[tokio::test]
async fn calls_go_in_and_are_found_on_postgresql() {
    let scratch = tokio::task::spawn_blocking(|| Scratch::create().0).await.unwrap();
    let url = scratch.url();
    let store = tokio::task::spawn_blocking(move || calltrail::store::Store::open_postgres(&url))
        .await
        .unwrap()
        .expect("the store opens on PostgreSQL");
    exercise(TestApp::start_on(store, temp_dir("postgres-smoke"), |_| {}).await).await;
}

/// No query runs for ever on PostgreSQL: reads are cancelled after 60 s, writes after 300 s,
/// and a write waits at most 30 s for a row another instance holds — and the server says so.
/// Searches are planned for their values every time (the page plan relies on it): they are not
/// kept as prepared statements, which PostgreSQL switches to a plan for unknown values after
/// five runs; other statements are kept.
#[tokio::test]
async fn postgresql_sessions_have_timeouts() {
    let scratch = tokio::task::spawn_blocking(|| Scratch::create().0).await.unwrap();
    let url = scratch.url();
    let store = tokio::task::spawn_blocking(move || calltrail::store::Store::open_postgres(&url))
        .await
        .unwrap()
        .expect("the store opens on PostgreSQL");
    let show = |conn: &calltrail::store::db::Connection, name: &str| -> String {
        conn.query_row(&format!("SHOW {name}"), (), |r| r.get(0)).unwrap()
    };
    let read = store
        .read(move |conn| Ok((show(conn, "statement_timeout"), show(conn, "plan_cache_mode"))))
        .await
        .unwrap();
    assert_eq!((read.0.as_str(), read.1.as_str()), ("1min", "auto"));
    let kept = store
        .read(|conn| {
            use calltrail::domain::{AccountId, CallFilter, CallScope};
            use calltrail::store::search;
            let scope = CallScope::whole_account(AccountId(1));
            let operators = CallFilter {
                operators: vec![3, 4, 5],
                ..CallFilter::default()
            };
            for _ in 0..6 {
                search::ids_after(conn, &scope, &operators, None, 10)?;
                search::count(conn, &scope, &CallFilter::default())?;
                search::count(conn, &scope, &operators)?;
            }
            let kept = |like: &str| -> Result<i64, calltrail::store::StoreError> {
                Ok(conn.query_row(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE ?",
                    [like],
                    |r| r.get(0),
                )?)
            };
            Ok((kept("%FROM calls c%")?, kept("%FROM call_counts_%")?))
        })
        .await
        .unwrap();
    assert_eq!(kept.0, 0, "searches of calls are planned anew");
    assert!(kept.1 > 0, "bucket sums are kept");
    let (statement, lock) = store
        .write(move |conn, _| Ok((show(conn, "statement_timeout"), show(conn, "lock_timeout"))))
        .await
        .unwrap();
    assert_eq!((statement.as_str(), lock.as_str()), ("5min", "30s"));
    // A read past its time is cancelled, and the error names the cause.
    let err = store
        .read(|conn| {
            conn.execute_batch("SET statement_timeout = '50ms'")?;
            let slept = conn.execute_batch("SELECT pg_sleep(2)");
            conn.execute_batch("SET statement_timeout = '60s'")?;
            Ok(slept)
        })
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    store.shutdown();
    drop(store);
    drop(scratch);
}

#[tokio::test]
async fn the_same_on_sqlite() {
    exercise(TestApp::start("sqlite-smoke").await).await;
}

async fn exercise(app: TestApp) {
    let owner = app.owner().await;
    let calls = json!([
        {"external_id": "p1", "kind": "incoming", "from": "+79161230001", "to": "+74950000001",
         "started_at": "2026-11-10T09:00:00Z", "answered_at": "2026-11-10T09:00:10Z", "ended_at": "2026-11-10T09:05:00Z",
         "result": "answered", "operator": "ivanova", "operator_name": "Анна Иванова", "queue": "line",
         "tags": ["vip"], "notes": [{"id": "n1", "at": "2026-11-10T09:06:00Z", "text": "перезвонить"}],
         "log": ["INVITE", "BYE"]},
        {"external_id": "p2", "kind": "softphone_outgoing", "from": "201", "to": "+79269876543",
         "started_at": "2026-11-11T10:00:00Z", "ended_at": "2026-11-11T10:00:30Z", "result": "no_answer",
         "operator": "petrov"},
        {"external_id": "p3", "kind": "incoming", "from": "+79161230002", "to": "+74950000001",
         "started_at": "2026-11-12T11:00:00Z", "ended_at": "2026-11-12T11:00:20Z", "result": "abandoned"}
    ]);
    let body = app.ingest_ok(&owner, calls.clone()).await;
    assert_eq!(body["created"], 3, "{body}");
    assert_eq!(
        app.ingest_ok(&owner, calls).await["unchanged"],
        3,
        "the same again changes nothing"
    );

    let month = "tz=UTC&from=2026-11-01&to=2026-12-01";
    assert_eq!(app.search_ids(&owner, month).await, vec!["p1", "p2", "p3"]);
    assert_eq!(
        app.search_ids(&owner, &format!("{month}&number=6123")).await,
        vec!["p1", "p3"]
    );
    assert_eq!(
        app.search_ids(&owner, &format!("{month}&result=answered")).await,
        vec!["p1"]
    );
    let (status, page) = app.get(&owner, &format!("/api/v1/calls?{month}&limit=2")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 3);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, next) = app
        .get(&owner, &format!("/api/v1/calls?{month}&limit=2&cursor={cursor}"))
        .await;
    assert_eq!(
        next["items"][0]["external_id"], "p1",
        "newest first, then by cursor: {next}"
    );

    let id = app.call_id(&owner, "p1").await;
    let (status, call) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
    assert_eq!(status, 200, "{call}");
    assert_eq!(call["operator"]["name"], "Анна Иванова");
    assert_eq!(call["details"]["log"]["lines"], json!(["INVITE", "BYE"]));
    assert_eq!(call["notes"][0]["text"], "перезвонить");

    let (status, csv) = app
        .download(&owner, &format!("/api/v1/calls/export?format=csv&lang=en&{month}"))
        .await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.trim_end().lines().count(), 4, "a header and three calls: {csv}");

    let (status, users) = app.get(&owner, "/api/v1/users").await;
    assert_eq!(status, 200, "{users}");
    assert!(users["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["login"] == "ivanova"));
    app.stop().await;
}
