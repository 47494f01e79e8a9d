//! The reference product's history API, driven the way its public clients call it: the 2021
//! PHP client's GET with every parameter in the query string, form posts, JSON posts; its
//! envelope, field names and result codes; paging both ways; the same scope as our own search.

use std::collections::BTreeSet;
use std::time::Duration;

use calltrail::domain::{Role, TokenScope};
use serde_json::{json, Value};

use crate::common::TestApp;

fn calls() -> Value {
    let call = |i: u32, kind: &str, op: &str| {
        json!({
            "external_id": format!("s-{i}"), "kind": kind,
            "from": format!("7495111{i:04}"), "to": format!("7916123{i:04}"),
            "dial_started_at": if kind == "incoming" { Value::Null } else { json!(format!("2026-11-{:02}T09:15:02Z", 10 + i)) },
            "scenario_started_at": if kind == "incoming" { json!(format!("2026-11-{:02}T09:15:02Z", 10 + i)) } else { Value::Null },
            "answered_at": format!("2026-11-{:02}T09:15:11Z", 10 + i),
            "ended_at": format!("2026-11-{:02}T09:18:40Z", 10 + i),
            "result": "answered", "operator": op, "operator_name": op,
        })
    };
    let mut list = vec![];
    for i in 0..6 {
        list.push(call(
            i,
            if i % 2 == 0 { "operator_campaign" } else { "incoming" },
            if i < 3 { "ivanova" } else { "petrov" },
        ));
    }
    // One call with everything the product's item carries.
    list[0]["price"] = json!("1.2500");
    list[0]["attempts"] = json!(2);
    list[0]["tags"] = json!(["vip"]);
    list[0]["scenario"] = json!({"id": "outbound", "name": "Outbound sales", "kind": "operator"});
    list[0]["campaign"] = json!({"id": "nov", "name": "November renewals"});
    list[0]["queue"] = json!("sales-line");
    list[0]["completion_code"] = json!({"id": "cb", "name": "Перезвонить", "callback_at": "2026-11-26T10:00:00Z"});
    // And one the product's result codes spell differently.
    list[5]["result"] = json!("lost_by_operator");
    list[5]["answered_at"] = Value::Null;
    Value::Array(list)
}

