//! `calltrail copy`: a demo installation moved from SQLite to PostgreSQL and back, row for row,
//! with the copy on PostgreSQL serving the same searches; a target that holds data is refused.

use std::path::Path;

use rusqlite::types::Value;

use crate::cli::calltrail;
use crate::common::{disk_recordings, open_database, temp_dir, TestApp};
use crate::schema::Scratch;

/// Every table of a SQLite database, rows in full and in order (the number search index is
/// derived, not data).
fn dump(path: &Path) -> Vec<(String, Vec<Vec<Value>>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'numbers_fts%' ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    names
        .into_iter()
        .map(|name| {
            let stmt = conn.prepare(&format!("SELECT * FROM {name}")).unwrap();
            let n = stmt.column_count();
            let order: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {name} ORDER BY {}", order.join(", ")))
                .unwrap();
            let rows = stmt
                .query_map([], |r| {
                    (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            (name, rows)
        })
        .collect()
}

#[tokio::test]
async fn a_demo_installation_goes_to_postgresql_and_back_row_for_row() {
    // An embedded installation: the demo contact center on SQLite, whatever the suite runs on.
    let dir = temp_dir("copy-src");
    let store = open_database(calltrail::store::Database::Sqlite(dir.clone()));
    let (_, token) = calltrail::demo::prepare(&store, &disk_recordings(&dir), &dir, 3_000, 15)
        .await
        .unwrap()
        .unwrap();
    store.shutdown();
    drop(store);
    let db = tokio::task::spawn_blocking(|| Scratch::create().0).await.unwrap();
    let (src, pg) = (format!("sqlite://{}", dir.display()), db.url());

    let (code, out, err) = calltrail(&["copy", "--from", &src, "--to", &pg], "");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("copied ") && out.contains("every table's count checked"),
        "{out}"
    );
    assert!(err.contains("\ncalls: ") || err.starts_with("calls: "), "{err}");
    // Again into the same database: refused, and nothing changes.
    let (code, _, err) = calltrail(&["copy", "--from", &src, "--to", &pg], "");
    assert_eq!(code, 2);
    assert!(err.contains("--to: the database already holds data"), "{err}");

    // Back into a new data folder: the same rows, table by table.
    let back = temp_dir("copy-back");
    let (code, _, err) = calltrail(
        &["copy", "--from", &pg, "--to", &format!("sqlite://{}", back.display())],
        "",
    );
    assert_eq!(code, 0, "{err}");
    let (before, after) = (
        dump(&dir.join("calltrail.sqlite")),
        dump(&back.join("calltrail.sqlite")),
    );
    assert_eq!(before.len(), after.len());
    for ((name, rows), (name_back, rows_back)) in before.iter().zip(&after) {
        assert_eq!(name, name_back);
        assert_eq!(rows.len(), rows_back.len(), "{name}");
        assert!(rows == rows_back, "{name}: the rows differ after the round trip");
    }
    let calls = &before.iter().find(|(n, _)| n == "calls").unwrap().1;
    // The demo spreads about as many calls as asked for over its days (a few fall after "now").
    assert!(calls.len() > 2_900, "{}", calls.len());
    let Value::Integer(last_id) = calls.last().unwrap()[0] else {
        panic!("calls.id is an integer")
    };

    // The copy on PostgreSQL serves: the demo owner's token, the same counts and number search
    // as the original.
    let original = TestApp::start_on(
        open_database(calltrail::store::Database::Sqlite(dir.clone())),
        dir.clone(),
        |_| {},
    )
    .await;
    let copy = TestApp::start_on(
        open_database(calltrail::store::Database::Postgres {
            url: pg.clone(),
            read_url: None,
        }),
        temp_dir("copy-pg"),
        |_| {},
    )
    .await;
    for query in ["", "number=495", "result=answered", "number=7916&kind=incoming"] {
        let path = format!("/api/v1/calls?limit=50&{query}");
        let (s1, a) = original.get(&token, &path).await;
        let (s2, b) = copy.get(&token, &path).await;
        assert_eq!((s1, s2), (200, 200), "{a} {b}");
        assert_eq!(a["total"], b["total"], "{query}");
        let ids = |v: &serde_json::Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(ids(&a), ids(&b), "{query}");
    }
    // New rows on PostgreSQL get new ids, after the copied ones.
    let owner = copy.owner().await;
    copy.ingest_ok(
        &owner,
        serde_json::json!([{"external_id": "after-copy", "kind": "incoming", "from": "+79160000000",
            "to": "+74950000001", "started_at": "2026-11-20T10:00:00Z", "ended_at": "2026-11-20T10:01:00Z",
            "result": "answered"}]),
    )
    .await;
    let id: i64 = copy
        .store
        .read(|conn| {
            Ok(
                conn.query_row("SELECT id FROM calls WHERE external_id = 'after-copy'", (), |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(id, last_id + 1);
    original.stop().await;
    copy.stop().await;
    drop(db);
}

#[test]
fn copy_names_a_bad_source_or_target() {
    let (code, _, err) = calltrail(&["copy", "--from", "mysql://x", "--to", "postgres://p/db"], "");
    assert_eq!(code, 2);
    assert!(
        err.contains("--from: expected sqlite://DATA-FOLDER or postgres://"),
        "{err}"
    );
    let missing = temp_dir("copy-missing");
    let from = format!("sqlite://{}", missing.join("nothing").display());
    let (code, _, err) = calltrail(&["copy", "--from", &from, "--to", "sqlite:///tmp/x"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--from: there is no calltrail database at"), "{err}");
    let (code, _, err) = calltrail(&["copy", "--from", "sqlite:///a", "--to", "sqlite:///a"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--to: is the same database as --from"), "{err}");
}
