//! Calls from real PBXs: every FreeSWITCH and Asterisk file of `shared/corpora` imported with the
//! real binary, and what became of it read back through the API, call by call. The expected
//! values were written from reading the samples (FORMATS.md) and the mapping rules of
//! docs/connect-your-pbx.md, not from the importer's output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calltrail::domain::{Role, TokenScope};
use serde_json::{json, Value};

use crate::cli::calltrail;
use crate::common::{error_field, temp_dir, TestApp};

fn corpora(dir: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpora")
        .join(dir);
    let mut files: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    files.sort();
    files
}

fn corpus(dir: &str, name: &str) -> String {
    let found: Vec<String> = corpora(dir).into_iter().filter(|f| f.contains(name)).collect();
    assert_eq!(found.len(), 1, "{name} in {dir}");
    found[0].clone()
}

/// `calltrail import` on the data folder; (exit code, stdout, stderr).
fn import(data: &Path, account: &str, format: &str, files: &[String]) -> (i32, String, String) {
    let data = data.display().to_string();
    let mut args = vec!["import", "--format", format, "--account", account, "--data", &data];
    args.extend(files.iter().map(String::as_str));
    calltrail(&args, "")
}

/// Every call of the token's account, by external id, as one line each: what the history shows.
async fn calls(app: &TestApp, token: &str) -> BTreeMap<String, String> {
    let mut items = Vec::new();
    let mut path = "/api/v1/calls?limit=500".to_string();
    loop {
        let (status, body) = app.get(token, &path).await;
        assert_eq!(status, 200, "{body}");
        items.extend(body["items"].as_array().expect("items").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/calls?limit=500&cursor={c}"),
            None => break,
        }
    }
    items
        .iter()
        .map(|c| {
            let text = |v: &Value| v.as_str().map_or("-".to_string(), str::to_string);
            let line = format!(
                "{} {} {}→{} op={} q={} ring={} talk={} {}",
                text(&c["started_at"]),
                text(&c["kind"]),
                text(&c["from"]),
                text(&c["to"]),
                text(&c["operator"]["login"]),
                text(&c["queue"]["name"]),
                c["ring_seconds"].as_u64().map_or("-".into(), |s| s.to_string()),
                c["talk_seconds"],
                text(&c["result"]),
            );
            (text(&c["external_id"]), line)
        })
        .collect()
}

fn expect(rows: &[(&str, &str)]) -> BTreeMap<String, String> {
    rows.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn detail(app: &TestApp, token: &str, external_id: &str) -> Value {
    let id = app.call_id(token, external_id).await;
    let (status, body) = app.get(token, &format!("/api/v1/calls/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn freeswitch_json_cdrs_become_calls() {
    let dir = temp_dir("pbx-fs-json");
    let files = corpora("freeswitch-json");
    assert_eq!(files.len(), 7);
    let (code, out, err) = import(&dir, "default", "freeswitch-json", &files);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("created 1, updated 0, unchanged 0").count(), 7, "{out}");
    let app = TestApp::start_in(dir.clone()).await;
    let owner = app.owner().await;
    // All seven are extension-to-extension calls (1001 → 1002, "dan" → a number routed back to
    // dan), kept as the caller's outgoing calls; ring from creation to answer, talk from answer
    // to hangup, by the microsecond times of the callflow.
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[
            (
                "c8ccef5e-34c2-4fd2-9a2e-fa6f295f3a1e",
                "2013-05-16T12:33:28Z softphone_outgoing 1001→1002 op=1001 q=- ring=2 talk=21 answered"
            ),
            (
                "01df56f4-d99a-4ef6-b7fe-b924b2415b7f",
                "2013-08-04T09:50:54Z softphone_outgoing dan→+4986517174963 op=dan q=- ring=2 talk=4 answered"
            ),
            (
                "86cfd6e2-dbda-45a3-b59d-f683ec368e8b",
                "2014-04-08T19:10:21Z softphone_outgoing 1001→1002 op=1001 q=- ring=6 talk=15 answered"
            ),
            (
                "e3133bf7-dcde-4daf-9663-9a79ffcef5ad",
                "2015-07-07T14:52:08Z softphone_outgoing 1001→1003 op=1001 q=- ring=1 talk=65 answered"
            ),
            (
                "3da8bf84-c133-4959-9e24-e72875cb33a1",
                "2018-01-11T10:25:44Z softphone_outgoing 1001→1002 op=1001 q=- ring=3 talk=68 answered"
            ),
            (
                "5282f87c-368c-43a2-babd-bc63ff12dc79",
                "2018-03-13T12:28:23Z softphone_outgoing 1001→1002 op=1001 q=- ring=1 talk=59 answered"
            ),
            (
                "5a3a1d91-90d3-4db4-af5c-cc3ae15d93a4",
                "2018-03-14T11:09:18Z softphone_outgoing 1001→1002 op=1001 q=- ring=10 talk=21 answered"
            ),
        ])
    );
    // The redirected call: both caller profiles (two "callflow" keys in one object) are in its
    // flow, in the order they were created, and the app log and hangup are its log lines.
    let d = detail(&app, &owner, "01df56f4-d99a-4ef6-b7fe-b924b2415b7f").await;
    let flow: Vec<(&str, &str)> = d["details"]["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["block"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        flow,
        [
            ("OnNet Call", "ipbxas → +4986517174963"),
            ("Redirected call", "redirected → dan")
        ]
    );
    let lines = d["details"]["log"]["lines"].as_array().unwrap();
    assert_eq!(lines[0], "set effective_caller_id_number=+4986517174960");
    assert_eq!(lines.len(), 11, "{lines:?}");
    assert_eq!(
        lines[10],
        "hangup_cause=NORMAL_CLEARING hangup_cause_q850=16 sip_hangup_disposition=send_bye \
         originate_disposition=SUCCESS endpoint_disposition=ANSWER"
    );
    assert_eq!(d["details"]["answered_at"], "2013-08-04T09:50:56Z");
    // URL-encoded values are decoded: the 2013-05 leg's exported date.
    let d = detail(&app, &owner, "c8ccef5e-34c2-4fd2-9a2e-fa6f295f3a1e").await;
    let lines = d["details"]["log"]["lines"].as_array().unwrap();
    assert!(
        lines.contains(&json!("export RFC2822_DATE=Thu, 16 May 2013 14:33:28 +0200")),
        "{lines:?}"
    );
    app.stop().await;

    // Importing the same files again changes nothing.
    let (code, out, err) = import(&dir, "default", "freeswitch-json", &files);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("created 0, updated 0, unchanged 1,").count(), 7, "{out}");
}

