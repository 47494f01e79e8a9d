//! The HTTP contract, driven over a real socket: ingest → search with every filter → cursor
//! paging during ingest → out-of-order updates → bad input → live events → isolation.

use std::time::Duration;

use crate::common::{error_field, TestApp, MAX_BODY};
use calltrail::domain::{Role, TokenScope};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Six calls on fixed days, one of each kind and several outcomes.
fn dataset() -> Value {
    json!([
        {"external_id": "c1", "kind": "incoming", "from": "+79161234567", "to": "+74950000001",
         "scenario_started_at": "2026-11-10T09:00:00Z", "answered_at": "2026-11-10T09:00:20Z", "ended_at": "2026-11-10T09:03:20Z",
         "result": "answered", "operator": "ivanova", "operator_name": "Анна Иванова", "group": "sales", "queue": "sales-line",
         "scenario": {"id": "inbound", "name": "Входящая линия", "kind": "operator", "url": "https://kit.example/s/inbound"},
         "price": "0", "currency": "RUB", "tags": ["vip"], "topics": ["billing/refund"],
         "recording_url": "https://pbx.example/rec/c1.mp3",
         "flow": [{"at": "2026-11-10T09:00:00Z", "block": "Start"}, {"at": "2026-11-10T09:00:20Z", "block": "Connect operator"}]},
        {"external_id": "c2", "kind": "incoming", "from": "+79031112233", "to": "+74950000001",
         "scenario_started_at": "2026-11-10T10:00:00Z", "ended_at": "2026-11-10T10:00:40Z",
         "result": "ended_in_ivr", "queue": "support-line",
         "scenario": {"id": "ivr", "name": "Голосовое меню", "kind": "automated"}},
        {"external_id": "c3", "kind": "softphone_outgoing", "from": "+74950000002", "to": "+79169998877",
         "dial_started_at": "2026-11-10T11:00:00Z", "answered_at": "2026-11-10T11:00:07Z", "ended_at": "2026-11-10T11:02:07Z",
         "result": "answered", "operator": "petrov", "group": "support", "price": "3.1500", "currency": "RUB",
         "tags": ["complaint", "vip"],
         "completion_code": {"id": "callback", "name": "Перезвонить", "callback_at": "2026-11-11T10:00:00Z"}},
        {"external_id": "c4", "kind": "auto_campaign", "from": "+74950000003", "to": "+79035556677",
         "dial_started_at": "2026-11-10T12:00:00Z", "ended_at": "2026-11-10T12:00:30Z", "result": "no_answer",
         "campaign": {"id": "nov", "name": "November renewals"},
         "scenario": {"id": "robo", "name": "Robot", "kind": "automated"}},
        {"external_id": "c5", "kind": "operator_campaign", "from": "+74950000003", "to": "+79161230000",
         "dial_started_at": "2026-11-10T13:00:00Z", "answered_at": "2026-11-10T13:00:05Z",
         "amd_detected_at": "2026-11-10T13:00:08Z", "ended_at": "2026-11-10T13:00:30Z", "result": "voicemail",
         "campaign": {"id": "nov", "name": "November renewals"}, "operator": "ivanova", "group": "sales", "attempts": 2,
         "scenario": {"id": "outbound", "name": "Outbound sales", "kind": "operator"}, "topics": ["billing/invoice"]},
        {"external_id": "c6", "kind": "incoming", "from": "+79990001122", "to": "+74950000001",
         "scenario_started_at": "2026-11-12T08:00:00Z", "ended_at": "2026-11-12T08:01:00Z",
         "result": "abandoned", "queue": "sales-line"}
    ])
}

