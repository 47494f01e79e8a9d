//! Ingest jobs committed together (group commit) write their log events, tags, topics, notes and
//! counts together before the commit (`store/deferred.rs`). Whatever the jobs of one commit, each
//! must read what the earlier ones wrote, and a job that fails must leave nothing behind.

use std::time::Duration;

use calltrail::domain::{AccountId, CallPatch};
use calltrail::store::ingest::apply_batch;
use calltrail::store::StoreError;
use serde_json::{json, Value};

use crate::common::TestApp;

fn patches(records: Value) -> Vec<CallPatch> {
    serde_json::from_value(records).expect("patches")
}

#[tokio::test]
async fn ingest_jobs_of_one_commit_see_each_other_and_a_failed_one_leaves_nothing() {
    let app = TestApp::start("group-commit").await;
    let owner = app.owner().await;
    let account = AccountId(1);
    let store = app.store.clone();
    // The writer is held by a slow job while the others queue: they are then run in one commit.
    let blocker = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|_, _| {
                    std::thread::sleep(Duration::from_millis(400));
                    Ok(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let at = "2026-11-10T09:00:00Z";
    let jobs = [
        // 0: a new call with a tag, a topic and a note.
        json!([{"external_id": "g1", "kind": "incoming", "started_at": at, "result": "answered", "operator": "ivanova",
                "tags": ["first"], "topics": ["billing"],
                "notes": [{"id": "n1", "at": at, "text": "один"}]}]),
        // 1: the same call again, in another job of the same commit: its tag changes.
        json!([{"external_id": "g1", "tags": ["second"],
                "notes": [{"id": "n2", "at": at, "text": "два"}]}]),
        // 2: a valid call, then an invalid record: the whole job fails.
        json!([{"external_id": "g-lost", "kind": "incoming", "started_at": at, "tags": ["lost"], "topics": ["lost"],
                "notes": [{"id": "n", "at": at, "text": "потеряно"}]},
               {"external_id": "g-bad", "kind": "incoming", "started_at": at, "ended_at": "2026-11-10T08:00:00Z"}]),
        // 3: another new call.
        json!([{"external_id": "g2", "kind": "softphone_outgoing", "started_at": at, "result": "answered", "operator": "ivanova",
                "tags": ["third"]}]),
    ];
    let mut handles = vec![];
    for records in jobs {
        let store = store.clone();
        let batch = patches(records);
        handles.push(tokio::spawn(async move {
            store
                .ingest(move |conn, cache| apply_batch(conn, cache, account, batch, "test"))
                .await
                .map(|o| (o.created, o.updated))
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 4: a job that is not ingest, in the same commit, reads what the ingest jobs wrote.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .write(|conn, _| {
                    let n = |sql: &str| -> Result<i64, StoreError> { Ok(conn.query_row(sql, (), |r| r.get(0))?) };
                    Ok([
                        n("SELECT count(*) FROM call_tags")?,
                        n("SELECT count(*) FROM call_topics")?,
                        n("SELECT count(*) FROM call_notes")?,
                        n("SELECT count(*) FROM call_events")?,
                        n("SELECT count(*) FROM calls")?,
                        n("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM call_counts_hour")?,
                        n("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM call_counts_block")?,
                    ])
                })
                .await
        })
    };
    blocker.await.unwrap().unwrap();
    let mut outcomes = vec![];
    for h in handles {
        outcomes.push(h.await.unwrap());
    }
    assert_eq!(outcomes[0].as_ref().unwrap(), &(1, 0));
    assert_eq!(outcomes[1].as_ref().unwrap(), &(0, 1));
    match &outcomes[2] {
        Err(StoreError::InvalidRecord { index, error }) => assert_eq!((*index, error.field.as_str()), (1, "ended_at")),
        other => panic!("the invalid job: {other:?}"),
    }
    assert_eq!(outcomes[3].as_ref().unwrap(), &(1, 0));
    // Tags: g1 "second", g2 "third"; topics: g1's; notes: g1's two; events: g1 created and
    // updated, g2 created; two calls, each counted once in every bucket level.
    assert_eq!(reader.await.unwrap().unwrap(), [2, 1, 2, 3, 2, 2, 2]);

    // The same through the API.
    let (_, page) = app.get(&owner, "/api/v1/calls").await;
    assert_eq!(page["total"], 2, "{page}");
    let tags: Vec<(&str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            let id = c["external_id"].as_str().unwrap();
            c["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (id, t["name"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(tags.len(), 2);
    assert!(
        tags.contains(&("g1", "second")) && tags.contains(&("g2", "third")),
        "{tags:?}"
    );
    app.stop().await;
}