/// What the PBX's recording server holds: one file, under the name FreeSWITCH logged.
fn recording() -> Vec<u8> {
    crate::common::wav_bytes(20_000, 7)
}

/// The PBX's recordings over HTTP on loopback.
async fn recording_server() -> String {
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        use axum::response::IntoResponse;
        if uri.path() == "/6f32e2f8-38d1-43a7-b6ea-215bbfe6a314__1.wav" {
            ([(axum::http::header::CONTENT_TYPE, "audio/wav")], recording()).into_response()
        } else {
            axum::http::StatusCode::NOT_FOUND.into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn freeswitch_xml_cdrs_become_calls_and_their_recordings_are_fetched() {
    let dir = temp_dir("pbx-fs-xml");
    let files = corpora("freeswitch-xml");
    assert_eq!(files.len(), 6);
    // The 2008 call recorded itself to /mnt/powervault/…/<uuid>__1.wav: the PBX serves its
    // recordings over HTTP, which the account's settings say.
    let base = recording_server().await;
    let app = TestApp::start_in(dir.clone()).await;
    let owner = app.owner().await;
    let template = format!("{base}/{{name}}");
    let (status, body) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/integrations/pbx",
            Some(json!({ "recording_url_template": template })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["extension_max_digits"], 5,
        "the other settings keep their defaults"
    );
    let dir = app.stop().await;

    let (code, out, err) = import(&dir, "default", "freeswitch-xml", &files);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.matches("created 1, updated 0").count(), 5, "{out}");
    assert!(
        err.contains("conference_3565.cdr.xml:1: skipped: a mod_conference summary"),
        "{err}"
    );
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[
            // From the `public` context (outside), transferred to 915121007938 through the
            // gateway, which answered: answered, by nobody of ours; talk is the whole scenario.
            (
                "4b3b36af-3d98-4670-bc14-0ee08890d7d6",
                "2019-06-11T05:15:18Z incoming anonymous→7010 op=- q=- ring=- talk=22 answered"
            ),
            (
                "6a7ccd66-6d2f-46c4-abd9-07cf37fc161e",
                "2019-06-11T05:14:46Z incoming anonymous→7010 op=- q=- ring=- talk=18 answered"
            ),
            // Refused at once in the public context (send_refuse, NORMAL_CLEARING, no answer).
            (
                "80183ec8-d424-11e3-8fb2-65b6c3cdac7d",
                "2014-05-05T07:11:38Z incoming 8009→003468888646444 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
            // 2008, no core-uuid and no channel_data: an extension dialling the PSTN (openzap).
            // answer_uepoch there is the early-media time; the callflow's answered_time (and
            // billsec 36) say 11:35:41.
            (
                "6f32e2f8-38d1-43a7-b6ea-215bbfe6a314",
                "2008-07-31T18:35:38Z softphone_outgoing 1160→92137991400 op=1160 q=- ring=3 talk=36 answered"
            ),
            // 2009: the caller hung up while the gateway rang (ORIGINATOR_CANCEL, sip 487).
            (
                "91353230-461f-11de-aa7f-b10b4edc0c92",
                "2009-05-21T15:53:46Z softphone_outgoing 1000→2622 op=1000 q=- ring=2 talk=0 request_cancelled"
            ),
        ])
    );
    let call = "6f32e2f8-38d1-43a7-b6ea-215bbfe6a314";
    let mut d = Value::Null;
    for _ in 0..200 {
        d = detail(&app, &owner, call).await;
        // The call row and its recording row are read one after the other: wait for both.
        let state = &d["details"]["recording"]["state"];
        if state == "failed" || (state == "stored" && d["has_recording"] == true) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(d["details"]["recording_url"], format!("{base}/{call}__1.wav"));
    assert_eq!(d["details"]["recording"]["state"], "stored", "{d}");
    assert_eq!(d["has_recording"], true);
    let r = app
        .fetch(
            &owner,
            &format!("/api/v1/calls/{}/recording", d["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        recording(),
        "the PBX's file, fetched and served"
    );
    // The 2019 recording was uploaded by mod_http_cache under `name=`: the same template names it.
    let d = detail(&app, &owner, "4b3b36af-3d98-4670-bc14-0ee08890d7d6").await;
    assert_eq!(
        d["details"]["recording_url"],
        format!("{base}/4b3b36af-3d98-4670-bc14-0ee08890d7d6.wav")
    );
    let flow = d["details"]["flow"].as_array().unwrap();
    assert_eq!(flow[0]["block"], "Local_Extension");
    assert_eq!(flow[0]["outcome"], "public → 7010");
    assert!(
        flow.iter()
            .any(|s| s["block"] == "Gateway_Extension" && s["outcome"] == "default → 915121007938"),
        "{flow:?}"
    );
}

#[tokio::test]
async fn freeswitch_csv_rows_become_calls() {
    let dir = temp_dir("pbx-fs-csv");
    let files = corpora("freeswitch-csv");
    assert_eq!(files.len(), 1);
    let (code, out, err) = import(&dir, "default", "freeswitch-csv", &files);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created 5, updated 0, unchanged 0, pending 0, skipped 0, rejected 0"),
        "{out}"
    );
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    // The `example` template; public context: calls from outside that ended at once, never put
    // through (no b-leg uuid). Local stamps in the account's zone (UTC).
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[
            (
                "a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d",
                "2014-05-29T16:59:50Z incoming 9007→0034688886392 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
            (
                "e29ff0ae-e752-11e3-8bff-65b6c3cdac7d",
                "2014-05-29T17:01:32Z incoming 9008→+34688886392 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
            (
                "e2fe712e-e752-11e3-8c03-65b6c3cdac7d",
                "2014-05-29T17:01:33Z incoming 9008→34688886392 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
            (
                "e34619ac-e752-11e3-8c07-65b6c3cdac7d",
                "2014-05-29T17:01:33Z incoming 9008→0034688886392 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
            (
                "e38cb5b0-e752-11e3-8c0b-65b6c3cdac7d",
                "2014-05-29T17:01:34Z incoming 9008→00034688886392 op=- q=- ring=- talk=0 ended_in_ivr"
            ),
        ])
    );
}

/// The documentation's scenarios reuse one linkedid for unrelated examples: each scenario is
/// imported into an account of its own, as the separate call it describes.
fn scenarios(dir: &Path) -> Vec<(String, PathBuf)> {
    let text = std::fs::read_to_string(corpus("asterisk-csv", "cdr-specification_scenarios")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let mut by_scenario: Vec<(String, Vec<&str>)> = Vec::new();
    for line in lines {
        let name = line
            .split("\",\"")
            .next()
            .unwrap()
            .trim_start_matches('"')
            .replace("\"\"", "\"");
        match by_scenario.iter_mut().find(|(n, _)| *n == name) {
            Some((_, rows)) => rows.push(line),
            None => by_scenario.push((name, vec![line])),
        }
    }
    by_scenario
        .into_iter()
        .enumerate()
        .map(|(i, (name, rows))| {
            let file = dir.join(format!("scenario-{i}.csv"));
            std::fs::write(&file, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
            (name, file)
        })
        .collect()
}

#[tokio::test]
async fn asterisk_cdr_scenarios_become_one_call_each() {
    let dir = temp_dir("pbx-ast-docs");
    let files = dir.join("scenarios");
    std::fs::create_dir_all(&files).unwrap();
    let scenarios = scenarios(&files);
    assert_eq!(scenarios.len(), 19);
    for (i, (name, file)) in scenarios.iter().enumerate() {
        let (code, out, err) = import(&dir, &format!("s{i}"), "asterisk-csv", &[file.display().to_string()]);
        // The documentation's "SIP Protocol Attended Transfer" has an end time cut short.
        let bad = name.contains("SIP Protocol Attended Transfer");
        assert_eq!(code, if bad { 2 } else { 0 }, "{name}: {out}{err}");
    }
    let app = TestApp::start_in(dir).await;
    let mut got = Vec::new();
    for (i, (name, _)) in scenarios.iter().enumerate() {
        let token = app
            .token(&format!("s{i}"), "owner", Role::Owner, TokenScope::Full)
            .await;
        for (id, line) in calls(&app, &token).await {
            got.push(format!("{name} | {id} | {line}"));
        }
    }
    // Alice (100, SIP/alice) and her colleagues are extensions: these are internal calls, kept
    // as the caller's outgoing calls with the caller's endpoint as operator. Ring runs from the
    // first row's start to the first answer by a bridged party (or an application for calls to
    // a feature code), talk from there to the last row's end. Times are the account's zone, UTC.
    let l = "Asterisk-01-1362424276.2";
    let expected = [
        format!("Unanswered \"Inbound\" Call | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→500 op=alice q=- ring=2 talk=0 no_answer"),
        format!("Unanswered \"Outbound\" Call | {l} | 2013-03-04T13:11:18Z softphone_outgoing →s op=alice q=- ring=2 talk=0 no_answer"),
        format!("Single Party | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→8500 op=alice q=- ring=2 talk=58 answered"),
        format!("Basic Two Party Calls / Basic Call | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=8 talk=112 answered"),
        format!("Basic Two Party Calls / Unanswered Dial | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=0 no_answer"),
        format!("Basic Two Party Calls / Parallel Dial | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=60 answered"),
        format!("Transfers / Blind Transfer | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=85 answered"),
        format!("Transfers / Core Attended Transfer to Channel | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=85 answered"),
        format!("Transfers / Core Attended Transfer to Application | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=110 answered"),
        // Its first row is rejected; the two others name different (mistyped) linkedids.
        "Transfers / SIP Protocol Attended Transfer | Asterisk-01-136242428.3 | 2013-03-04T13:11:48Z softphone_outgoing 200→300 op=bob q=- ring=10 talk=10 answered".to_string(),
        "Transfers / SIP Protocol Attended Transfer | Asterisk-01-13624276.2 | 2013-03-04T13:12:08Z softphone_outgoing 100→300 op=alice q=- ring=0 talk=60 answered".to_string(),
        format!("Transfers / Blonde Transfer | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=62 answered"),
        format!("Transfers / Three Way Call | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=110 answered"),
        format!("Transfers / SIP Attended Transfer | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=60 answered"),
        // A Local channel places the call: no phone to name, so the caller's name is the operator.
        "Local Channels / Non-optimizing Local Channels | Asterisk-01-1362424290.1 | 2013-03-04T13:11:18Z softphone_outgoing dial\\_alice→100 op=dial\\_alice q=- ring=10 talk=50 answered".to_string(),
        format!("Call Park | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→200 op=alice q=- ring=10 talk=130 answered"),
        format!("Call Queues / Call Queue - Example 1 | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→800 op=alice q=complaints ring=60 talk=120 answered"),
        format!("Call Queues / Call Queue - Example 2 | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→800 op=alice q=complaints ring=80 talk=100 answered"),
        format!("Conference Call | {l} | 2013-03-04T13:11:18Z softphone_outgoing 100→1000 op=alice q=- ring=10 talk=230 answered"),
        format!("A Complex Example | {l} | 2013-03-04T13:00:00Z softphone_outgoing 100→200 op=alice q=sales ring=5 talk=355 answered"),
        "A Complex Example | Asterisk-01-1362424277.1 | 2013-03-04T13:01:10Z softphone_outgoing 200→300 op=bob q=- ring=10 talk=120 answered".to_string(),
    ];
    assert_eq!(got, expected);
}

#[tokio::test]
async fn asterisk_cdr_files_and_a_malformed_line() {
    let dir = temp_dir("pbx-ast-csv");
    // The whole documentation file in one go: its bad row is named by file and line, and the
    // rest of the file is imported.
    let docs = corpus("asterisk-csv", "cdr-specification_scenarios");
    let (code, out, err) = import(&dir, "docs", "asterisk-csv", std::slice::from_ref(&docs));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("{docs}:17: rejected: end: \"2013-04-13:12:08\" is not a time")),
        "{err}"
    );
    assert!(out.contains("rejected 1"), "{out}");

    let malformed = corpus("asterisk-csv", "buggy_malformed");
    let good = corpus("asterisk-csv", "cdrlib_good");
    let master = corpus("asterisk-csv", "self_test_Master.csv");
    let master2 = corpus("asterisk-csv", "self_test_Master2");
    let (code, out, err) = import(
        &dir,
        "default",
        "asterisk-csv",
        &[malformed.clone(), good, master, master2],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!("{malformed}:1: rejected: a quoted value is not closed")),
        "{err}"
    );
    // Master2.csv repeats Master.csv's first row: the same call, unchanged.
    let summary: Vec<&str> = out.lines().map(|l| l.rsplit(": ").next().unwrap()).collect();
    assert_eq!(
        summary,
        [
            "created 0, updated 0, unchanged 0, pending 0, skipped 0, rejected 1",
            "created 1, updated 0, unchanged 0, pending 0, skipped 0, rejected 0",
            "created 2, updated 0, unchanged 0, pending 0, skipped 0, rejected 0",
            "created 0, updated 0, unchanged 1, pending 0, skipped 0, rejected 0",
        ]
    );
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[
            // Five rows of one channel (one uniqueid, no linkedid): one call. The 18-column
            // cdr_csv layout (loguniqueid, loguserfield); "test" is a SIP user, 100 an extension.
            (
                "1231977075.0",
                "2009-01-14T23:51:15Z softphone_outgoing test→100 op=test q=- ring=0 talk=5 answered"
            ),
            // The console dialling extension 1 (no caller number: the API shows it empty).
            (
                "1270167992.0",
                "2010-04-02T00:26:32Z softphone_outgoing →1 op=dsp q=- ring=0 talk=7 answered"
            ),
            (
                "1270168442.0",
                "2010-04-02T00:34:02Z softphone_outgoing →1 op=dsp q=- ring=0 talk=7 answered"
            ),
        ])
    );
    let d = detail(&app, &owner, "1231977075.0").await;
    assert_eq!(d["details"]["log"]["lines"].as_array().unwrap().len(), 5);
    assert_eq!(
        d["details"]["log"]["lines"][4],
        "2009-01-14 23:51:15 SIP/test-02897fd8 → - Hangup() BUSY billsec=0"
    );
}

#[tokio::test]
async fn asterisk_queue_log_lines_wait_for_their_call() {
    let dir = temp_dir("pbx-queue-log");
    let files = corpora("asterisk-queue-log");
    assert_eq!(files.len(), 1);
    // The documentation's one line: SIP/8007 did not answer caller 1366720340.303267 in MYQUEUE.
    // No ENTERQUEUE: not enough for a call, so it waits for the call's CDR (same id).
    let (code, out, err) = import(&dir, "default", "asterisk-queue-log", &files);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("created 0, updated 0, unchanged 0, pending 1"), "{out}");
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    assert!(calls(&app, &owner).await.is_empty());
    let cdr = json!([{
        "external_id": "1366720340.303267", "kind": "incoming", "from": "+74951112233", "to": "800",
        "scenario_started_at": "2013-04-23T12:32:15Z", "ended_at": "2013-04-23T12:33:00Z"
    }]);
    app.ingest_ok(&owner, cdr).await;
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[(
            "1366720340.303267",
            "2013-04-23T12:32:15Z incoming +74951112233→800 op=- q=MYQUEUE ring=- talk=45 -"
        )])
    );
    let d = detail(&app, &owner, "1366720340.303267").await;
    assert_eq!(
        d["details"]["log"]["lines"],
        json!(["1366720340|1366720340.303267|MYQUEUE|SIP/8007|RINGNOANSWER|1000"])
    );
}