async fn call(app: &TestApp, method: &str, path: &str, query: &str, body: Option<(&str, String)>) -> (u16, Value) {
    let url = format!("{}{path}?{query}", app.base);
    let mut req = match method {
        "GET" => app.http.get(url),
        _ => app.http.post(url),
    };
    if let Some((content_type, text)) = body {
        req = req.header("content-type", content_type).body(text);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn session_ids(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["session_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn searches_as_the_reference_clients_send_them() {
    let app = TestApp::start("compat-search").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, calls()).await;
    let token = app.token("default", "boss", Role::Owner, TokenScope::Full).await;

    // The 2021 PHP client: GET, everything in the query string.
    let q = format!(
        "datetime_start={}&datetime_end={}&call_direction=all&phone=7495111&access_token={token}&domain=default",
        enc("2026-11-01 00:00:00"),
        enc("2026-11-30 23:59:59")
    );
    let (status, body) = call(&app, "GET", "/api/v3/history/searchCalls", &q, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(
        body["_meta"],
        json!({"totalCount": 6, "pageCount": 1, "currentPage": 1, "perPage": 50})
    );
    assert_eq!(session_ids(&body), ["s-5", "s-4", "s-3", "s-2", "s-1", "s-0"]);
    let id = app.call_id(&owner, "s-0").await;
    let item = body["result"][5].clone();
    let mut expected = json!({
        "id": id.parse::<i64>().unwrap(), "attempt_num": 2, "session_id": "s-0",
        "datetime_start": "2026-11-10 09:15:02", "phone_a": "74951110000", "phone_b": "79161230000",
        "is_incoming": false, "completion_code": "Call_Answered", "call_result_code": "Call_Answered",
        "duration": 209, "dialing_time": 9, "record_url": null, "call_cost": 1.25,
        "has_call_logs": true, "scenario_version_id": null, "callback_at": "2026-11-26 10:00:00",
    });
    for k in [
        "domain_id",
        "scenario_id",
        "campaign_id",
        "user_id",
        "queue_id",
        "user_group_id",
    ] {
        expected[k] = item[k].clone();
    }
    assert_eq!(item, expected);
    assert!(
        item["scenario_id"].is_i64()
            && item["campaign_id"].is_i64()
            && item["user_id"].is_i64()
            && item["queue_id"].is_i64(),
        "{item}"
    );
    assert_eq!(item["user_group_id"], Value::Null);
    assert_eq!(body["result"][0]["completion_code"], "Lost_By_Agent");
    assert_eq!(
        body["result"][0]["dialing_time"],
        Value::Null,
        "incoming calls have no ring"
    );

    // v4 as a form post: the window's last second is included, cursor paging to the end.
    let form = format!(
        "access_token={token}&domain=default&from={}&to={}&limit=2&with_tags=1&with_wrap_up_code=true&with_scenarios=1",
        enc("2026-11-11 09:15:02"),
        enc("2026-11-14 09:15:02")
    );
    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let body_text = match &cursor {
            Some(c) => format!("{form}&cursor={}", enc(c)),
            None => form.clone(),
        };
        let (status, page) = call(
            &app,
            "POST",
            "/api/v4/history/searchCalls",
            "",
            Some(("application/x-www-form-urlencoded", body_text)),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["_meta"]["limit"], 2);
        seen.extend(session_ids(&page));
        pages += 1;
        match page["_meta"]["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["s-4", "s-3", "s-2", "s-1"]);
    assert_eq!(pages, 2);

    // with_* flags on the call that has them, by id.
    let (status, one) = call(
        &app,
        "GET",
        "/api/v4/history/searchCalls",
        &format!("access_token={token}&domain=default&id={id}&with_tags=1&with_wrap_up_code=1&with_scenarios=1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{one}");
    let c = &one["result"][0];
    assert_eq!(c["tags"][0]["tag_name"], "vip");
    assert_eq!(c["wrap_up_code"]["title"], "Перезвонить");
    assert_eq!(c["wrap_up_code"]["callback_at"], "2026-11-26 10:00:00");
    assert_eq!(c["scenario"]["title"], "Outbound sales");
    assert_eq!(c["scenario"]["scenario_type"], "operator");

    // A JSON body with the product's array parameters as JSON, v3 page 2 of 2 per page.
    let scenario = c["scenario_id"].clone();
    let json_body =
        json!({"access_token": token, "domain": "default", "scenario_ids": [scenario], "call_direction": "outgoing"});
    let (status, body) = call(
        &app,
        "POST",
        "/api/v4/history/searchCalls",
        "",
        Some(("application/json", json_body.to_string())),
    )
    .await;
    assert_eq!((status, session_ids(&body)), (200, vec!["s-0".to_string()]), "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/api/v3/history/searchCalls",
        &format!("access_token={token}&domain=default&page=2&per-page=2"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(session_ids(&body), ["s-3", "s-2"]);
    assert_eq!(
        body["_meta"],
        json!({"totalCount": 6, "pageCount": 3, "currentPage": 2, "perPage": 2})
    );
    let (_, body) = call(
        &app,
        "GET",
        "/api/v3/history/searchCalls",
        &format!("access_token={token}&domain=default&page=4&per-page=2"),
        None,
    )
    .await;
    assert_eq!(session_ids(&body), Vec::<String>::new());
    assert_eq!(body["_meta"]["totalCount"], 6);
}

#[tokio::test]
async fn errors_come_in_the_products_envelope_and_scope_is_ours() {
    let app = TestApp::start("compat-errors").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, calls()).await;
    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    app.set_group(&owner, "team-a", &["ivanova"], &["sup"], true).await;
    let ingest = app.token("default", "pbx", Role::Admin, TokenScope::Ingest).await;
    let other = app.token("other", "boss", Role::Owner, TokenScope::Full).await;

    let path = "/api/v4/history/searchCalls";
    for (query, status) in [
        (format!("access_token={owner}&domain=other"), 401),
        (format!("access_token={other}&domain=default"), 401),
        ("domain=default".to_string(), 401),
        ("access_token=ct_nope&domain=default".to_string(), 401),
        (format!("access_token={ingest}&domain=default"), 403),
    ] {
        let (got, body) = call(&app, "GET", path, &query, None).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["result"]["code"], status);
        assert!(
            body["result"]["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    for (extra, field) in [
        ("phone=12", "phone"),
        ("from=yesterday", "from"),
        ("datetime_end=2026-13-01+00:00:00", "datetime_end"),
        ("call_direction=sideways", "call_direction"),
        ("limit=0", "limit"),
        ("cursor=forged", "cursor"),
        ("scenario_ids=[oops", "scenario_ids"),
    ] {
        let (got, body) = call(
            &app,
            "GET",
            path,
            &format!("access_token={owner}&domain=default&{extra}"),
            None,
        )
        .await;
        assert_eq!(
            (got, body["result"]["field"].as_str()),
            (422, Some(field)),
            "{extra}: {body}"
        );
    }
    let (got, body) = call(
        &app,
        "GET",
        "/api/v3/history/searchCalls",
        &format!("access_token={owner}&domain=default&per-page=51"),
        None,
    )
    .await;
    assert_eq!(
        (got, body["result"]["field"].as_str()),
        (422, Some("per-page")),
        "{body}"
    );
    let (got, body) = call(
        &app,
        "GET",
        "/api/v3/history/searchCalls",
        &format!("access_token={owner}&domain=default&sort=id"),
        None,
    )
    .await;
    assert_eq!((got, body["result"]["field"].as_str()), (422, Some("sort")), "{body}");

    // A supervisor sees what our own search shows them: ivanova's calls (team-a), no others.
    let (_, ours) = app.get(&supervisor, "/api/v1/calls?limit=100").await;
    let ours: BTreeSet<String> = ours["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, BTreeSet::from(["s-0".to_string(), "s-1".into(), "s-2".into()]));
    let (status, theirs) = call(
        &app,
        "GET",
        path,
        &format!("access_token={supervisor}&domain=default&limit=100"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(session_ids(&theirs).into_iter().collect::<BTreeSet<_>>(), ours);
    // Another's call by id is simply not there.
    let hidden = app.call_id(&owner, "s-5").await;
    let (status, body) = call(
        &app,
        "GET",
        path,
        &format!("access_token={supervisor}&domain=default&id={hidden}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["result"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{body}"
    );
}

#[tokio::test]
async fn the_asynchronous_export_runs_on_our_background_exports() {
    let app = TestApp::start("compat-export").await;
    let owner = app.owner().await;
    app.ingest_ok(&owner, calls()).await;
    let token = app.token("default", "boss", Role::Owner, TokenScope::Full).await;
    let auth = format!("access_token={token}&domain=default");
    let (status, body) = call(
        &app,
        "POST",
        "/api/v3/history/exportCallsHistoryReport",
        "",
        Some((
            "application/x-www-form-urlencoded",
            format!("{auth}&call_direction=incoming&format=csv&lang=en"),
        )),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report = body["result"]["report_id"].as_i64().expect("report_id");
    let mut status_body = Value::Null;
    for _ in 0..100 {
        let (_, b) = call(
            &app,
            "GET",
            "/api/v3/report/getReportStatus",
            &format!("{auth}&report_id={report}"),
            None,
        )
        .await;
        status_body = b;
        if status_body["result"]["processed"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status_body["result"]["processed"], true, "{status_body}");
    assert_eq!(status_body["result"]["rows_total"], 3);
    let r = app
        .http
        .get(format!(
            "{}/api/v3/report/downloadReport?{auth}&report_id={report}",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 4, "a header and the three incoming calls: {text}");
    assert!(lines[0].starts_with("Time (UTC),Type,From,To"), "{}", lines[0]);
    assert!(
        lines[1].contains("74951110005") && lines[3].contains("74951110001"),
        "{text}"
    );
    // Another user's report is not found.
    let other = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    let (status, body) = call(
        &app,
        "GET",
        "/api/v3/report/getReportStatus",
        &format!("access_token={other}&domain=default&report_id={report}"),
        None,
    )
    .await;
    assert_eq!((status, body["success"].clone()), (404, json!(false)), "{body}");
    let (status, body) = call(&app, "GET", "/api/v3/report/getReportStatus", &auth, None).await;
    assert_eq!(
        (status, body["result"]["field"].as_str()),
        (422, Some("report_id")),
        "{body}"
    );
}
