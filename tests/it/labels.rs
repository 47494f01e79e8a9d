//! Tag and topic filters test the bits the indexes carry (`store/labels.rs`), then the tags
//! themselves: with more tags than bits, calls whose labels share a bit must still be told apart,
//! and the bits must follow a call's labels when they change.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::common::TestApp;

#[tokio::test]
async fn tag_and_topic_filters_are_exact_when_labels_share_bits() {
    let app = TestApp::start("labels").await;
    let owner = app.owner().await;
    // 40 calls, each with a tag and a topic of its own: 40 tags over 32 bits, 40 topics over 31.
    let calls: Vec<_> = (0..40)
        .map(|i| {
            json!({"external_id": format!("l{i:02}"), "kind": "incoming", "from": "+79160000000",
                   "scenario_started_at": format!("2026-11-10T09:{i:02}:00Z"), "result": "answered",
                   "tags": [format!("t{i:02}")], "topics": [format!("p{i:02}")]})
        })
        .collect();
    app.ingest_ok(&owner, json!(calls)).await;
    // Labels change: a call takes another call's tag, one loses its tags, one gets a second topic.
    app.ingest_ok(
        &owner,
        json!([
            {"external_id": "l00", "tags": ["t39", "t05"]},
            {"external_id": "l01", "tags": []},
            {"external_id": "l02", "topics": ["p02", "p33"]},
        ]),
    )
    .await;
    let mut tagged: BTreeMap<String, BTreeSet<String>> = (0..40)
        .map(|i| (format!("t{i:02}"), BTreeSet::from([format!("l{i:02}")])))
        .collect();
    tagged.get_mut("t00").unwrap().clear();
    tagged.get_mut("t01").unwrap().clear();
    tagged.get_mut("t39").unwrap().insert("l00".into());
    tagged.get_mut("t05").unwrap().insert("l00".into());
    let mut topical: BTreeMap<String, BTreeSet<String>> = (0..40)
        .map(|i| (format!("p{i:02}"), BTreeSet::from([format!("l{i:02}")])))
        .collect();
    topical.get_mut("p33").unwrap().insert("l02".into());

    let ids = |list: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move {
            let (_, body) = app.get(&owner, list).await;
            body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| {
                    (
                        i["name"].as_str().unwrap().to_string(),
                        i["id"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<BTreeMap<String, String>>()
        }
    };
    let tag_ids = ids("/api/v1/tags").await;
    let topic_ids = ids("/api/v1/topics").await;
    assert_eq!((tag_ids.len(), topic_ids.len()), (40, 40));
    // The point of the test: some labels do share a bit.
    let slots = |ids: &BTreeMap<String, String>, m: i64| {
        ids.values()
            .map(|id| id.parse::<i64>().unwrap() % m)
            .collect::<BTreeSet<_>>()
            .len()
    };
    assert!(slots(&tag_ids, 32) < 40 && slots(&topic_ids, 31) < 40);

    for (kind, names, expected) in [("tag", &tag_ids, &tagged), ("topic", &topic_ids, &topical)] {
        for (name, id) in names {
            let want: Vec<String> = expected[name].iter().cloned().collect();
            assert_eq!(
                app.search_ids(&owner, &format!("{kind}={id}")).await,
                want,
                "{kind} {name}"
            );
        }
    }
    // Any of several tags; tags and topics together; with the other filters.
    let tag = |n: &str| tag_ids[n].clone();
    let topic = |n: &str| topic_ids[n].clone();
    let cases = [
        (
            format!("tag={}&tag={}", tag("t05"), tag("t37")),
            vec!["l00", "l05", "l37"],
        ),
        (format!("tag={}&tag={}", tag("t00"), tag("t01")), vec![]),
        (format!("tag={}&topic={}", tag("t05"), topic("p00")), vec!["l00"]),
        (format!("tag={}&topic={}", tag("t39"), topic("p33")), vec![]),
        (
            format!("topic={}&topic={}", topic("p33"), topic("p03")),
            vec!["l02", "l03", "l33"],
        ),
        (
            format!("tag={}&from=2026-11-10T09:05:00Z&to=2026-11-10T09:40:00Z", tag("t39")),
            vec!["l39"],
        ),
        (format!("tag={}&direction=outgoing", tag("t05")), vec![]),
    ];
    for (query, want) in cases {
        assert_eq!(app.search_ids(&owner, &query).await, want, "{query}");
    }
}