/// The 2013-05 a-leg, made a call from outside: caller +74951112233 in the `public` context,
/// without the variables that name the leg it was bridged to (so only the b-leg can).
fn incoming_a_leg() -> String {
    let text = std::fs::read_to_string(corpus("freeswitch-json", "2013-05")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    let vars = doc["variables"].as_object_mut().unwrap();
    vars.remove("originated_legs");
    vars.remove("dialed_user");
    let cp = &mut doc["callflow"]["caller_profile"];
    cp["caller_id_number"] = json!("+74951112233");
    cp["context"] = json!("public");
    doc.to_string()
}

/// Its b-leg: FreeSWITCH rang extension 1002, which answered.
fn b_leg() -> String {
    json!({
        "channel_data": {"direction": "outbound"},
        "variables": {
            "uuid": "28262ed6-9d57-4dac-8f0b-9cad38cc5183",
            "originating_leg_uuid": "c8ccef5e-34c2-4fd2-9a2e-fa6f295f3a1e",
            "answer_uepoch": "1368707611310737"
        },
        "callflow": {"caller_profile": {"caller_id_number": "+74951112233", "destination_number": "1002"}}
    })
    .to_string()
}

async fn post_cdr(app: &TestApp, auth: &str, content_type: &str, body: String) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/ingest/freeswitch", app.base))
        .header("authorization", auth)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test]
