//! The reference product's webhooks: the subscription's hash, the four events of a call session
//! merged in every order and with repeats, and what a post that is wrong leaves behind (nothing).

use calltrail::domain::{Role, TokenScope};
use md5::{Digest, Md5};
use serde_json::{json, Value};

use crate::common::{error_field, TestApp};

const DOMAIN: &str = "acme";
const SALT: &str = "s3cret-salt";

fn hash(kind: &str) -> String {
    format!("{:x}", Md5::digest(format!("{SALT}{DOMAIN}{kind}").as_bytes()))
}

/// The four events of call session `session`, as the product posts them (one callback each;
/// `call_finalized` one level deeper, as a public integration shows it).
fn events(session: u64) -> Vec<(&'static str, Value)> {
    let new_calls = json!({"calls": [{
        "agent_campaign_id": 12, "agent_campaign_list_item_id": 5, "attempt_num": 2,
        "call_calls": "[]", "call_cost": "1.25", "call_data": "{}",
        "call_result_code": "Call_Answered", "completion_code": "Call_Answered",
        "datetime_start": "2026-11-25 09:15:02", "dialing_time": 9, "duration": 209,
        "is_incoming": false, "phone_a": "74951112233", "phone_b": "79161234567",
        "record_url": null, "scenario_id": 77, "session_id": session,
        "tags": [{"id": 1, "tag_name": "vip"}]
    }]});
    let wrap_up = json!({
        "call_id": session, "campaign_id": 12, "user_id": "ivanova",
        "wrap_up_code": {"id": 5, "title": "Перезвонить", "type": "callback", "callback_at": "2026-11-26 10:00:00"}
    });
    let finished = json!({
        "session_id": session.to_string(), "is_incoming": false, "datetime_start": "2026-11-25 09:15:02",
        "phone_a": "74951112233", "phone_b": "79161234567", "dialing_time": 9, "duration": 209,
        "call_result_code": "Call_Answered", "user_id": "ivanova", "user_name": "Анна Иванова",
        "tags": [{"id": 1, "tag_name": "vip"}, {"id": 2, "tag_name": "renewal"}],
        "topics": [{"id": 3, "name": "billing/refund"}],
        "wrap_up_code": {"id": 5, "title": "Перезвонить", "type": "callback", "callback_at": "2026-11-26 10:00:00"}
    });
    let finalized = json!({"call_finalized": {
        "session_id": session, "user_id": "ivanova",
        "agent_campaign": {"id": 12, "title": "November renewals"},
        "queue": {"id": 4, "title": "sales-line"},
        "scenario": {"id": 77, "title": "Outbound sales", "scenario_type": "agent"},
        "completion_code": "Call_Answered",
        "comments": [{"id": 9, "comment": "Клиент просил перезвонить", "user_name": "ivanova", "created_at": "2026-11-25 09:19:00"}],
        "log_path": "https://kit.example.com/logs/1001.log"
    }});
    vec![
        ("new_calls", new_calls),
        ("wrap_up_code_set", wrap_up),
        ("finished_call", finished),
        ("call_finalized", finalized),
    ]
}

fn post_body(kind: &str, data: &Value, hash: &str) -> Value {
    let mut cb = json!({"hash": hash, "type": kind});
    cb[kind] = data.clone();
    json!({ "callbacks": [cb] })
}

