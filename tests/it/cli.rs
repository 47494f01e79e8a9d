//! The command line as a user runs it: the real binary, its exit codes, and the data folder a
//! server then serves.

use std::io::Write;
use std::process::Stdio;

use crate::common::{disk_recordings, session_cookie, temp_dir, TestApp};

/// Runs the real binary with `stdin`; returns its exit code, standard output and error.
pub(crate) fn calltrail(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = crate::common::binary(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn calltrail");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    let dir = temp_dir("cli");
    let data = dir.to_str().unwrap();
    let (code, out, err) = calltrail(
        &[
            "user",
            "add",
            "--login",
            "boss",
            "--role",
            "owner",
            "--name",
            "Главный",
            "--data",
            data,
        ],
        "correct horse battery\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("created user "));
    let (code, _, err) = calltrail(
        &[
            "user",
            "add",
            "--login",
            "sup",
            "--role",
            "supervisor",
            "--group",
            "sales",
            "--group",
            "support",
            "--data",
            data,
        ],
        "another long one\n",
    );
    assert_eq!(code, 0, "{err}");

    // Wrong input: exit 2 with a message naming what is wrong; nothing created.
    let (code, _, err) = calltrail(
        &["user", "add", "--login", "x", "--role", "king", "--data", data],
        "password1\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("--role"), "{err}");
    let (code, _, err) = calltrail(
        &["user", "add", "--login", "y", "--role", "operator", "--data", data],
        "short\n",
    );
    assert_eq!(code, 2);
    assert!(err.contains("password"), "{err}");
    let (code, _, err) = calltrail(
        &["user", "add", "--login", "boss", "--role", "admin", "--data", data],
        "password123\n",
    );
    assert_eq!(code, 2, "a taken login: {err}");
    let (code, _, err) = calltrail(&["token", "create", "--login", "nobody", "--data", data], "");
    assert_eq!(code, 2);
    assert!(err.contains("login"), "{err}");
    let (code, _, _) = calltrail(
        &["token", "create", "--login", "boss", "--scope", "root", "--data", data],
        "",
    );
    assert_eq!(code, 2);
    let (code, _, _) = calltrail(&["frobnicate"], "");
    assert_eq!(code, 2);
    let (code, _, err) = calltrail(&["serve", "--data", data, "--database-url", "mysql://x"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--database-url"), "{err}");

    let (code, full, _) = calltrail(&["token", "create", "--login", "boss", "--data", data], "");
    assert_eq!(code, 0);
    let (code, ingest, _) = calltrail(
        &[
            "token", "create", "--login", "boss", "--scope", "ingest", "--data", data,
        ],
        "",
    );
    assert_eq!(code, 0);
    let (full, ingest) = (full.trim().to_string(), ingest.trim().to_string());
    assert!(full.starts_with("ct_") && full.len() > 40);

    let app = TestApp::start_in(dir.clone()).await;
    let call = serde_json::json!([{"external_id": "cli-1", "kind": "incoming", "scenario_started_at": "2026-11-10T08:00:00Z"}]);
    assert_eq!(app.ingest(&ingest, call).await.0, 200);
    assert_eq!(
        app.get(&ingest, "/api/v1/calls").await.0,
        403,
        "an ingest token may only ingest"
    );
    let (status, page) = app.get(&full, "/api/v1/calls").await;
    assert_eq!((status, page["total"].as_u64()), (200, Some(1)));
    let (_, groups) = app.get(&full, "/api/v1/groups").await;
    let sup_id = app.dir_id(&full, "/api/v1/users", "login", "sup").await;
    let sales = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "sales")
        .unwrap();
    assert_eq!(sales["supervisors"], serde_json::json!([sup_id]));
    let (_, users) = app.get(&full, "/api/v1/users").await;
    let boss = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "boss")
        .unwrap();
    assert_eq!(
        (boss["name"].as_str(), boss["role"].as_str()),
        (Some("Главный"), Some("owner"))
    );
    // The first owner signs in with the password given on standard input.
    let r = app
        .sign_in(&serde_json::json!({"login": "boss", "password": "correct horse battery"}))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    // Creating a user in a new account creates the account; the audit log has both users.
    app.stop().await;
    let (code, _, err) = calltrail(
        &[
            "user",
            "add",
            "--login",
            "chief",
            "--role",
            "owner",
            "--account",
            "acme",
            "--group",
            "north",
            "--data",
            data,
        ],
        "acme password\n",
    );
    assert_eq!(code, 0, "{err}");
    let app = TestApp::start_in(dir.clone()).await;
    let r = app
        .sign_in(&serde_json::json!({"login": "chief", "password": "acme password", "account": "acme"}))
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["account"]["name"], "acme");
    assert_eq!(body["user"]["groups"].as_array().unwrap().len(), 1);
    let (_, log) = app.get(&full, "/api/v1/audit?action=user_created").await;
    let created: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["login"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["sup", "boss"]);
    assert_eq!(log["items"][0]["actor_login"], "(command line)");
    app.stop().await;
}

#[tokio::test]
async fn the_demo_fills_an_empty_folder_once() {
    let dir = temp_dir("demo");
    let store = crate::common::open_store(&dir);
    let (logins, token) = calltrail::demo::prepare(&store, &disk_recordings(&dir), &dir, 3_000, 90)
        .await
        .unwrap()
        .expect("first run fills");
    let roles: Vec<&str> = logins.iter().map(|l| l.role.code()).collect();
    assert_eq!(roles, ["owner", "admin", "manager", "supervisor", "operator"]);
    assert!(logins.iter().all(|l| l.password.len() >= 12));
    let printed = std::fs::read_to_string(dir.join("demo-logins.txt")).unwrap();
    assert!(printed.contains(&token) && printed.contains(&logins[3].password));
    assert!(
        calltrail::demo::prepare(&store, &disk_recordings(&dir), &dir, 3_000, 90)
            .await
            .unwrap()
            .is_none(),
        "second run reuses"
    );

    // The live generator keeps adding calls, and says so to live subscribers.
    let live = calltrail::live::LiveHub::default();
    let mut events = live.subscribe();
    let account = calltrail::domain::AccountId(1);
    let generator = tokio::spawn(calltrail::demo::run_live(
        store.clone(),
        disk_recordings(&dir),
        live.clone(),
        account,
    ));
    let calltrail::live::LiveEvent::Changed(changed) =
        tokio::time::timeout(std::time::Duration::from_secs(10), events.recv())
            .await
            .expect("a live call within 10 s")
            .expect("event")
    else {
        panic!("a change, not a resync");
    };
    generator.abort();
    assert_eq!(changed.account, account);
    let id = changed.ids[0];
    let scope = calltrail::domain::CallScope::whole_account(account);
    let call = store
        .read(move |conn| calltrail::store::view::get(conn, &scope, id, None))
        .await
        .unwrap();
    assert!(call.call.external_id.starts_with("live-"), "{}", call.call.external_id);
    let started = chrono::DateTime::parse_from_rfc3339(&call.call.started_at)
        .unwrap()
        .to_utc();
    let age = chrono::Utc::now() - started;
    assert!(age < chrono::Duration::hours(3), "a live call is recent: {age}");
    store.shutdown();

    let app = TestApp::start_in(dir).await;
    let (_, page) = app.get(&token, "/api/v1/calls?limit=500").await;
    let total = page["total"].as_u64().unwrap();
    assert!((2_900..3_100).contains(&total), "{total}");
    let items = page["items"].as_array().unwrap();
    for kind in ["incoming", "softphone_outgoing", "auto_campaign", "operator_campaign"] {
        assert!(items.iter().any(|c| c["kind"] == kind), "{kind} present");
    }
    let answered = app.get(&token, "/api/v1/calls?result=answered&limit=1").await.1["total"]
        .as_u64()
        .unwrap();
    assert!(
        answered * 100 / total > 50 && answered * 100 / total < 80,
        "{answered}/{total}"
    );
    let (_, groups) = app.get(&token, "/api/v1/groups").await;
    assert_eq!(groups["items"].as_array().unwrap().len(), 4);
    let (_, users) = app.get(&token, "/api/v1/users").await;
    assert!(users["items"].as_array().unwrap().len() >= 44);
    let (_, codes) = app.get(&token, "/api/v1/completion-codes").await;
    assert!(codes["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "Перезвонить"));
    let (_, topics) = app.get(&token, "/api/v1/topics").await;
    assert!(
        topics["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["parent_id"].is_string()),
        "topics nest"
    );

    // Every printed login signs in; each role sees what spec §1 gives it.
    let mut totals = vec![];
    for l in &logins {
        let r = app
            .sign_in(&serde_json::json!({"login": l.login, "password": l.password}))
            .await;
        assert_eq!(r.status().as_u16(), 200, "{}", l.login);
        let cookie = session_cookie(&r).expect("a session cookie");
        let page: serde_json::Value = app
            .http
            .get(format!("{}/api/v1/calls?limit=1", app.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        totals.push(page["total"].as_u64().unwrap());
        assert_eq!(
            page["items"][0].get("price").is_some(),
            l.role.sees_price(),
            "{}",
            l.login
        );
    }
    // owner, admin, manager: everything; the supervisor: two of four groups; the operator
    // (in a group with call-history access): her own calls.
    assert_eq!(&totals[..3], &[total, total, total]);
    assert!(totals[3] > total / 4 && totals[3] < total * 3 / 4, "{totals:?}");
    assert!(totals[4] > 0 && totals[4] < totals[3], "{totals:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_revoked_token_stops_at_once_even_in_an_open_stream() {
    let dir = temp_dir("revoke");
    let data = dir.to_str().unwrap().to_string();
    let (code, _, err) = calltrail(
        &["user", "add", "--login", "boss", "--role", "owner", "--data", &data],
        "correct horse battery\n",
    );
    assert_eq!(code, 0, "{err}");
    let token = |name: &str| {
        let (code, out, err) = calltrail(
            &["token", "create", "--login", "boss", "--name", name, "--data", &data],
            "",
        );
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    let (wallboard, pbx) = (token("wallboard"), token("pbx"));
    let app = TestApp::start_in(dir.clone()).await;
    let mut stream = app.live(&wallboard, "").await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // The command line works on the folder the server is serving.
    let (code, out, err) = calltrail(
        &[
            "token",
            "revoke",
            "--login",
            "boss",
            "--name",
            "wallboard",
            "--data",
            &data,
        ],
        "",
    );
    assert_eq!((code, out.trim()), (0, "revoked 1 token(s)"), "{err}");
    assert_eq!(app.get(&wallboard, "/api/v1/calls").await.0, 401);
    assert_eq!(app.get(&pbx, "/api/v1/calls").await.0, 200, "only the named token");
    let call =
        serde_json::json!([{"external_id": "r1", "kind": "incoming", "scenario_started_at": "2026-11-10T08:00:00Z"}]);
    assert_eq!(app.ingest(&pbx, call).await.0, 200);
    let end = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        futures_util::StreamExt::next(&mut stream),
    )
    .await;
    assert!(matches!(end, Ok(None)), "the revoked token's stream ended");

    let (code, _, err) = calltrail(&["token", "revoke", "--login", "nobody", "--data", &data], "");
    assert_eq!(code, 2);
    assert!(err.contains("login"), "{err}");
    let (_, log) = app.get(&pbx, "/api/v1/audit?action=token_revoked").await;
    assert_eq!(log["items"][0]["detail"]["revoked"], 1);
    assert_eq!(log["items"][0]["detail"]["name"], "wallboard");
    app.stop().await;
}

#[tokio::test]
async fn export_from_the_command_line_matches_the_api() {
    let dir = temp_dir("cli-export");
    let app = TestApp::start_in(dir.clone()).await;
    let owner = app.owner().await;
    let calls: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            serde_json::json!({
                "external_id": format!("c{i}"), "kind": "incoming", "from": format!("+7916000{i:04}"), "to": "+74950000001",
                "scenario_started_at": format!("2026-11-10T{:02}:00:00Z", i % 24), "ended_at": format!("2026-11-10T{:02}:01:00Z", i % 24),
                "result": if i % 2 == 0 { "answered" } else { "busy" }, "operator": if i % 3 == 0 { "op1" } else { "op2" },
            })
        })
        .collect();
    app.ingest_ok(&owner, serde_json::Value::Array(calls)).await;
    let (_, page) = app
        .get(
            &owner,
            "/api/v1/calls?from=2026-11-10&to=2026-11-11&tz=UTC&result=answered&limit=500",
        )
        .await;
    let data = dir.to_str().unwrap();
    let out = dir.join("answered.csv");
    let (code, _, err) = calltrail(
        &[
            "export",
            "--data",
            data,
            "--format",
            "csv",
            "--lang",
            "en",
            "--columns",
            "from,result",
            "--from",
            "2026-11-10",
            "--to",
            "2026-11-11",
            "--tz",
            "UTC",
            "--result",
            "answered",
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        err.trim_end().lines().last().unwrap(),
        "exported 15 of 15 calls to ".to_string() + out.to_str().unwrap()
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "From,Attempt result");
    let expected: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{},Answered", c["from"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines[1..],
        expected[..],
        "the same calls in the same order as the search"
    );

    // As a user: their scope. op1's calls only, for op1 with call-history access on.
    app.send(
        "PUT",
        &owner,
        "/api/v1/settings",
        Some(serde_json::json!({"call_history_access": true})),
    )
    .await;
    let xlsx = dir.join("op1.xlsx");
    let (code, _, err) = calltrail(
        &[
            "export",
            "--data",
            data,
            "--format",
            "xlsx",
            "--login",
            "op1",
            "-o",
            xlsx.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("exported 10 of 10 calls"), "{err}");
    assert_eq!(&std::fs::read(&xlsx).unwrap()[..2], b"PK");

    // Wrong flags: exit 2, the flag named, no file.
    for (args, flag) in [
        (vec!["--format", "pdf"], "--format"),
        (vec!["--format", "csv", "--number", "12"], "--number"),
        (vec!["--format", "csv", "--talk-max", "90000"], "--talk-max"),
        (vec!["--format", "csv", "--columns", "time,nope"], "--columns"),
        (vec!["--format", "csv", "--login", "nobody"], "--login"),
        (vec!["--format", "csv", "--operator", "999999"], "--operator"),
    ] {
        let bad = dir.join("bad.csv");
        let mut all = vec!["export", "--data", data, "-o", bad.to_str().unwrap()];
        all.extend(args.iter().copied());
        let (code, _, err) = calltrail(&all, "");
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(!bad.exists(), "{args:?}");
    }
    // Both exports are in the audit log, by the command line.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=export").await;
    let by: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor_login"].as_str().unwrap())
        .collect();
    assert_eq!(by, ["(command line)", "(command line)"]);
    app.stop().await;
}