async fn freeswitch_posts_with_basic_or_bearer_and_legs_merge_in_either_order() {
    let app = TestApp::start("pbx-fs-post").await;
    let owner = app.owner().await;
    let ingest = app.token("default", "pbx", Role::Admin, TokenScope::Ingest).await;
    let id = "c8ccef5e-34c2-4fd2-9a2e-fa6f295f3a1e";

    // mod_xml_cdr: a form with cdr=<document>, HTTP Basic with the token as password.
    let xml = std::fs::read_to_string(corpus("freeswitch-xml", "2008-07")).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("cdr", &xml)
        .finish();
    let (status, body) = post_cdr(
        &app,
        &basic("freeswitch", "wrong"),
        "application/x-www-form-urlencoded",
        form.clone(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = post_cdr(
        &app,
        &basic("freeswitch", &ingest),
        "application/x-www-form-urlencoded",
        form.clone(),
    )
    .await;
    assert_eq!((status, &body["created"]), (200, &json!(1)), "{body}");
    let (status, body) = post_cdr(&app, &basic(&ingest, ""), "application/x-www-form-urlencoded", form).await;
    assert_eq!((status, &body["unchanged"]), (200, &json!(1)), "{body}");

    // A truncated document is refused whole, naming where it broke.
    let cut = &xml[..xml.len() / 2];
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("cdr", cut)
        .finish();
    let (status, body) = post_cdr(
        &app,
        &format!("Bearer {ingest}"),
        "application/x-www-form-urlencoded",
        form,
    )
    .await;
    assert_eq!((status, error_field(&body)), (400, "cdr"), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("line ") && message.contains("truncated"),
        "{message}"
    );
    let (status, body) = post_cdr(
        &app,
        &format!("Bearer {ingest}"),
        "application/json",
        "{\"variables\":".into(),
    )
    .await;
    assert_eq!((status, error_field(&body)), (400, "body"), "{body}");
    let (status, body) = post_cdr(&app, &format!("Bearer {ingest}"), "text/plain", "hello".into()).await;
    assert_eq!((status, error_field(&body)), (400, "cdr"), "{body}");
    assert_eq!(calls(&app, &owner).await.len(), 1);

    // b-leg first: it waits; then the a-leg makes the call, answered by 1002.
    let (status, body) = post_cdr(&app, &basic("fs", &ingest), "application/json", b_leg()).await;
    assert_eq!((status, &body["pending"]), (200, &json!(1)), "{body}");
    let (status, body) = post_cdr(&app, &basic("fs", &ingest), "application/json", incoming_a_leg()).await;
    assert_eq!((status, &body["created"]), (200, &json!(1)), "{body}");
    let merged = "2013-05-16T12:33:28Z incoming +74951112233→1002 op=1002 q=- ring=- talk=23 answered";
    assert_eq!(calls(&app, &owner).await.get(id).map(String::as_str), Some(merged));

    // The other order, in another account: the same call.
    let other = app.token("other", "pbx", Role::Admin, TokenScope::Ingest).await;
    let other_owner = app.token("other", "owner", Role::Owner, TokenScope::Full).await;
    let (status, body) = post_cdr(&app, &format!("Bearer {other}"), "application/json", incoming_a_leg()).await;
    assert_eq!((status, &body["created"]), (200, &json!(1)), "{body}");
    // Alone, the a-leg says it was bridged and answered, not by whom.
    let alone = "2013-05-16T12:33:28Z incoming +74951112233→1002 op=- q=- ring=- talk=23 answered";
    assert_eq!(calls(&app, &other_owner).await.get(id).map(String::as_str), Some(alone));
    let (status, body) = post_cdr(&app, &format!("Bearer {other}"), "application/json", b_leg()).await;
    assert_eq!((status, &body["updated"]), (200, &json!(1)), "{body}");
    let calls_other = calls(&app, &other_owner).await;
    assert_eq!(calls_other.len(), 1);
    assert_eq!(calls_other.get(id).map(String::as_str), Some(merged));
}

#[tokio::test]
async fn pbx_settings_are_checked_and_change_what_imports_mean() {
    let app = TestApp::start("pbx-settings").await;
    let owner = app.owner().await;
    let supervisor = app.token("default", "sup", Role::Supervisor, TokenScope::Full).await;
    let (status, _) = app.get(&supervisor, "/api/v1/integrations/pbx").await;
    assert_eq!(status, 403);
    let (status, body) = app.get(&owner, "/api/v1/integrations/pbx").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "extension_max_digits": 5, "own_numbers": [],
            "external_contexts": ["public", "from-trunk", "from-pstn", "from-external", "from-extern", "from-did"],
            "internal_calls": "outgoing", "recording_url_template": null, "timezone": null
        })
    );
    for (change, field) in [
        (json!({"extension_max_digits": 12}), "extension_max_digits"),
        (json!({"own_numbers": ["12"]}), "own_numbers[0]"),
        (json!({"internal_calls": "drop"}), "internal_calls"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"recording_url_template": "https://pbx/rec"}),
            "recording_url_template",
        ),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, body) = app
            .send("PUT", &owner, "/api/v1/integrations/pbx", Some(change.clone()))
            .await;
        assert_eq!((status, error_field(&body)), (400, field), "{change}: {body}");
    }
    let (_, unchanged) = app.get(&owner, "/api/v1/integrations/pbx").await;
    assert_eq!(unchanged, body, "refused changes change nothing");
    let change = json!({"internal_calls": "skip", "timezone": "Europe/Moscow"});
    let (status, body) = app.send("PUT", &owner, "/api/v1/integrations/pbx", Some(change)).await;
    assert_eq!(
        (status, &body["internal_calls"], &body["timezone"]),
        (200, &json!("skip"), &json!("Europe/Moscow"))
    );
    let dir = app.stop().await;

    // Internal calls are now skipped, and local times are Moscow's.
    let (code, out, err) = import(
        &dir,
        "default",
        "asterisk-csv",
        &[corpus("asterisk-csv", "self_test_Master.csv")],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("created 0, updated 0, unchanged 0, pending 0, skipped 2, rejected 0"),
        "{out}"
    );
    assert!(
        err.contains("skipped: call 1270167992.0: an internal call; internal_calls is skip"),
        "{err}"
    );
    let (code, out, err) = import(&dir, "default", "freeswitch-csv", &corpora("freeswitch-csv"));
    assert_eq!(code, 0, "{out}{err}");
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    let got = calls(&app, &owner).await;
    assert_eq!(got.len(), 5);
    assert_eq!(
        got["a5c9f6c0-e752-11e3-8bfb-65b6c3cdac7d"],
        "2014-05-29T12:59:50Z incoming 9007→0034688886392 op=- q=- ring=- talk=0 ended_in_ivr"
    );
}