#[tokio::test]
async fn health_and_openapi_need_no_credentials() {
    let app = TestApp::start("meta").await;
    let r = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let doc: Value = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/calls",
        "/api/v1/calls/{id}",
        "/api/v1/calls/live",
        "/api/v1/ingest/calls",
        "/api/v1/queues",
        "/api/v1/users",
        "/healthz",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["CallView"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let (status, body) = app.get("", "/api/v1/nothing-here").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    app.stop().await;
}

#[tokio::test]
async fn credentials_are_required_and_scoped() {
    let app = TestApp::start("auth").await;
    let r = app.http.get(format!("{}/api/v1/calls", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(app.get("ct_forged", "/api/v1/calls").await.0, 401);

    let ingest = app.token("default", "pbx", Role::Admin, TokenScope::Ingest).await;
    assert_eq!(app.get(&ingest, "/api/v1/calls").await.0, 403);
    assert_eq!(app.get(&ingest, "/api/v1/queues").await.0, 403);
    assert_eq!(app.ingest(&ingest, dataset()).await.0, 200);

    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    assert_eq!(app.ingest(&supervisor, json!([{"external_id": "x"}])).await.0, 403);
    app.stop().await;
}

#[tokio::test]
async fn ingested_calls_come_back_exactly() {
    let app = TestApp::start("roundtrip").await;
    let owner = app.owner().await;
    let out = app.ingest_ok(&owner, dataset()).await;
    assert_eq!(out, json!({"created": 6, "updated": 0, "unchanged": 0, "pending": 0}));

    let (_, page) = app
        .get(&owner, "/api/v1/calls?from=2026-11-10&to=2026-11-11&tz=UTC")
        .await;
    assert_eq!(page["total"], 5);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["c5", "c4", "c3", "c2", "c1"], "newest first");
    let c3 = &page["items"][2];
    assert_eq!(c3["direction"], "outgoing");
    assert_eq!(c3["kind"], "softphone_outgoing");
    assert_eq!(
        (c3["ring_seconds"].as_u64(), c3["talk_seconds"].as_u64()),
        (Some(7), Some(120))
    );
    assert_eq!(c3["started_at"], "2026-11-10T11:00:00Z");
    assert_eq!(
        (c3["price"].as_str(), c3["currency"].as_str()),
        (Some("3.1500"), Some("RUB"))
    );
    assert_eq!(c3["result"], "answered");
    assert_eq!(c3["success"], true);
    assert_eq!(c3["operator"]["login"], "petrov");
    assert_eq!(c3["completion_code"]["name"], "Перезвонить");
    assert_eq!(c3["completion_code"]["callback_at"], "2026-11-11T10:00:00Z");
    let tag_names: Vec<&str> = c3["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tag_names, ["complaint", "vip"]);

    let c5 = &page["items"][0];
    assert_eq!(
        (c5["ring_seconds"].as_u64(), c5["talk_seconds"].as_u64()),
        (Some(5), Some(3)),
        "AMD ends the talk"
    );
    assert_eq!(c5["success"], false);
    assert_eq!(c5["attempts"], 2);
    assert_eq!(c5["scenario"]["kind"], "operator");
    let c2 = &page["items"][3];
    assert_eq!(c2["ring_seconds"], Value::Null, "incoming calls have no ring duration");
    assert_eq!(c2["talk_seconds"], 40);
    assert_eq!(c2["operator"], Value::Null);
    let c4 = &page["items"][1];
    assert_eq!(
        (c4["ring_seconds"].as_u64(), c4["talk_seconds"].as_u64()),
        (Some(30), Some(0))
    );

    // One call, with details; output in another time zone when asked.
    let c1_id = page["items"][4]["id"].as_str().unwrap().to_string();
    let (status, c1) = app
        .get(&owner, &format!("/api/v1/calls/{c1_id}?tz=Europe/Moscow"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(c1["started_at"], "2026-11-10T12:00:00+03:00");
    assert_eq!(c1["talk_seconds"], 200);
    // Named by URL, not fetched yet (pbx.example does not answer): no recording to play yet.
    assert_eq!(c1["has_recording"], false);
    assert_eq!(c1["details"]["recording_url"], "https://pbx.example/rec/c1.mp3");
    assert_eq!(c1["details"]["recording"]["state"], "pending");
    assert_eq!(c1["details"]["recording"]["url"], Value::Null);
    assert_eq!(c1["scenario"]["url"], "https://kit.example/s/inbound");
    assert_eq!(c1["topics"][0]["name"], "billing/refund");
    assert_eq!(c1["details"]["flow"][1]["block"], "Connect operator");
    assert_eq!(c1["details"]["answered_at"], "2026-11-10T12:00:20+03:00");
    assert_eq!(app.get(&owner, "/api/v1/calls/999999").await.0, 404);
    assert_eq!(app.get(&owner, "/api/v1/calls/not-a-number").await.0, 404);

    // The directory learned what the calls named.
    let (_, queues) = app.get(&owner, "/api/v1/queues").await;
    let names: Vec<&str> = queues["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sales-line", "support-line"]);
    let (_, topics) = app.get(&owner, "/api/v1/topics").await;
    let names: Vec<&str> = topics["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing", "billing/invoice", "billing/refund"]);
    let (_, users) = app.get(&owner, "/api/v1/users").await;
    let ivanova = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "ivanova")
        .unwrap()
        .clone();
    assert_eq!(
        (ivanova["name"].as_str(), ivanova["role"].as_str()),
        (Some("Анна Иванова"), Some("operator"))
    );
    for list in [
        "/api/v1/scenarios",
        "/api/v1/campaigns",
        "/api/v1/completion-codes",
        "/api/v1/tags",
        "/api/v1/groups",
    ] {
        let (status, body) = app.get(&owner, list).await;
        assert_eq!(status, 200);
        assert!(!body["items"].as_array().unwrap().is_empty(), "{list}");
    }

    // Acknowledged means durable: a new server over the same folder still has every call.
    let dir = app.stop().await;
    let again = TestApp::start_in(dir).await;
    assert_eq!(again.search_ids(&owner, "").await, ["c1", "c2", "c3", "c4", "c5", "c6"]);
    again.stop().await;
}

#[tokio::test]
async fn every_filter_selects_exactly_its_calls() {
    let app = TestApp::start("filters").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, dataset()).await;
    // A call from a minute ago, for the presets.
    let recent = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    app.ingest_ok(&owner, json!([{"external_id": "now", "kind": "incoming", "scenario_started_at": recent, "result": "answered", "from": "+79161112222"}]))
        .await;

    let id = |list: &'static str, name: &'static str| {
        let app = &app;
        let owner = owner.clone();
        async move { app.dir_id(&owner, list, "name", name).await }
    };
    let ivanova = app.dir_id(&owner, "/api/v1/users", "login", "ivanova").await;
    let petrov = app.dir_id(&owner, "/api/v1/users", "login", "petrov").await;
    let sales = id("/api/v1/groups", "sales").await;
    let sales_line = id("/api/v1/queues", "sales-line").await;
    let nov = id("/api/v1/campaigns", "November renewals").await;
    let ivr = id("/api/v1/scenarios", "Голосовое меню").await;
    let callback = id("/api/v1/completion-codes", "Перезвонить").await;
    let vip = id("/api/v1/tags", "vip").await;
    let complaint = id("/api/v1/tags", "complaint").await;
    let refund = id("/api/v1/topics", "billing/refund").await;
    let invoice = id("/api/v1/topics", "billing/invoice").await;
    let billing = id("/api/v1/topics", "billing").await;

    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            "from=2026-11-10&to=2026-11-11&tz=UTC".into(),
            vec!["c1", "c2", "c3", "c4", "c5"],
        ),
        (
            "from=2026-11-10T10:00:00Z&to=2026-11-10T12:00:00Z".into(),
            vec!["c2", "c3"],
        ),
        // Moscow's 10 November ends at 21:00 UTC, so c6 (12 November) stays out either way.
        ("from=2026-11-12&to=2026-11-13&tz=Europe/Moscow".into(), vec!["c6"]),
        ("preset=last_7_days".into(), vec!["now"]),
        (
            "preset=today&tz=UTC".into(),
            if chrono::Utc::now().time() > chrono::NaiveTime::from_hms_opt(0, 1, 0).unwrap() {
                vec!["now"]
            } else {
                vec![]
            },
        ),
        ("direction=incoming".into(), vec!["c1", "c2", "c6", "now"]),
        ("direction=outgoing".into(), vec!["c3", "c4", "c5"]),
        ("kind=auto_campaign&kind=operator_campaign".into(), vec!["c4", "c5"]),
        ("direction=incoming&kind=auto_campaign".into(), vec![]),
        ("number=1234".into(), vec!["c1"]),
        ("number=916".into(), vec!["c1", "c3", "c5", "now"]),
        ("number=0000003".into(), vec!["c4", "c5"]),
        ("number=%2B7 (903) 111".into(), vec!["c2"]),
        ("talk_min=100".into(), vec!["c1", "c3"]),
        ("talk_max=40&from=2026-11-01".into(), vec!["c2", "c4", "c5", "now"]),
        ("talk_min=40&talk_max=60".into(), vec!["c2", "c6"]),
        (format!("operator={ivanova}"), vec!["c1", "c5"]),
        (format!("operator={ivanova}&operator={petrov}"), vec!["c1", "c3", "c5"]),
        (format!("group={sales}"), vec!["c1", "c5"]),
        (format!("queue={sales_line}"), vec!["c1", "c6"]),
        (format!("campaign={nov}"), vec!["c4", "c5"]),
        (format!("scenario={ivr}"), vec!["c2"]),
        ("scenario_kind=automated".into(), vec!["c2", "c4"]),
        ("scenario_kind=operator".into(), vec!["c1", "c5"]),
        (format!("completion_code={callback}"), vec!["c3"]),
        (format!("tag={vip}"), vec!["c1", "c3"]),
        (format!("tag={complaint}"), vec!["c3"]),
        (format!("tag={complaint}&tag={vip}"), vec!["c1", "c3"]),
        (format!("topic={refund}"), vec!["c1"]),
        (format!("topic={refund}&topic={invoice}"), vec!["c1", "c5"]),
        (format!("topic={billing}"), vec!["c1", "c5"]),
        ("result=answered&result=voicemail".into(), vec!["c1", "c3", "c5", "now"]),
        (
            "direction=incoming&result=answered&from=2026-11-01&to=2026-11-20".into(),
            vec!["c1"],
        ),
        (format!("operator={ivanova}&tag={vip}&result=answered"), vec!["c1"]),
    ];
    for (query, expected) in cases {
        assert_eq!(app.search_ids(&owner, &query).await, expected, "{query}");
    }
    app.stop().await;
}