async fn post(app: &TestApp, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/ingest/voximplant-kit?token={token}", app.base))
        .json(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// What the history shows of a call, without its ids.
fn shown(call: &Value) -> Value {
    let d = &call["details"];
    json!({
        "started_at": call["started_at"], "kind": call["kind"], "from": call["from"], "to": call["to"],
        "operator": call["operator"]["login"], "queue": call["queue"]["name"],
        "ring": call["ring_seconds"], "talk": call["talk_seconds"], "price": call["price"],
        "scenario": [call["scenario"]["name"], call["scenario"]["kind"]],
        "campaign": call["campaign"]["name"], "result": call["result"],
        "completion_code": [call["completion_code"]["name"], call["completion_code"]["callback_at"]],
        "attempts": call["attempts"],
        "tags": call["tags"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect::<Vec<_>>(),
        "topics": call["topics"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect::<Vec<_>>(),
        "notes": call["notes"].as_array().unwrap().iter().map(|n| json!([n["author"], n["at"], n["text"]])).collect::<Vec<_>>(),
        "log": d["log"]["lines"],
    })
}

#[tokio::test]
async fn the_four_events_merge_in_every_order_and_repeat() {
    let app = TestApp::start("vox-merge").await;
    let owner = app.owner().await;
    let ingest = app.token("default", "kit", Role::Admin, TokenScope::Ingest).await;
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": DOMAIN, "salt": SALT})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["domain"], DOMAIN);
    assert_eq!(body["salt_set"], true);
    assert!(body.get("salt").is_none(), "the salt never leaves the server: {body}");

    let orders = permutations(4);
    assert_eq!(orders.len(), 24);
    for (k, order) in orders.iter().enumerate() {
        let session = 1000 + k as u64;
        let events = events(session);
        // Every event in this order, then the first one again (the product retries).
        for &i in order.iter().chain(order.first()) {
            let (kind, data) = &events[i];
            let (status, body) = post(&app, &ingest, &post_body(kind, data, &hash(kind))).await;
            assert_eq!(status, 200, "order {order:?}, {kind}: {body}");
        }
    }
    let expected = json!({
        "started_at": "2026-11-25T09:15:02Z", "kind": "operator_campaign",
        "from": "74951112233", "to": "79161234567", "operator": "ivanova", "queue": "sales-line",
        "ring": 9, "talk": 209, "price": "1.2500", "scenario": ["Outbound sales", "operator"],
        "campaign": "November renewals", "result": "answered",
        "completion_code": ["Перезвонить", "2026-11-26T10:00:00Z"], "attempts": 2,
        "tags": ["renewal", "vip"], "topics": ["billing/refund"],
        "notes": [["ivanova", "2026-11-25T09:19:00Z", "Клиент просил перезвонить"]],
        "log": ["log: https://kit.example.com/logs/1001.log"],
    });
    let (status, list) = app.get(&owner, "/api/v1/calls?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 24, "one call per session, never two");
    for (k, order) in orders.iter().enumerate() {
        let external_id = (1000 + k).to_string();
        let id = app.call_id(&owner, &external_id).await;
        let (_, call) = app.get(&owner, &format!("/api/v1/calls/{id}")).await;
        assert_eq!(shown(&call), expected, "order {order:?}");
    }
}

#[tokio::test]
async fn wrong_hashes_tokens_and_bodies_store_nothing() {
    let app = TestApp::start("vox-refuse").await;
    let owner = app.owner().await;
    let ingest = app.token("default", "kit", Role::Admin, TokenScope::Ingest).await;
    let (kind, data) = events(7).remove(0);

    // Not configured yet: the hash cannot be checked.
    let (status, body) = post(&app, &ingest, &post_body(kind, &data, &hash(kind))).await;
    assert_eq!(status, 409, "{body}");

    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    let (status, _) = app
        .send(
            "PUT",
            &supervisor,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": DOMAIN, "salt": SALT})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": DOMAIN})),
        )
        .await;
    assert_eq!((status, error_field(&body)), (400, "salt"), "{body}");
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": "a b", "salt": SALT})),
        )
        .await;
    assert_eq!((status, error_field(&body)), (400, "domain"), "{body}");
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/voximplant-kit",
            Some(json!({"domain": DOMAIN, "salt": SALT})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A hash made with another salt, another domain or for another type: 401, nothing stored.
    let wrong = [
        format!("{:x}", Md5::digest(format!("other{DOMAIN}{kind}").as_bytes())),
        format!("{:x}", Md5::digest(format!("{SALT}other{kind}").as_bytes())),
        hash("finished_call"),
        String::new(),
    ];
    for h in &wrong {
        let (status, body) = post(&app, &ingest, &post_body(kind, &data, h)).await;
        assert_eq!(status, 401, "{h}: {body}");
    }
    // One bad callback among good ones refuses the whole post.
    let mut two = post_body(kind, &data, &hash(kind));
    let second = post_body(kind, &events(8).remove(0).1, &wrong[0])["callbacks"][0].clone();
    two["callbacks"].as_array_mut().unwrap().push(second);
    let (status, _) = post(&app, &ingest, &two).await;
    assert_eq!(status, 401);
    // A wrong token.
    let (status, _) = post(&app, "ct_not_a_token", &post_body(kind, &data, &hash(kind))).await;
    assert_eq!(status, 401);
    // Bodies the product never sends: the field at fault is named.
    let cases = [
        (json!({"calls": []}), "callbacks"),
        (
            json!({"callbacks": [{"hash": hash("hangup"), "type": "hangup", "hangup": {}}]}),
            "callbacks[0].type",
        ),
        (
            post_body(
                kind,
                &json!({"calls": [{"session_id": 9, "datetime_start": "25.11.2026"}]}),
                &hash(kind),
            ),
            "callbacks[0].new_calls.calls[0].datetime_start",
        ),
        (
            post_body(
                kind,
                &json!({"calls": [{"session_id": 9, "dialing_time": -4}]}),
                &hash(kind),
            ),
            "callbacks[0].new_calls.calls[0].dialing_time",
        ),
        (
            post_body("wrap_up_code_set", &json!({"call_id": 9}), &hash("wrap_up_code_set")),
            "callbacks[0].wrap_up_code_set.wrap_up_code",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&app, &ingest, &body).await;
        assert_eq!((status, error_field(&answer)), (400, field), "{body}: {answer}");
    }
    let r = app
        .http
        .post(format!("{}/api/v1/ingest/voximplant-kit?token={ingest}", app.base))
        .header("content-type", "application/json")
        .body("{\"callbacks\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (_, list) = app.get(&owner, "/api/v1/calls").await;
    assert_eq!(list["total"], 0, "nothing was stored: {list}");

    // The right hash, the token in the query: stored.
    let (status, body) = post(&app, &ingest, &post_body(kind, &data, &hash(kind).to_uppercase())).await;
    assert_eq!((status, &body["created"]), (200, &json!(1)), "{body}");
}
