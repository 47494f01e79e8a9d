//! What reaches the QM system, how it is paced, and what happens when it fails.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use calltrail::domain::{Role, TokenScope};
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::fake::Fault;
use super::*;
use crate::common::{error_field, wav_bytes};

#[tokio::test]
async fn calls_reach_the_qm_system_once_each_with_what_it_demands() {
    let (qm, key, app, owner) = connected_app("qm-happy", |c| {
        c.retention_every_ms = 100;
        // Paced: requests 30 ms apart, two calls a batch, 150 ms between batches.
        c.qm.request_interval_ms = 30;
        c.qm.batch_size = 2;
        c.qm.batch_pause_ms = 150;
    })
    .await;
    let long = "kit-session-7c1f0d8e-93b4-4b7a-a1d2-5e6f7a8b9c0d-leg-1";
    let mut outgoing = answered(long, Some(("petrov", "Сергей Петров")), 10);
    outgoing["kind"] = json!("softphone_outgoing");
    outgoing["from"] = json!("201");
    outgoing["to"] = json!("+74957654321");
    outgoing["result"] = json!("no_answer");
    outgoing["answered_at"] = Value::Null;
    let mut abandoned = answered("q3", None, 20);
    abandoned["result"] = json!("abandoned");
    abandoned["answered_at"] = Value::Null;
    app.ingest_ok(
        &owner,
        json!([
            answered("q1", Some(("ivanova", "Анна Иванова")), 0),
            outgoing,
            abandoned,
            answered("q4", Some(("ivanova", "Анна Иванова")), 30),
        ]),
    )
    .await;
    let recordings: BTreeMap<&str, Vec<u8>> = [
        ("q1", wav_bytes(30_000, 1)),
        (long, wav_bytes(20_000, 2)),
        ("q3", wav_bytes(10_000, 3)),
    ]
    .into();
    for (ext, bytes) in &recordings {
        assert_eq!(app.upload(&owner, ext, "audio/wav", bytes.clone()).await.0, 200);
    }
    let ids: BTreeMap<&str, String> = {
        let mut m = BTreeMap::new();
        for ext in ["q1", long, "q3", "q4"] {
            m.insert(ext, app.call_id(&owner, ext).await);
        }
        m
    };

    // Only owners, administrators and managers export; bad requests name their field.
    let manager = app.token("default", "manager", Role::Manager, TokenScope::Full).await;
    for role in [Role::Supervisor, Role::Operator] {
        let who = app.token("default", role.code(), role, TokenScope::Full).await;
        let (status, _) = ask(&app, &who, json!({"filters": {}})).await;
        assert_eq!(status, 403, "{role:?}");
        assert_eq!(app.get(&who, "/api/v1/integrations/qm/exports").await.0, 403);
    }
    let feeder = app.token("default", "pbx", Role::Operator, TokenScope::Ingest).await;
    let (status, _) = ask(&app, &feeder, json!({"filters": {}})).await;
    assert_eq!(status, 403);
    for (body, field) in [
        (json!({"filters": {}, "call_ids": ["1"]}), "filters"),
        (json!({}), "filters"),
        (json!({"call_ids": []}), "call_ids"),
        (json!({"call_ids": ["abc"]}), "call_ids[0]"),
        (json!({"call_ids": [ids["q1"], "999999"]}), "call_ids[1]"),
        (json!({"filters": {"number": "12"}}), "number"),
        (json!({"filters": {"result": "won"}}), "result"),
        (json!({"filters": {"from": "yesterday-ish"}}), "from"),
        (json!({"filter": {}}), "filter"),
    ] {
        let (status, answer) = ask(&app, &manager, body.clone()).await;
        assert_eq!((status, error_field(&answer)), (400, field), "{body}: {answer}");
    }
    assert_eq!(
        app.get(&owner, "/api/v1/integrations/qm/exports").await.1["items"],
        json!([]),
        "nothing made"
    );

    let the_day = json!({"filters": {"tz": "Europe/Moscow", "from": "2026-11-10", "to": "2026-11-11"}});
    // The connection check's request is not one of the export's.
    qm.seen.lock().unwrap().requests.clear();
    let id = start(&app, &manager, the_day.clone()).await;
    let job = finished(&app, &manager, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        counts(&job),
        [4, 3, 0, 1, 0, 0],
        "total, sent, already, skipped, failed, pending: {job}"
    );
    let q4 = outcome_of(&job, &ids["q4"]);
    assert_eq!((&q4["external_id"], &q4["qm_id"]), (&json!("q4"), &json!("q4")));
    let short_id = &outcome_of(&job, &ids[long])["qm_id"];
    assert!(
        short_id.as_str().unwrap().starts_with("ct") && short_id.as_str().unwrap().len() == 32,
        "{short_id}"
    );
    assert_eq!(
        (&q4["outcome"], &q4["error"]),
        (&json!("skipped"), &json!("no recording"))
    );
    assert_eq!(outcome_of(&job, &ids["q1"])["outcome"], "sent");
    assert_eq!(outcome_of(&job, &ids["q1"])["status"], 200);

    // What the QM system was told, field by field.
    let short = format!("ct{}", &format!("{:x}", Sha256::digest(long.as_bytes()))[..30]);
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec![short.clone(), "q1".to_string(), "q3".to_string()]);
    let q1 = qm.call("q1");
    let link = q1["fileLink"].as_str().unwrap().to_string();
    let mut q1_fields = q1.clone();
    q1_fields.as_object_mut().unwrap().remove("fileLink");
    assert_eq!(
        q1_fields,
        json!({"id": "q1", "callDirection": "inbound", "startDate": "2026-11-10T12:00:00",
               "endDate": "2026-11-10T12:00:50", "operatorId": "ivanova", "clientPhoneNumber": "+79161230000",
               "languageCode": "ru", "operatorChannel": "right", "result": "Вызов принят"})
    );
    assert!(
        link.starts_with(&format!("{}/qm/recordings/{}.wav?expires=", app.base, ids["q1"])),
        "{link}"
    );
    let out = qm.call(&short);
    assert_eq!(
        (
            &out["callDirection"],
            &out["clientPhoneNumber"],
            &out["operatorId"],
            &out["hangupParty"],
            &out["result"]
        ),
        (
            &json!("outbound"),
            &json!("+74957654321"),
            &json!("petrov"),
            &json!("timeout"),
            &json!("Абонент не отвечает")
        )
    );
    assert_eq!(
        (&out["startDate"], &out["endDate"]),
        (&json!("2026-11-10T12:10:00"), &json!("2026-11-10T12:10:50"))
    );
    let q3 = qm.call("q3");
    assert_eq!((&q3["hangupParty"], q3.get("operatorId")), (&json!("client"), None));
    // It downloaded each recording through its link: the very bytes uploaded.
    {
        let seen = qm.seen.lock().unwrap();
        for (ext, qm_id) in [("q1", "q1"), (long, short.as_str()), ("q3", "q3")] {
            let sha = format!("{:x}", Sha256::digest(&recordings[ext]));
            assert_eq!(seen.downloads[qm_id], vec![(200, sha)], "{ext}");
        }
        // Operators imported once each, before their calls, with their names split.
        assert_eq!(
            seen.users,
            vec![
                json!({"id": "ivanova", "lastName": "Иванова", "firstName": "Анна", "roleId": 2}),
                json!({"id": "petrov", "lastName": "Петров", "firstName": "Сергей", "roleId": 2}),
            ]
        );
        // Paced: 30 ms between requests, and a batch pause after every two calls.
        let times: Vec<Instant> = seen.requests.iter().map(|r| r.0).collect();
        assert_eq!(times.len(), 5, "2 users + 3 calls: {:?}", seen.requests);
        let gaps: Vec<u128> = times.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert!(gaps.iter().all(|g| *g >= 28), "{gaps:?}");
        assert!(gaps.iter().any(|g| *g >= 148), "a pause between batches: {gaps:?}");
    }

    // The link: ranges work; a changed signature or another call is not found; an expired one is gone.
    let r = app.http.get(&link).header("range", "bytes=0-43").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().to_vec(), recordings["q1"][..44].to_vec());
    let forged = format!("{}A", link);
    assert_eq!(app.http.get(&forged).send().await.unwrap().status(), 404);
    let other = link.replace(&format!("/{}.wav", ids["q1"]), &format!("/{}.wav", ids["q3"]));
    assert_eq!(app.http.get(&other).send().await.unwrap().status(), 404);
    let link_key = key.derive("calltrail qm file links");
    let call: i64 = ids["q1"].parse().unwrap();
    let q1_target = calltrail::qm::link::Target {
        account: 1,
        call,
        external_id: "q1",
    };
    let past = calltrail::qm::link::file_link(&app.base, &link_key, q1_target, "wav", Utc::now().timestamp() - 1);
    assert_eq!(app.http.get(&past).send().await.unwrap().status(), 410);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=recording_download").await;
    let by_qm: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor_login"] == "(QM system)")
        .collect();
    assert_eq!(by_qm.len(), 4, "three downloads and the range: {audit}");
    assert!(by_qm.iter().all(|e| e["detail"]["use"] == "qm"));

    // The same calls again: nothing is sent twice.
    let again = start(&app, &owner, the_day.clone()).await;
    let job = finished(&app, &owner, &again).await;
    assert_eq!(counts(&job), [4, 0, 3, 1, 0, 0], "{job}");
    assert!(outcome_of(&job, &ids["q1"])["error"]
        .as_str()
        .unwrap()
        .starts_with(&format!("sent in export {id} at ")));
    assert_eq!(qm.taken_ids().len(), 3);

    // A renamed operator is imported again before their next call.
    let ivanova = app.user_id(&owner, "ivanova").await;
    let (status, _) = app
        .send(
            "PUT",
            &owner,
            &format!("/api/v1/users/{ivanova}"),
            Some(json!({"name": "Анна Смирнова"})),
        )
        .await;
    assert_eq!(status, 200);
    app.ingest_ok(&owner, json!([answered("q5", Some(("ivanova", "Анна Иванова")), 40)]))
        .await;
    app.upload(&owner, "q5", "audio/wav", wav_bytes(5_000, 5)).await;
    let q5 = app.call_id(&owner, "q5").await;
    let job = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [q5]})).await).await;
    assert_eq!(counts(&job), [1, 1, 0, 0, 0, 0], "{job}");
    let users: Vec<Value> = qm.seen.lock().unwrap().users.clone();
    assert_eq!(users.len(), 3);
    assert_eq!(
        users[2],
        json!({"id": "ivanova", "lastName": "Смирнова", "firstName": "Анна", "roleId": 2})
    );

    // Another QM system (a new address): it knows none of the operators, so they are imported
    // there before their calls; calls the first one took stay delivered.
    let (qm2, base2) = FakeQm::start(Tz::Europe__Moscow).await;
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/qm",
            Some(json!({"base_url": base2})),
        )
        .await;
    assert_eq!(
        (status, &body["connected"]),
        (200, &json!(true)),
        "checked again: {body}"
    );
    app.ingest_ok(&owner, json!([answered("q6", Some(("ivanova", "Анна Смирнова")), 45)]))
        .await;
    app.upload(&owner, "q6", "audio/wav", wav_bytes(5_000, 6)).await;
    let q6 = app.call_id(&owner, "q6").await;
    let job = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [q5, q6]})).await).await;
    assert_eq!(counts(&job), [2, 1, 1, 0, 0, 0], "{job}");
    assert_eq!(qm2.taken_ids(), vec!["q6"]);
    assert_eq!(
        qm2.seen.lock().unwrap().users.len(),
        1,
        "ivanova imported into the new system"
    );

    // Listed newest first, with the audit trail of who exported what.
    let (_, list) = app.get(&manager, "/api/v1/integrations/qm/exports").await;
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[3], id);
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=qm_export").await;
    let jobs: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["detail"]["job"])
        .collect();
    assert_eq!(jobs.len(), 4);
    assert_eq!(jobs[3], &json!(id));
    assert_eq!(audit["items"][3]["actor_login"], "manager");

    // Retention forgets what the QM exports said of the calls it deletes (a later call may get
    // a deleted call's id).
    let qm_rows = || async {
        app.store
            .read(|conn| {
                Ok(conn.query_row(
                    "SELECT (SELECT COUNT(*) FROM qm_deliveries) + (SELECT COUNT(*) FROM qm_export_calls) \
                     + (SELECT COUNT(*) FROM qm_export_failures)",
                    (),
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .await
            .unwrap()
    };
    assert!(qm_rows().await > 0);
    let (status, _) = app
        .send("PUT", &owner, "/api/v1/settings", Some(json!({"keep_calls_days": 1})))
        .await;
    assert_eq!(status, 200);
    for _ in 0..500 {
        if qm_rows().await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(qm_rows().await, 0);
    let (_, page) = app
        .get(&owner, "/api/v1/calls?tz=UTC&from=2026-11-01&to=2026-12-01")
        .await;
    assert_eq!(page["total"], 0, "the calls themselves are gone");
    app.stop().await;
}

#[tokio::test]
async fn failures_are_retried_kept_with_their_correlation_ids_and_sent_again_only_by_a_rerun() {
    let (qm, _, app, owner) = connected_app("qm-retries", |c| c.qm.timeout_ms = 2_000).await;
    let exts = ["r1", "r2", "r3", "r4", "r5", "r6"];
    let calls: Vec<Value> = exts
        .iter()
        .enumerate()
        .map(|(i, e)| answered(e, None, i as u32))
        .collect();
    app.ingest_ok(&owner, Value::Array(calls)).await;
    let mut ids = vec![];
    for (i, ext) in exts.iter().enumerate() {
        app.upload(&owner, ext, "audio/wav", wav_bytes(2_000, i as u8)).await;
        ids.push(app.call_id(&owner, ext).await);
    }
    qm.fail(
        "r1",
        &[Fault::Status(500, "corr-500-a"), Fault::Status(502, "corr-502-b")],
    );
    // Throttled three times (the first asking for a second's rest): not the call's attempts.
    qm.fail("r2", &[Fault::Throttle(1), Fault::Throttle(0), Fault::Throttle(0)]);
    qm.fail("r3", &[Fault::Hang(5_000)]);
    qm.fail("r4", &[Fault::Status(400, "corr-400")]);
    qm.fail(
        "r5",
        &[
            Fault::Status(503, "c1"),
            Fault::Status(503, "c2"),
            Fault::Status(503, "c3"),
        ],
    );

    let id = start(&app, &owner, json!({"call_ids": ids})).await;
    let job = finished(&app, &owner, &id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(counts(&job), [6, 4, 0, 0, 2, 0], "{job}");
    // r1: two failures kept with their statuses and correlation ids, then taken.
    let r1 = outcome_of(&job, &ids[0]);
    assert_eq!(
        (&r1["outcome"], &r1["attempts"], &r1["status"]),
        (&json!("sent"), &json!(3), &json!(200))
    );
    let failures: Vec<(Value, Value)> = r1["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["status"].clone(), f["correlation_id"].clone()))
        .collect();
    assert_eq!(
        failures,
        vec![(json!(500), json!("corr-500-a")), (json!(502), json!("corr-502-b"))]
    );
    // With a doubling delay: 40 ms, then 80 ms.
    let times = qm.requests_for("r1");
    assert_eq!(times.iter().map(|t| t.1).collect::<Vec<_>>(), vec![500, 502, 200]);
    assert!((times[1].0 - times[0].0) >= Duration::from_millis(40), "{times:?}");
    assert!((times[2].0 - times[1].0) >= Duration::from_millis(80), "{times:?}");
    // r2: three 429s do not use up its three attempts; the job rested as long as asked
    // before its next request, of any call.
    let r2 = outcome_of(&job, &ids[1]);
    assert_eq!((&r2["outcome"], &r2["attempts"]), (&json!("sent"), &json!(4)), "{r2}");
    let statuses: Vec<&Value> = r2["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["status"])
        .collect();
    assert_eq!(statuses, vec![&json!(429), &json!(429), &json!(429)]);
    {
        let seen = qm.seen.lock().unwrap();
        let first = seen.requests.iter().position(|r| r.2.as_deref() == Some("r2")).unwrap();
        let rest = seen.requests[first + 1].0 - seen.requests[first].0;
        assert!(rest >= Duration::from_millis(1_000), "held back {rest:?}");
    }
    // The hold is kept in the database, where every instance (and a restarted one) sees it.
    let holds: Vec<(String, String)> = app
        .store
        .read(|conn| {
            Ok(conn
                .prepare("SELECT name, owner FROM leases WHERE name LIKE 'qm-hold:%'")?
                .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(holds, vec![("qm-hold:1".to_string(), "qm-system".to_string())]);
    // r3 timed out once, then taken.
    let r3 = outcome_of(&job, &ids[2]);
    assert_eq!((&r3["outcome"], &r3["attempts"]), (&json!("sent"), &json!(2)), "{r3}");
    assert_eq!(r3["failures"][0]["status"], Value::Null, "{r3}");
    assert!(outcome_of(&job, &ids[2])["failures"][0]["error"]
        .as_str()
        .unwrap()
        .contains("no answer in time"));
    // r4 refused for good at once (400 is not retried); r5 gave up after three 503s.
    let r4 = outcome_of(&job, &ids[3]);
    assert_eq!(
        (&r4["outcome"], &r4["attempts"], &r4["status"], &r4["correlation_id"]),
        (&json!("failed"), &json!(1), &json!(400), &json!("corr-400"))
    );
    assert!(r4["error"].as_str().unwrap().contains("scripted 400"), "{r4}");
    let r5 = outcome_of(&job, &ids[4]);
    assert_eq!(
        (&r5["outcome"], &r5["attempts"], &r5["correlation_id"]),
        (&json!("failed"), &json!(3), &json!("c3"))
    );
    assert!(
        r5["error"]
            .as_str()
            .unwrap()
            .starts_with("gave up after 3 attempts: 503"),
        "{r5}"
    );
    assert_eq!(r5["failures"].as_array().unwrap().len(), 3);
    // Only the failed calls, on request.
    let (_, only) = app
        .get(&owner, &format!("/api/v1/integrations/qm/exports/{id}?outcome=failed"))
        .await;
    let failed: Vec<&str> = only["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec![ids[3].as_str(), ids[4].as_str()]);
    let (status, body) = app
        .get(&owner, &format!("/api/v1/integrations/qm/exports/{id}?outcome=lost"))
        .await;
    assert_eq!((status, error_field(&body)), (400, "outcome"));

    // A re-run sends exactly what failed, once.
    let (status, rerun) = ask_rerun(&app, &owner, &id).await;
    assert_eq!(status, 201, "{rerun}");
    assert_eq!(rerun["rerun_of"], json!(id));
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [2, 2, 0, 0, 0, 0], "{rerun}");
    let mut taken = qm.taken_ids();
    taken.sort();
    assert_eq!(taken, vec!["r1", "r2", "r3", "r4", "r5", "r6"], "each once");
    let (status, body) = ask_rerun(&app, &owner, &id).await;
    assert_eq!(status, 201, "the first job's failures are now already sent: {body}");
    let third = finished(&app, &owner, body["id"].as_str().unwrap()).await;
    assert_eq!(counts(&third), [2, 0, 2, 0, 0, 0], "{third}");
    let (status, body) = ask_rerun(&app, &owner, third["id"].as_str().unwrap()).await;
    assert_eq!(status, 409, "nothing failed: {body}");

    // A key the QM system no longer accepts stops the job, saying so; nothing is lost.
    qm.seen.lock().unwrap().key = "rotated".into();
    app.ingest_ok(&owner, json!([answered("r7", None, 50), answered("r8", None, 51)]))
        .await;
    let r7 = app.call_id(&owner, "r7").await;
    let r8 = app.call_id(&owner, "r8").await;
    app.upload(&owner, "r7", "audio/wav", wav_bytes(2_000, 7)).await;
    app.upload(&owner, "r8", "audio/wav", wav_bytes(2_000, 8)).await;
    let stopped = finished(&app, &owner, &start(&app, &owner, json!({"call_ids": [r7, r8]})).await).await;
    assert_eq!(stopped["state"], "failed", "{stopped}");
    assert!(
        stopped["error"].as_str().unwrap().contains("refused the API key (401)"),
        "{stopped}"
    );
    assert_eq!(counts(&stopped), [2, 0, 0, 0, 2, 0], "{stopped}");
    assert!(outcome_of(&stopped, &r8)["error"]
        .as_str()
        .unwrap()
        .starts_with("not sent: the QM system refused"));
    qm.seen.lock().unwrap().key = KEY.into();
    let (_, rerun) = ask_rerun(&app, &owner, stopped["id"].as_str().unwrap()).await;
    let rerun = finished(&app, &owner, rerun["id"].as_str().unwrap()).await;
    assert_eq!(counts(&rerun), [2, 2, 0, 0, 0, 0], "{rerun}");
    app.stop().await;
}