/// Number searches, counted and paged: each call once even when both its numbers match, exact
/// with other filters and through cursors, whether the page is found by sorting the matches (a
/// rare fragment) or by walking the time index (a common one).
#[tokio::test]
async fn number_searches_count_and_page_each_call_once() {
    let app = TestApp::start("number-pages").await;
    let owner = app.owner().await;
    // 600 calls over 60 days; every 7th has 55512 in the caller's number, every 11th in the
    // callee's (so every 77th in both); the other numbers are without it.
    let calls: Vec<Value> = (0..600)
        .map(|i| {
            let caller = if i % 7 == 0 { format!("+791655512{i:03}") } else { format!("+7903{i:07}") };
            let callee = if i % 11 == 0 { format!("+749555512{i:03}") } else { format!("+7812{i:07}") };
            let day = 1 + i / 10;
            json!({"external_id": format!("n{i:03}"),
                   "kind": if i % 2 == 0 { "incoming" } else { "softphone_outgoing" },
                   "from": caller, "to": callee,
                   "started_at": format!("2026-0{}-{:02}T{:02}:{:02}:00Z", 8 + (day - 1) / 30, 1 + (day - 1) % 30, 8 + i % 10, i % 60),
                   "ended_at": format!("2026-0{}-{:02}T{:02}:{:02}:30Z", 8 + (day - 1) / 30, 1 + (day - 1) % 30, 8 + i % 10, i % 60),
                   "result": "answered"})
        })
        .collect();
    for batch in calls.chunks(150) {
        assert_eq!(app.ingest_ok(&owner, json!(batch)).await["created"], 150);
    }
    let expected = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        // Newest first: later index, later start.
        (0..600usize)
            .rev()
            .filter(|i| keep(*i))
            .map(|i| format!("n{i:03}"))
            .collect()
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("number=55512", expected(&|i| i % 7 == 0 || i % 11 == 0)),
        (
            "number=55512&direction=incoming",
            expected(&|i| (i % 7 == 0 || i % 11 == 0) && i % 2 == 0),
        ),
        // 11 August to 4 September: days 11 to 34 of the 60.
        (
            "number=55512&from=2026-08-11&to=2026-09-05&tz=UTC",
            expected(&|i| (i % 7 == 0 || i % 11 == 0) && (11..=34).contains(&(1 + i / 10))),
        ),
        // A common fragment: every callee of the 812 area and every 903 caller.
        ("number=7812", expected(&|i| i % 11 != 0)),
        // Caller and callee both match for most calls (+7903 0000iii → +7812 0000iii): each once
        // in the total and on the pages.
        ("number=0000", expected(&|i| i % 77 != 0)),
    ];
    for (query, want) in cases {
        let mut got = vec![];
        let mut url = format!("/api/v1/calls?limit=7&{query}");
        loop {
            let (status, page) = app.get(&owner, &url).await;
            assert_eq!(status, 200, "{query}: {page}");
            assert_eq!(page["total"].as_u64(), Some(want.len() as u64), "{query}: total");
            let items = page["items"].as_array().unwrap();
            // Full pages until the last.
            if page["next_cursor"].is_string() {
                assert_eq!(items.len(), 7, "{query}: {url}");
            }
            got.extend(items.iter().map(|c| c["external_id"].as_str().unwrap().to_string()));
            match page["next_cursor"].as_str() {
                Some(cursor) => url = format!("/api/v1/calls?limit=7&{query}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(got, want, "{query}");
    }
    // A number search's cursor is checked before anything is read (on PostgreSQL its page and
    // count run side by side): another search's cursor is refused.
    let (_, first) = app.get(&owner, "/api/v1/calls?limit=7&number=55512").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, body) = app
        .get(&owner, &format!("/api/v1/calls?limit=7&number=55513&cursor={cursor}"))
        .await;
    assert_eq!((status, error_field(&body)), (400, "cursor"));
    app.stop().await;
}

#[tokio::test]
async fn cursor_pages_stay_stable_while_calls_arrive() {
    let app = TestApp::start("paging").await;
    let owner = app.owner().await;
    let batch = |prefix: &str, start_hour: u32, n: usize| {
        Value::Array(
            (0..n)
                .map(|i| {
                    json!({"external_id": format!("{prefix}{i:03}"), "kind": "incoming",
                           "scenario_started_at": format!("2026-11-10T{:02}:{:02}:{:02}Z", start_hour + (i / 60) as u32 / 60, (i / 60) % 60, i % 60),
                           "result": "answered", "from": "+79160000000"})
                })
                .collect(),
        )
    };
    // 120 calls, two of them sharing each second so that the id tie-break matters.
    app.ingest_ok(&owner, batch("a", 8, 60)).await;
    app.ingest_ok(&owner, batch("b", 8, 60)).await;

    let (_, first) = app.get(&owner, "/api/v1/calls?limit=50").await;
    assert_eq!(first["total"], 120);
    let mut seen: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_id"].as_str().unwrap().to_string())
        .collect();
    let mut cursor = first["next_cursor"].as_str().unwrap().to_string();

    // Calls arrive between pages: newer ones, and late ones from before the cursor.
    app.ingest_ok(&owner, batch("n", 12, 30)).await;
    app.ingest_ok(&owner, batch("o", 6, 5)).await;
    loop {
        let (status, page) = app
            .get(&owner, &format!("/api/v1/calls?limit=50&cursor={cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], 155, "the total counts what matches now");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["external_id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no call is shown twice");
    assert!(
        !seen.iter().any(|id| id.starts_with('n')),
        "newer calls do not shift later pages"
    );
    for prefix in ["a", "b", "o"] {
        assert_eq!(
            seen.iter().filter(|id| id.starts_with(prefix)).count(),
            if prefix == "o" { 5 } else { 60 },
            "{prefix}"
        );
    }

    // A cursor is bound to its search and cannot be forged.
    let (_, p) = app.get(&owner, "/api/v1/calls?limit=10").await;
    let c = p["next_cursor"].as_str().unwrap();
    let (status, body) = app
        .get(&owner, &format!("/api/v1/calls?limit=10&direction=outgoing&cursor={c}"))
        .await;
    assert_eq!((status, error_field(&body)), (400, "cursor"));
    let mut forged = c.to_string();
    forged.replace_range(0..2, if forged.starts_with("AA") { "AB" } else { "AA" });
    let (status, body) = app
        .get(&owner, &format!("/api/v1/calls?limit=10&cursor={forged}"))
        .await;
    assert_eq!((status, error_field(&body)), (400, "cursor"));
    let (status, body) = app.get(&owner, "/api/v1/calls?cursor=garbage!").await;
    assert_eq!((status, error_field(&body)), (400, "cursor"));
    app.stop().await;
}

#[tokio::test]
async fn updates_merge_in_place_whatever_their_order() {
    let app = TestApp::start("updates").await;
    let owner = app.owner().await;
    // The completion code and a note arrive before the call itself.
    let early = json!([{"external_id": "late-call", "completion_code": {"id": "success", "name": "Успешно"}, "tags": ["vip"],
                        "notes": [{"id": "n1", "author": "ivanova", "at": "2026-11-10T09:10:00Z", "text": "Доволен"}]}]);
    assert_eq!(
        app.ingest_ok(&owner, early.clone()).await,
        json!({"created": 0, "updated": 0, "unchanged": 0, "pending": 1})
    );
    assert_eq!(
        app.ingest_ok(&owner, early).await["unchanged"],
        1,
        "the same early update is kept once"
    );
    assert_eq!(
        app.search_ids(&owner, "").await,
        Vec::<String>::new(),
        "an update alone is not a call"
    );

    let call = json!([{"external_id": "late-call", "kind": "operator_campaign", "dial_started_at": "2026-11-10T09:00:00Z",
                       "answered_at": "2026-11-10T09:00:10Z", "ended_at": "2026-11-10T09:05:10Z", "result": "answered",
                       "operator": "ivanova", "from": "+74950000001", "to": "+79160000001"}]);
    assert_eq!(
        app.ingest_ok(&owner, call.clone()).await,
        json!({"created": 1, "updated": 0, "unchanged": 0, "pending": 0})
    );
    let (_, page) = app.get(&owner, "/api/v1/calls").await;
    let c = &page["items"][0];
    assert_eq!(c["completion_code"]["name"], "Успешно");
    assert_eq!(c["tags"][0]["name"], "vip");
    assert_eq!(c["notes"][0]["text"], "Доволен");
    assert_eq!(c["talk_seconds"], 300);

    // Re-sending the call changes nothing (and keeps what the updates brought).
    assert_eq!(
        app.ingest_ok(&owner, call).await,
        json!({"created": 0, "updated": 0, "unchanged": 1, "pending": 0})
    );
    // A partial update: tags are a set, notes add by id, absent fields stay.
    let update = json!([{"external_id": "late-call", "tags": ["vip", "complaint"],
                         "notes": [{"id": "n2", "author": "petrov", "at": "2026-11-10T09:20:00Z", "text": "Перезвонил"}],
                         "ended_at": "2026-11-10T09:06:10Z"}]);
    assert_eq!(app.ingest_ok(&owner, update.clone()).await["updated"], 1);
    assert_eq!(app.ingest_ok(&owner, update).await["unchanged"], 1);
    let (_, page) = app.get(&owner, "/api/v1/calls").await;
    let c = &page["items"][0];
    assert_eq!(page["total"], 1, "updated in place, never duplicated");
    assert_eq!(c["tags"].as_array().unwrap().len(), 2);
    assert_eq!(c["notes"].as_array().unwrap().len(), 2);
    assert_eq!(c["talk_seconds"], 360, "durations follow the new timestamps");
    assert_eq!(c["operator"]["login"], "ivanova");
    assert_eq!(c["completion_code"]["name"], "Успешно");
    // null clears a field.
    app.ingest_ok(&owner, json!([{"external_id": "late-call", "completion_code": null}]))
        .await;
    assert_eq!(
        app.get(&owner, "/api/v1/calls").await.1["items"][0]["completion_code"],
        Value::Null
    );

    // NDJSON works the same way.
    let nd = "{\"external_id\":\"nd1\",\"kind\":\"incoming\",\"scenario_started_at\":\"2026-11-10T08:00:00Z\"}\n\n{\"external_id\":\"nd2\",\"kind\":\"incoming\",\"scenario_started_at\":\"2026-11-10T08:01:00Z\"}\n";
    let (status, out) = app
        .post_raw(
            &owner,
            "/api/v1/ingest/calls",
            "application/x-ndjson",
            nd.as_bytes().to_vec(),
        )
        .await;
    assert_eq!((status, out["created"].as_u64()), (200, Some(2)));
    app.stop().await;
}

async fn total(app: &TestApp, token: &str) -> Option<u64> {
    app.get(token, "/api/v1/calls?limit=1").await.1["total"].as_u64()
}

#[tokio::test]
async fn bad_input_is_a_clear_error_and_changes_nothing() {
    let app = TestApp::start("bad").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, dataset()).await;
    assert_eq!(total(&app, &owner).await, Some(6));

    let valid = json!({"external_id": "ok1", "kind": "incoming", "scenario_started_at": "2026-11-10T08:00:00Z"});
    let bad_batches: Vec<(Value, &str, Option<u64>)> = vec![
        (
            json!([valid, {"external_id": "x", "kind": "outbound"}]),
            "kind",
            Some(1),
        ),
        (json!([valid, {"external_id": "x", "result": "won"}]), "result", Some(1)),
        (
            json!([{"external_id": "x", "kind": "incoming", "scenario_started_at": "2026-11-10T10:00:00Z", "ended_at": "2026-11-10T09:00:00Z"}]),
            "ended_at",
            Some(0),
        ),
        (
            json!([valid, {"external_id": "x", "kind": "softphone_outgoing", "dial_started_at": "2026-11-10T10:00:00Z", "answered_at": "2026-11-10T09:59:00Z"}]),
            "answered_at",
            Some(1),
        ),
        (
            json!([{"external_id": "x", "dial_started_at": "10 Nov 2026"}]),
            "dial_started_at",
            Some(0),
        ),
        (json!([{"kind": "incoming"}]), "external_id", Some(0)),
        (json!([{"external_id": ""}]), "external_id", Some(0)),
        (json!([{"external_id": "x", "oprator": "ivanova"}]), "oprator", Some(0)),
        (json!([{"external_id": "x", "price": "cheap"}]), "price", Some(0)),
        (
            json!([{"external_id": "x", "currency": "roubles"}]),
            "currency",
            Some(0),
        ),
        (
            json!([{"external_id": "x", "talk_seconds": 90000}]),
            "talk_seconds",
            Some(0),
        ),
        (
            json!([{"external_id": "x", "notes": [{"id": "n", "at": "yesterday", "text": "t"}]}]),
            "notes[0].at",
            Some(0),
        ),
        (json!({"not": "a record"}), "not", Some(0)),
        (json!("a string"), "body", None),
    ];
    for (body, field, index) in bad_batches {
        let (status, err) = app.ingest(&owner, body.clone()).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert_eq!(error_field(&err), field, "{body} → {err}");
        assert_eq!(err["error"]["index"].as_u64(), index, "{body} → {err}");
        assert_eq!(err["error"]["code"], "invalid");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, err) = app
        .post_raw(
            &owner,
            "/api/v1/ingest/calls",
            "application/json",
            b"[{\"external_id\": ".to_vec(),
        )
        .await;
    assert_eq!((status, error_field(&err)), (400, "body"));
    let (status, _) = app
        .post_raw(&owner, "/api/v1/ingest/calls", "text/xml", b"<call/>".to_vec())
        .await;
    assert_eq!(status, 415);
    let huge = format!("[{}]", vec![valid.to_string(); MAX_BODY / 60].join(","));
    let (status, err) = app
        .post_raw(&owner, "/api/v1/ingest/calls", "application/json", huge.into_bytes())
        .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(
        total(&app, &owner).await,
        Some(6),
        "nothing of the bad batches was stored"
    );

    let bad_searches = [
        ("number=12", "number"),
        ("number=12ab5", "number"),
        ("talk_min=-1", "talk_min"),
        ("talk_max=86401", "talk_max"),
        ("talk_min=600&talk_max=60", "talk_min"),
        ("operator=999", "operator"),
        ("operator=abc", "operator"),
        ("tag=424242", "tag"),
        ("group=77", "group"),
        ("result=Answered", "result"),
        ("direction=sideways", "direction"),
        ("kind=outbound", "kind"),
        ("preset=next_week", "preset"),
        ("from=25.11.2026", "from"),
        ("from=2026-11-12&to=2026-11-10", "to"),
        ("tz=Moon/Base", "tz"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("colour=red", "colour"),
    ];
    for (query, field) in bad_searches {
        let (status, err) = app.get(&owner, &format!("/api/v1/calls?{query}")).await;
        assert_eq!((status, error_field(&err)), (400, field), "{query}: {err}");
    }
    app.stop().await;
}

#[tokio::test]
async fn accounts_are_isolated() {
    let app = TestApp::start("accounts").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, dataset()).await;
    let other = app.token("acme", "boss", Role::Owner, TokenScope::Full).await;
    assert_eq!(app.get(&other, "/api/v1/calls").await.1["total"], 0);
    assert!(app.get(&other, "/api/v1/queues").await.1["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, page) = app.get(&owner, "/api/v1/calls?limit=1").await;
    let id = page["items"][0]["id"].as_str().unwrap();
    assert_eq!(app.get(&other, &format!("/api/v1/calls/{id}")).await.0, 404);
    // The same external id in another account is another call.
    assert_eq!(app.ingest_ok(&other, json!([dataset()[0].clone()])).await["created"], 1);
    assert_eq!(app.get(&owner, "/api/v1/calls?limit=1").await.1["total"], 6);
    // Ids from the other account's directory are unknown here.
    let acme_queue = app.dir_id(&other, "/api/v1/queues", "name", "sales-line").await;
    let (status, err) = app.get(&owner, &format!("/api/v1/calls?queue={acme_queue}")).await;
    assert_eq!((status, error_field(&err)), (400, "queue"));
    app.stop().await;
}

#[tokio::test]
async fn restricted_roles_see_no_price_or_scenario_link() {
    let app = TestApp::start("redact").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, dataset()).await;
    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    app.set_group(&owner, "sales", &["ivanova"], &["sup"], false).await;
    let (_, page) = app
        .get(&supervisor, "/api/v1/calls?tz=UTC&from=2026-11-10&to=2026-11-11")
        .await;
    // Only ivanova's calls of that day (c5, c1) are in the supervisor's scope.
    assert_eq!(page["total"], 2);
    let c1 = &page["items"][1];
    assert_eq!(c1["external_id"], "c1");
    assert!(c1.get("price").is_none() && c1.get("currency").is_none());
    assert!(c1["scenario"].get("url").is_none());
    assert_eq!(c1["scenario"]["name"], "Входящая линия");
    let (_, full) = app
        .get(&owner, "/api/v1/calls?tz=UTC&from=2026-11-10&to=2026-11-11")
        .await;
    assert_eq!(full["items"][4]["price"], "0.0000");
    let id = c1["id"].as_str().unwrap();
    assert_eq!(app.get(&supervisor, &format!("/api/v1/calls/{id}")).await.0, 403);
    app.stop().await;
}

/// Reads SSE events until one named `call` arrives; returns its data.
async fn next_call_event(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
) -> Value {
    loop {
        if let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: call") {
                let data: String = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                return serde_json::from_str(&data).expect("event json");
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event within 10 s")
            .expect("stream open")
            .expect("chunk");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn live_events_follow_the_filter() {
    let app = TestApp::start("live").await;
    let owner = app.owner().await;
    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    // Operators join groups through the directory before their first call arrives.
    for login in ["ivanova", "petrov"] {
        let body = json!({"login": login, "role": "operator"});
        assert_eq!(app.send("POST", &owner, "/api/v1/users", Some(body)).await.0, 201);
    }
    app.set_group(&owner, "sales", &["ivanova"], &["sup"], false).await;
    app.set_group(&owner, "support", &["petrov"], &["sup"], false).await;
    let mut incoming = app.live(&owner, "direction=incoming").await;
    let mut restricted = app.live(&supervisor, "").await;
    // Give the subscriptions a moment to register before the writes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let other = app.token("acme", "boss", Role::Owner, TokenScope::Full).await;
    app.ingest_ok(&other, json!([dataset()[0].clone()])).await;
    app.ingest_ok(&owner, json!([dataset()[2].clone()])).await; // outgoing: filtered out
    app.ingest_ok(&owner, json!([dataset()[0].clone()])).await; // incoming
    let mut buf = String::new();
    let event = next_call_event(&mut incoming, &mut buf).await;
    assert_eq!(event["external_id"], "c1");
    assert_eq!(event["talk_seconds"], 200);
    assert_eq!(event["price"], "0.0000");
    // An update to the same call is an event too.
    app.ingest_ok(&owner, json!([{"external_id": "c1", "tags": ["escalated"]}]))
        .await;
    let event = next_call_event(&mut incoming, &mut buf).await;
    assert_eq!(
        (event["external_id"].as_str(), event["tags"][0]["name"].as_str()),
        (Some("c1"), Some("escalated"))
    );

    // The supervisor's stream saw c3 then c1, redacted, and nothing from the other account.
    let mut sbuf = String::new();
    let first = next_call_event(&mut restricted, &mut sbuf).await;
    assert_eq!(first["external_id"], "c3");
    assert!(first.get("price").is_none());
    assert_eq!(next_call_event(&mut restricted, &mut sbuf).await["external_id"], "c1");
    // A bad filter is refused before the stream opens.
    let r = app
        .http
        .get(format!("{}/api/v1/calls/live?number=12", app.base))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    app.stop().await;
}