/// One call's times and outcome in a CDR row.
struct Leg<'a> {
    start: &'a str,
    answer: &'a str,
    end: &'a str,
    disposition: &'a str,
}

/// A cdr_csv row (21 columns: uniqueid, userfield, peeraccount, linkedid, sequence).
fn cdr_row(src: &str, dst: &str, dstchannel: &str, leg: Leg, linkedid: &str, seq: u32) -> String {
    let Leg {
        start,
        answer,
        end,
        disposition,
    } = leg;
    format!(
        "\"\",\"{src}\",\"{dst}\",\"default\",\"\",\"SIP/{src}-00000001\",\"{dstchannel}\",\"Dial\",\"{dstchannel}\",\"{start}\",\"{answer}\",\"{end}\",0,0,\"{disposition}\",\"DOCUMENTATION\",\"{linkedid}\",\"\",\"\",\"{linkedid}\",{seq}\n"
    )
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A running `calltrail import --follow`, killed when the test ends (also when it fails).
struct Follower(std::process::Child);

impl Follower {
    /// Kills it and answers what it wrote to standard error.
    fn stop(&mut self) -> String {
        use std::io::Read;
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the account's calls satisfy `done` (the follower runs beside the server).
async fn wait_calls(
    app: &TestApp,
    token: &str,
    what: &str,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    let mut got = BTreeMap::new();
    for _ in 0..200 {
        got = calls(app, token).await;
        if done(&got) {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: {got:?}");
}

#[tokio::test]
async fn import_follow_tails_a_live_log_through_rotation_and_restarts() {
    let dir = temp_dir("pbx-follow");
    let log = dir.join("Master.csv");
    append(
        &log,
        &cdr_row(
            "100",
            "200",
            "SIP/bob-00000002",
            Leg {
                start: "2026-11-25 10:00:00",
                answer: "2026-11-25 10:00:05",
                end: "2026-11-25 10:01:00",
                disposition: "ANSWERED",
            },
            "1700.1",
            1,
        ),
    );
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let app = TestApp::start_in(data.clone()).await;
    let owner = app.owner().await;
    let start = || {
        crate::common::binary(&[
            "import",
            "--format",
            "asterisk-csv",
            "--follow",
            "--every-ms",
            "50",
            "--data",
            data.to_str().unwrap(),
            log.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map(Follower)
        .expect("follower")
    };
    let mut follower = start();
    let a = "2026-11-25T10:00:00Z softphone_outgoing 100→200 op=100 q=- ring=5 talk=55 answered";
    wait_calls(&app, &owner, "the first call", |c| {
        c.get("1700.1").map(String::as_str) == Some(a)
    })
    .await;

    // The same call goes on (a transfer written later), and a broken line comes: the call is
    // extended, the line refused by its number, the follower goes on.
    append(
        &log,
        &cdr_row(
            "100",
            "300",
            "SIP/carol-00000003",
            Leg {
                start: "2026-11-25 10:01:00",
                answer: "2026-11-25 10:01:02",
                end: "2026-11-25 10:02:00",
                disposition: "ANSWERED",
            },
            "1700.1",
            2,
        ),
    );
    append(&log, "\"broken\n");
    let a2 = "2026-11-25T10:00:00Z softphone_outgoing 100→200 op=100 q=- ring=5 talk=115 answered";
    wait_calls(&app, &owner, "the call extended", |c| {
        c.get("1700.1").map(String::as_str) == Some(a2)
    })
    .await;

    // Rotation: the log moves aside, a new one starts.
    std::fs::rename(&log, dir.join("Master.csv.1")).unwrap();
    append(
        &log,
        &cdr_row(
            "101",
            "79161234567",
            "SIP/trunk-00000004",
            Leg {
                start: "2026-11-25 11:00:00",
                answer: "",
                end: "2026-11-25 11:00:30",
                disposition: "BUSY",
            },
            "1800.1",
            1,
        ),
    );
    let b = "2026-11-25T11:00:00Z softphone_outgoing 101→79161234567 op=101 q=- ring=30 talk=0 busy";
    wait_calls(&app, &owner, "the call after rotation", |c| {
        c.get("1800.1").map(String::as_str) == Some(b)
    })
    .await;
    let err = follower.stop();
    assert!(
        err.contains(&format!("{}:3: rejected: a quoted value is not closed", log.display())),
        "{err}"
    );

    // Written while nobody followed: read after a restart, from where it stopped.
    append(
        &log,
        &cdr_row(
            "102",
            "79161234568",
            "SIP/trunk-00000005",
            Leg {
                start: "2026-11-25 12:00:00",
                answer: "2026-11-25 12:00:10",
                end: "2026-11-25 12:01:10",
                disposition: "ANSWERED",
            },
            "1900.1",
            1,
        ),
    );
    let (_, before) = app.get(&owner, "/api/v1/ingest/health").await;
    let mut follower = start();
    let c = "2026-11-25T12:00:00Z softphone_outgoing 102→79161234568 op=102 q=- ring=10 talk=60 answered";
    let all = wait_calls(&app, &owner, "the call written while stopped", |c2| {
        c2.get("1900.1").map(String::as_str) == Some(c)
    })
    .await;
    assert_eq!(all.len(), 3);
    follower.stop();
    let (_, after) = app.get(&owner, "/api/v1/ingest/health").await;
    let source = |h: &Value| {
        h["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == "import:asterisk-csv")
            .unwrap()
            .clone()
    };
    let (before, after) = (source(&before), source(&after));
    assert_eq!(
        ["accepted", "updated", "duplicates", "rejected"]
            .map(|k| (before[k].as_i64().unwrap(), after[k].as_i64().unwrap())),
        [(2, 3), (1, 1), (0, 0), (1, 1)],
        "only the new line was stored after the restart: {after}"
    );
}

/// Every CEL file of the corpora: its calls as the history shows them, one line each
/// (`file | linkedid | line`), written from reading the samples with the rules of
/// docs/connect-your-pbx.md «Asterisk CEL».
const CEL_EXPECTED: &str = include_str!("data/cel-expected.txt");

#[tokio::test]
async fn asterisk_cel_files_become_one_call_per_linkedid() {
    let dir = temp_dir("pbx-cel");
    let mut files = corpora("asterisk-cel");
    files.retain(|f| f.ends_with(".csv"));
    files.extend(corpora("asterisk-cel/wazo-call-logd"));
    assert_eq!(files.len(), 78);
    // Each file is a scenario of its own (the dumps reuse ids): one account each.
    for (i, file) in files.iter().enumerate() {
        let (code, out, err) = import(&dir, &format!("cel{i}"), "asterisk-cel", std::slice::from_ref(file));
        assert_eq!(code, 0, "{file}: {out}{err}");
    }
    let app = TestApp::start_in(dir.clone()).await;
    let mut got = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let token = app
            .token(&format!("cel{i}"), "owner", Role::Owner, TokenScope::Full)
            .await;
        let name = Path::new(file).file_name().unwrap().to_str().unwrap().to_string();
        let mut calls: Vec<(String, String)> = calls(&app, &token).await.into_iter().collect();
        // In the order the calls began, as the expectations list them.
        calls.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        got.extend(calls.into_iter().map(|(id, line)| format!("{name} | {id} | {line}")));
    }
    let expected: Vec<String> = CEL_EXPECTED
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = expected.iter().filter(|l| !got.contains(l)).collect();
    let extra: Vec<&String> = got.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "expected but not found:\n{missing:#?}\nfound but not expected:\n{extra:#?}"
    );
    assert_eq!(got.len(), expected.len());
    app.stop().await;

    // Imported again: nothing changes.
    for (i, file) in files.iter().enumerate().take(5) {
        let (code, out, err) = import(&dir, &format!("cel{i}"), "asterisk-cel", std::slice::from_ref(file));
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("created 0, updated 0,"), "{file}: {out}");
    }
}

#[tokio::test]
async fn truncated_documents_are_named_by_file_and_line_and_the_others_imported() {
    let dir = temp_dir("pbx-truncated");
    let xml = std::fs::read_to_string(corpus("freeswitch-xml", "2008-07")).unwrap();
    let json = std::fs::read_to_string(corpus("freeswitch-json", "2013-05")).unwrap();
    let cut_xml = dir.join("cut.cdr.xml");
    std::fs::write(&cut_xml, &xml[..xml.len() / 2]).unwrap();
    let cut_json = dir.join("cut.json");
    std::fs::write(&cut_json, &json[..json.len() / 3]).unwrap();
    let xml_lines = xml[..xml.len() / 2].lines().count();

    let good_xml = corpus("freeswitch-xml", "2009-05");
    let (code, out, err) = import(
        &dir,
        "default",
        "freeswitch-xml",
        &[cut_xml.display().to_string(), good_xml],
    );
    assert_eq!(code, 2, "{out}{err}");
    let want = format!(
        "{}:{}: rejected: not a mod_xml_cdr document: the document ends inside",
        cut_xml.display(),
        xml_lines
    );
    assert!(err.contains(&want), "{want}\n{err}");
    assert!(
        out.contains("91353230-461f-11de-aa7f-b10b4edc0c92") || out.contains("created 1"),
        "{out}"
    );

    let good_json = corpus("freeswitch-json", "2014-04");
    let (code, out, err) = import(
        &dir,
        "default",
        "freeswitch-json",
        &[cut_json.display().to_string(), good_json],
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains(&format!(
            "{}:1: rejected: not a mod_json_cdr document: EOF while parsing",
            cut_json.display()
        )),
        "{err}"
    );
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    let got: Vec<String> = calls(&app, &owner).await.into_keys().collect();
    assert_eq!(
        got,
        [
            "86cfd6e2-dbda-45a3-b59d-f683ec368e8b",
            "91353230-461f-11de-aa7f-b10b4edc0c92"
        ]
    );
}

#[tokio::test]
async fn a_log_imported_in_small_steps_gives_the_same_calls() {
    // 1,200 calls of two rows each (a no-answer attempt, then the answered leg), read 64 KiB at
    // a time: calls have their rows on both sides of a step's end, and lines are cut by it.
    let dir = temp_dir("pbx-steps");
    let log = dir.join("Master.csv");
    let mut text = String::new();
    for i in 0..1_200u32 {
        let id = format!("{}.{i}", 1_764_000_000 + i);
        let t = |s: u32| {
            let s = i * 60 + s;
            format!(
                "2026-11-{:02} {:02}:{:02}:{:02}",
                1 + s / 86_400,
                s / 3600 % 24,
                s / 60 % 60,
                s % 60
            )
        };
        let (start, answer, end) = (t(0), t(5), t(5 + 10 + i % 40));
        text += &cdr_row(
            "101",
            "79161234567",
            "SIP/trunk-00000001",
            Leg {
                start: &start,
                answer: "",
                end: &answer,
                disposition: "NO ANSWER",
            },
            &id,
            1,
        );
        text += &cdr_row(
            "101",
            "79161234567",
            "SIP/trunk-00000002",
            Leg {
                start: &answer,
                answer: &answer,
                end: &end,
                disposition: "ANSWERED",
            },
            &id,
            2,
        );
    }
    text += "\"broken\n";
    std::fs::write(&log, &text).unwrap();
    let data = dir.join("data");
    let (code, out, err) = calltrail(
        &[
            "import",
            "--format",
            "asterisk-csv",
            "--chunk-bytes",
            "65536",
            "--data",
            data.to_str().unwrap(),
            log.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 2, "{out}{err}");
    // Each call stored once: none first from half its rows.
    assert!(
        out.contains("created 1200, updated 0, unchanged 0, pending 0, skipped 0, rejected 1"),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "{}:2401: rejected: a quoted value is not closed",
            log.display()
        )),
        "{err}"
    );
    let app = TestApp::start_in(data).await;
    let owner = app.owner().await;
    let got = calls(&app, &owner).await;
    assert_eq!(got.len(), 1_200);
    for i in 0..1_200u32 {
        let id = format!("{}.{i}", 1_764_000_000 + i);
        let s = i * 60;
        let start = format!(
            "2026-11-{:02}T{:02}:{:02}:00Z",
            1 + s / 86_400,
            s / 3600 % 24,
            s / 60 % 60
        );
        let want = format!(
            "{start} softphone_outgoing 101→79161234567 op=101 q=- ring=5 talk={} answered",
            10 + i % 40
        );
        assert_eq!(got.get(&id), Some(&want), "{id}");
    }
}

#[tokio::test]
async fn native_ndjson_files_are_imported_line_by_line() {
    let dir = temp_dir("pbx-ndjson");
    let file = dir.join("calls.ndjson");
    let lines = [
        r#"{"external_id":"n1","kind":"incoming","from":"79161234567","to":"100","scenario_started_at":"2026-11-25T09:00:00Z","ended_at":"2026-11-25T09:01:00Z"}"#,
        r#"{"external_id":"n2","kind":"softphone_outgoing","from":"100","to":"79161234568","dial_started_at":"2026-11-25T10:00:00Z","answered_at":"2026-11-25T10:00:07Z","ended_at":"2026-11-25T10:02:07Z","operator":"ivanova"}"#,
        r#"{"external_id":"n3","kind":"sideways"}"#,
        r#"{"external_id":"n1","result":"lost_by_operator","tags":["vip"]}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let path = file.display().to_string();
    let (code, out, err) = import(&dir, "default", "native-ndjson", std::slice::from_ref(&path));
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("created 2, updated 1, unchanged 0, pending 0, skipped 0, rejected 1"),
        "{out}"
    );
    assert!(err.contains(&format!("{path}:3: rejected: kind:")), "{err}");
    let (code, out, _) = import(&dir, "default", "native-ndjson", std::slice::from_ref(&path));
    assert_eq!(code, 2);
    assert!(out.contains("created 0, updated 0, unchanged 3,"), "{out}");
    let app = TestApp::start_in(dir).await;
    let owner = app.owner().await;
    assert_eq!(
        calls(&app, &owner).await,
        expect(&[
            (
                "n1",
                "2026-11-25T09:00:00Z incoming 79161234567→100 op=- q=- ring=- talk=60 lost_by_operator"
            ),
            (
                "n2",
                "2026-11-25T10:00:00Z softphone_outgoing 100→79161234568 op=ivanova q=- ring=7 talk=120 -"
            ),
        ])
    );
}
