//! Signing in and out over real HTTP: the session cookie, CSRF protection of cookie writes,
//! throttling, expiry, and what ends a session. Also the rules of user management.

use std::time::Duration;

use calltrail::config::AuthConfig;
use calltrail::domain::{Role, TokenScope};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use crate::common::{collect_live, error_field, open_live, temp_dir, TestApp};

const PASSWORD: &str = "correct horse battery";

/// A browser: the session cookie and the CSRF token it was given.
struct Browser {
    cookie: String,
    csrf: String,
}

struct Answer {
    status: u16,
    body: Value,
    set_cookie: Option<String>,
    retry_after: Option<String>,
}

async fn sign_in(app: &TestApp, login: &str, password: &str) -> Answer {
    sign_in_with(app, json!({"login": login, "password": password})).await
}

async fn sign_in_with(app: &TestApp, body: Value) -> Answer {
    let r = app.sign_in(&body).await;
    let header = |name| {
        r.headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let (set_cookie, retry_after) = (header(SET_COOKIE), header(reqwest::header::RETRY_AFTER));
    Answer {
        status: r.status().as_u16(),
        set_cookie,
        retry_after,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

async fn browser(app: &TestApp, login: &str) -> Browser {
    let a = sign_in(app, login, PASSWORD).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let set = a.set_cookie.expect("a session cookie");
    let cookie = set.split(';').next().unwrap().to_string();
    Browser {
        cookie,
        csrf: a.body["csrf_token"].as_str().unwrap().to_string(),
    }
}

/// A request as the page makes it: the cookie, and the CSRF header when `csrf` is given.
async fn call(
    app: &TestApp,
    b: &Browser,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
) -> (u16, Value, Option<String>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .header(COOKIE, &b.cookie);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let set_cookie = r.headers().get(SET_COOKIE).map(|v| v.to_str().unwrap().to_string());
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null), set_cookie)
}

/// An owner token and a user with a password for each role but owner.
async fn people(app: &TestApp) -> String {
    let owner = app.token("default", "owner", Role::Owner, TokenScope::Full).await;
    for (login, role) in [
        ("anna", "admin"),
        ("mike", "manager"),
        ("sam", "supervisor"),
        ("olga", "operator"),
    ] {
        let body = json!({"login": login, "name": login.to_uppercase(), "role": role, "password": PASSWORD});
        let (status, user) = app.send("POST", &owner, "/api/v1/users", Some(body)).await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(
            (user["login"].as_str(), user["role"].as_str()),
            (Some(login), Some(role))
        );
        assert_eq!(user["can_sign_in"], true);
    }
    owner
}

#[tokio::test]
async fn sign_in_csrf_and_sign_out() {
    let app = TestApp::start("session").await;
    let owner = people(&app).await;

    let wrong = sign_in(&app, "anna", "not the password").await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(wrong.set_cookie.is_none());
    let unknown = sign_in(&app, "nobody", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    let bad = sign_in_with(&app, json!({"login": "anna"})).await;
    assert_eq!((bad.status, error_field(&bad.body)), (400, "password"));
    let bad = sign_in_with(&app, json!({"login": "anna", "password": PASSWORD, "remember": true})).await;
    assert_eq!((bad.status, error_field(&bad.body)), (400, "remember"));
    // A form another site could post (text/plain, no preflight) is not a sign-in.
    let r = app
        .http
        .post(format!("{}/api/v1/session", app.base))
        .header("content-type", "text/plain")
        .body(format!("{{\"login\":\"anna\",\"password\":\"{PASSWORD}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);

    let ok = sign_in(&app, "anna", PASSWORD).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let set = ok.set_cookie.clone().unwrap();
    assert!(set.starts_with("calltrail_session=cs_"), "{set}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(set.split("; ").any(|a| a == attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http: {set}");
    assert_eq!(ok.body["user"]["login"], "anna");
    assert_eq!(ok.body["user"]["role"], "admin");
    assert_eq!(ok.body["account"]["name"], "default");
    let b = browser(&app, "anna").await;

    // Reads need only the cookie.
    let (status, me, _) = call(&app, &b, "GET", "/api/v1/me", None, None).await;
    assert_eq!((status, me["user"]["login"].as_str()), (200, Some("anna")));
    let (status, session, _) = call(&app, &b, "GET", "/api/v1/session", None, None).await;
    assert_eq!((status, session["csrf_token"].as_str()), (200, Some(b.csrf.as_str())));
    assert_eq!(call(&app, &b, "GET", "/api/v1/calls", None, None).await.0, 200);

    // Writes with the cookie need the session's CSRF token; without it nothing changes.
    let change = json!({"timezone": "Asia/Yekaterinburg"});
    let (status, err, _) = call(&app, &b, "PUT", "/api/v1/settings", Some(change.clone()), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (403, Some("forbidden")));
    let (status, _, _) = call(
        &app,
        &b,
        "PUT",
        "/api/v1/settings",
        Some(change.clone()),
        Some("forged"),
    )
    .await;
    assert_eq!(status, 403);
    let other = browser(&app, "mike").await;
    let (status, _, _) = call(
        &app,
        &b,
        "PUT",
        "/api/v1/settings",
        Some(change.clone()),
        Some(&other.csrf),
    )
    .await;
    assert_eq!(status, 403, "another session's token is no good");
    assert_eq!(app.get(&owner, "/api/v1/settings").await.1["timezone"], "UTC");
    let (status, settings, _) = call(&app, &b, "PUT", "/api/v1/settings", Some(change), Some(&b.csrf)).await;
    assert_eq!(
        (status, settings["timezone"].as_str()),
        (200, Some("Asia/Yekaterinburg"))
    );

    // A token that is given but wrong is refused even with a good cookie.
    let r = app
        .http
        .get(format!("{}/api/v1/me", app.base))
        .header(COOKIE, &b.cookie)
        .bearer_auth("ct_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Signing out needs the CSRF token too, then ends the session on the server.
    assert_eq!(call(&app, &b, "DELETE", "/api/v1/session", None, None).await.0, 403);
    assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 200);
    let (status, _, cleared) = call(&app, &b, "DELETE", "/api/v1/session", None, Some(&b.csrf)).await;
    assert_eq!(status, 204);
    assert!(cleared.unwrap().starts_with("calltrail_session=; "));
    for path in ["/api/v1/me", "/api/v1/calls", "/api/v1/session"] {
        assert_eq!(
            call(&app, &b, "GET", path, None, None).await.0,
            401,
            "{path} after sign-out"
        );
    }
    // The other session lives on.
    assert_eq!(call(&app, &other, "GET", "/api/v1/me", None, None).await.0, 200);

    // The audit log saw all of it, with the address.
    let (_, log) = app.get(&owner, "/api/v1/audit?limit=500").await;
    let entries: Vec<(String, String, String)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("action"), s("actor_login"), s("address"))
        })
        .collect();
    let has = |action: &str, login: &str| {
        entries
            .iter()
            .any(|(a, l, addr)| a == action && l == login && addr == "127.0.0.1")
    };
    assert!(has("login_failed", "anna"), "{entries:?}");
    assert!(has("login_ok", "anna"));
    assert!(has("settings_changed", "anna"));
    assert!(has("logout", "anna"));
    // A failure for a login no account has is not in any account's log.
    assert!(!entries.iter().any(|(_, l, _)| l == "nobody"));
    let (_, failed) = app.get(&owner, "/api/v1/audit?action=login_failed").await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    let (status, err) = app.get(&owner, "/api/v1/audit?action=dance").await;
    assert_eq!((status, error_field(&err)), (400, "action"));
    app.stop().await;
}

#[tokio::test]
async fn https_public_address_makes_the_cookie_secure() {
    let app = TestApp::start_configured(temp_dir("secure"), |c| c.public_url = "https://calls.example".into()).await;
    people(&app).await;
    let ok = sign_in(&app, "olga", PASSWORD).await;
    assert!(ok.set_cookie.unwrap().split("; ").any(|a| a == "Secure"));
    app.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_login_and_per_address() {
    let auth = AuthConfig {
        failures_per_login: 3,
        failures_per_address: 7,
        ..AuthConfig::default()
    };
    let app = TestApp::start_with(temp_dir("throttle"), auth).await;
    people(&app).await;
    // A success forgets the failures before it.
    for _ in 0..2 {
        assert_eq!(sign_in(&app, "sam", "wrong password").await.status, 401);
    }
    assert_eq!(sign_in(&app, "sam", PASSWORD).await.status, 200);
    for _ in 0..3 {
        assert_eq!(sign_in(&app, "sam", "wrong password").await.status, 401);
    }
    // Now even the right password waits; other logins do not.
    let held = sign_in(&app, "sam", PASSWORD).await;
    assert_eq!(
        (held.status, held.body["error"]["code"].as_str()),
        (429, Some("too_many_requests"))
    );
    let retry: u64 = held.retry_after.unwrap().parse().unwrap();
    assert!((800..=900).contains(&retry), "Retry-After {retry}");
    assert!(held.set_cookie.is_none());
    assert_eq!(sign_in(&app, "olga", PASSWORD).await.status, 200);
    // Spraying other logins from one address: 2 more failures reach its limit of 7 …
    for login in ["mike", "olga"] {
        assert_eq!(sign_in(&app, login, "wrong password").await.status, 401);
    }
    // … and then nobody signs in from it, right password or not.
    assert_eq!(sign_in(&app, "anna", PASSWORD).await.status, 429);
    assert_eq!(sign_in(&app, "ghost", "whatever1").await.status, 429);
    app.stop().await;
}

/// A server with these session rules and a browser signed in to it.
async fn signed_in(name: &str, auth: AuthConfig) -> (TestApp, Browser) {
    let app = TestApp::start_with(temp_dir(name), auth).await;
    people(&app).await;
    let b = browser(&app, "mike").await;
    assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 200);
    (app, b)
}

#[tokio::test]
async fn idle_sessions_end() {
    let auth = AuthConfig {
        session_idle_ms: 1000,
        ..AuthConfig::default()
    };
    let (app, b) = signed_in("idle", auth).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn sessions_end_at_their_limit() {
    let auth = AuthConfig {
        session_max_ms: 1000,
        ..AuthConfig::default()
    };
    // Activity does not stretch the limit.
    let (app, b) = signed_in("max-age", auth).await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 401);
    app.stop().await;
}

#[tokio::test]
async fn blocking_and_password_resets_end_sessions_and_tokens() {
    let app = TestApp::start("block").await;
    let owner = people(&app).await;
    let olga = app.user_id(&owner, "olga").await;
    let b = browser(&app, "olga").await;
    let token = app.token("default", "olga", Role::Operator, TokenScope::Full).await;
    assert_eq!(app.get(&token, "/api/v1/me").await.0, 200);

    let path = format!("/api/v1/users/{olga}");
    let (status, user) = app.send("PUT", &owner, &path, Some(json!({"blocked": true}))).await;
    assert_eq!((status, user["blocked"].as_bool()), (200, Some(true)));
    assert_eq!(call(&app, &b, "GET", "/api/v1/me", None, None).await.0, 401);
    assert_eq!(app.get(&token, "/api/v1/me").await.0, 401);
    // A blocked user's right password gets the answer of a wrong one; the log says why.
    let blocked = sign_in(&app, "olga", PASSWORD).await;
    assert_eq!(blocked.status, 401);
    let (_, failed) = app.get(&owner, "/api/v1/audit?action=login_failed").await;
    assert_eq!(failed["items"][0]["detail"], json!({"reason": "blocked"}));

    app.send("PUT", &owner, &path, Some(json!({"blocked": false}))).await;
    assert_eq!(
        app.get(&token, "/api/v1/me").await.0,
        200,
        "unblocked: the token works again"
    );
    let b = browser(&app, "olga").await;
    let (status, _) = app
        .send("PUT", &owner, &path, Some(json!({"password": "a new password"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        call(&app, &b, "GET", "/api/v1/me", None, None).await.0,
        401,
        "reset ends sessions"
    );
    assert_eq!(sign_in(&app, "olga", PASSWORD).await.status, 401);
    assert_eq!(sign_in(&app, "olga", "a new password").await.status, 200);

    let (_, log) = app.get(&owner, "/api/v1/audit?action=user_changed").await;
    let details: Vec<&Value> = log["items"].as_array().unwrap().iter().map(|e| &e["detail"]).collect();
    assert_eq!(details[0], &json!({"password": "reset"}));
    assert_eq!(details[1], &json!({"blocked": [true, false]}));
    assert_eq!(details[2], &json!({"blocked": [false, true]}));
    app.stop().await;
}

#[tokio::test]
async fn user_management_rules() {
    let app = TestApp::start("manage").await;
    let owner = people(&app).await;
    let admin = app.token("default", "anna", Role::Admin, TokenScope::Full).await;
    let manager = app.token("default", "mike", Role::Manager, TokenScope::Full).await;
    let owner_id = app.user_id(&owner, "owner").await;
    let anna = app.user_id(&owner, "anna").await;

    // Only an owner makes or changes owners.
    let new_owner = json!({"login": "boss2", "role": "owner", "password": PASSWORD});
    assert_eq!(
        app.send("POST", &admin, "/api/v1/users", Some(new_owner.clone()))
            .await
            .0,
        403
    );
    assert_eq!(app.send("POST", &owner, "/api/v1/users", Some(new_owner)).await.0, 201);
    let owner_path = format!("/api/v1/users/{owner_id}");
    assert_eq!(
        app.send("PUT", &admin, &owner_path, Some(json!({"blocked": true})))
            .await
            .0,
        403
    );
    assert_eq!(app.get(&owner, "/api/v1/me").await.0, 200);
    // Nobody changes their own role or blocks themself; the last owner stays an owner.
    let (status, err) = app
        .send("PUT", &owner, &owner_path, Some(json!({"role": "operator"})))
        .await;
    assert_eq!((status, err["error"]["code"].as_str()), (409, Some("conflict")));
    let anna_path = format!("/api/v1/users/{anna}");
    assert_eq!(
        app.send("PUT", &admin, &anna_path, Some(json!({"blocked": true})))
            .await
            .0,
        409
    );
    // A role change takes effect on the next request.
    let (status, user) = app
        .send("PUT", &owner, &anna_path, Some(json!({"role": "manager"})))
        .await;
    assert_eq!((status, user["role"].as_str()), (200, Some("manager")));
    assert_eq!(
        app.send(
            "POST",
            &admin,
            "/api/v1/users",
            Some(json!({"login": "x", "role": "operator"}))
        )
        .await
        .0,
        403
    );
    // Managers manage groups, not users.
    assert_eq!(
        app.send(
            "POST",
            &manager,
            "/api/v1/users",
            Some(json!({"login": "y", "role": "operator"}))
        )
        .await
        .0,
        403
    );
    let (status, group) = app
        .send(
            "POST",
            &manager,
            "/api/v1/groups",
            Some(json!({"name": "night shift", "call_history_access": true})),
        )
        .await;
    assert_eq!((status, group["call_history_access"].as_bool()), (201, Some(true)));

    // Bad input names the field and changes nothing.
    let cases = [
        (json!({"login": "z", "role": "boss"}), "role"),
        (
            json!({"login": "z", "role": "operator", "password": "short"}),
            "password",
        ),
        (json!({"login": "z", "role": "operator", "groups": ["999"]}), "groups"),
        (
            json!({"login": "z", "role": "operator", "groups": ["abc"]}),
            "groups[0]",
        ),
        (json!({"login": "z", "role": "operator", "colour": "red"}), "colour"),
        (json!({"login": "", "role": "operator"}), "login"),
        (json!({"role": "operator"}), "login"),
    ];
    for (body, field) in cases {
        let (status, err) = app.send("POST", &owner, "/api/v1/users", Some(body.clone())).await;
        assert_eq!((status, error_field(&err)), (400, field), "{body}: {err}");
    }
    assert!(!app.get(&owner, "/api/v1/users").await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["login"] == "z"));
    let (status, _) = app
        .send(
            "POST",
            &owner,
            "/api/v1/users",
            Some(json!({"login": "olga", "role": "operator", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 409, "the login is taken");
    // A password-less owner is not "upgraded" by creating its login again.
    let (status, _) = app
        .send(
            "POST",
            &owner,
            "/api/v1/users",
            Some(json!({"login": "ghost", "role": "owner"})),
        )
        .await;
    assert_eq!(status, 201);
    let takeover = json!({"login": "ghost", "role": "admin", "password": PASSWORD});
    assert_eq!(app.send("POST", &owner, "/api/v1/users", Some(takeover)).await.0, 409);
    // An operator the telephony named is: the directory gives them a password and a role.
    app.ingest_ok(&owner, json!([{"external_id": "t1", "kind": "incoming", "scenario_started_at": "2026-11-10T08:00:00Z", "operator": "newbie"}]))
        .await;
    let body = json!({"login": "newbie", "name": "New Operator", "role": "operator", "password": PASSWORD});
    let (status, user) = app.send("POST", &owner, "/api/v1/users", Some(body)).await;
    assert_eq!((status, user["can_sign_in"].as_bool()), (201, Some(true)));
    // A supervisor who stops being one is no longer connected to groups.
    let sam = app.user_id(&owner, "sam").await;
    app.set_group(&owner, "day shift", &[], &["sam"], false).await;
    let sam_path = format!("/api/v1/users/{sam}");
    assert_eq!(
        app.send("PUT", &owner, &sam_path, Some(json!({"role": "operator"})))
            .await
            .0,
        200
    );
    let (_, groups) = app.get(&owner, "/api/v1/groups").await;
    let day = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "day shift")
        .unwrap();
    assert_eq!(day["supervisors"], json!([]));
    let group_cases = [
        (json!({"name": "g", "supervisors": [anna]}), "supervisors"),
        (json!({"name": "g", "members": ["12345"]}), "members"),
        (json!({"members": []}), "name"),
        (
            json!({"name": "g", "call_history_access": "yes"}),
            "call_history_access",
        ),
    ];
    for (body, field) in group_cases {
        let (status, err) = app.send("POST", &owner, "/api/v1/groups", Some(body.clone())).await;
        assert_eq!((status, error_field(&err)), (400, field), "{body}: {err}");
    }
    assert_eq!(
        app.send("POST", &owner, "/api/v1/groups", Some(json!({"name": "night shift"})))
            .await
            .0,
        409
    );
    let (status, err) = app
        .send(
            "PUT",
            &owner,
            "/api/v1/settings",
            Some(json!({"timezone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!((status, error_field(&err)), (400, "timezone"));
    let r = app
        .http
        .put(format!("{}/api/v1/settings", app.base))
        .bearer_auth(&owner)
        .header("content-type", "application/json")
        .body("{\"timezone\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(app.get(&owner, "/api/v1/settings").await.1["timezone"], "UTC");
    app.stop().await;
}

#[tokio::test]
async fn a_login_in_several_accounts_names_its_account() {
    let app = TestApp::start("two-logins").await;
    let first = people(&app).await;
    let acme = app.token("acme", "boss", Role::Owner, TokenScope::Full).await;
    let body = json!({"login": "olga", "role": "supervisor", "password": "acme password"});
    assert_eq!(app.send("POST", &acme, "/api/v1/users", Some(body)).await.0, 201);
    let ambiguous = sign_in(&app, "olga", PASSWORD).await;
    assert_eq!((ambiguous.status, error_field(&ambiguous.body)), (400, "account"));
    let ok = sign_in_with(
        &app,
        json!({"login": "olga", "password": "acme password", "account": "acme"}),
    )
    .await;
    assert_eq!((ok.status, ok.body["user"]["role"].as_str()), (200, Some("supervisor")));
    let wrong = sign_in_with(
        &app,
        json!({"login": "olga", "password": "acme password", "account": "default"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    let _ = first;
    app.stop().await;
}

#[tokio::test]
async fn behind_a_proxy_the_forwarded_address_counts() {
    let auth = AuthConfig {
        failures_per_address: 2,
        trust_forwarded_for: true,
        ..AuthConfig::default()
    };
    let app = TestApp::start_with(temp_dir("forwarded"), auth).await;
    let owner = people(&app).await;
    let attempt = |from: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/api/v1/session", app.base))
                .header("x-forwarded-for", format!("203.0.113.9, {from}"))
                .json(&json!({"login": "mike", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(attempt("10.0.0.1", "wrong password").await, 401);
    assert_eq!(attempt("10.0.0.2", "wrong password").await, 401);
    assert_eq!(attempt("10.0.0.1", "wrong password").await, 401);
    // 10.0.0.1 has used its two failures; 10.0.0.2 has one left and signs in.
    assert_eq!(attempt("10.0.0.1", PASSWORD).await, 429);
    assert_eq!(attempt("10.0.0.2", PASSWORD).await, 200);
    let (_, log) = app.get(&owner, "/api/v1/audit?action=login_ok").await;
    assert_eq!(log["items"][0]["address"], "10.0.0.2");
    app.stop().await;
}

#[tokio::test]
async fn an_open_live_stream_follows_demotion_and_sign_out() {
    let app = TestApp::start("live-session").await;
    let owner = people(&app).await;
    let mike = app.user_id(&owner, "mike").await;
    let b = browser(&app, "mike").await;
    let live = app
        .http
        .get(format!("{}/api/v1/calls/live", app.base))
        .header(COOKIE, &b.cookie);
    let mut stream = open_live(live).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let call_record = |ext: &str| json!([{"external_id": ext, "kind": "incoming", "scenario_started_at": "2026-11-10T08:00:00Z", "price": "1", "currency": "RUB"}]);
    app.ingest_ok(&owner, call_record("seen")).await;
    let seen = collect_live(&mut stream, 1, Duration::from_millis(300)).await;
    assert_eq!((seen.len(), seen[0]["price"].as_str()), (1, Some("1.0000")));

    // Demoted to operator (no call-history access): the open stream sends nothing more.
    let path = format!("/api/v1/users/{mike}");
    assert_eq!(
        app.send("PUT", &owner, &path, Some(json!({"role": "operator"})))
            .await
            .0,
        200
    );
    app.ingest_ok(&owner, call_record("hidden")).await;
    assert!(collect_live(&mut stream, 0, Duration::from_millis(500))
        .await
        .is_empty());

    // Signed out: the stream ends at the next change.
    assert_eq!(
        call(&app, &b, "DELETE", "/api/v1/session", None, Some(&b.csrf)).await.0,
        204
    );
    app.ingest_ok(&owner, call_record("after")).await;
    let end = tokio::time::timeout(Duration::from_secs(5), futures_util::StreamExt::next(&mut stream)).await;
    assert!(matches!(end, Ok(None)), "the stream ended");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_gets_no_more_than_the_limit() {
    let auth = AuthConfig {
        failures_per_login: 3,
        ..AuthConfig::default()
    };
    let app = TestApp::start_with(temp_dir("burst"), auth).await;
    people(&app).await;
    let guesses = (0..12).map(|i| sign_in(&app, "anna", if i == 11 { PASSWORD } else { "a wrong guess" }));
    let statuses: Vec<u16> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(|a| a.status)
        .collect();
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        checked <= 3,
        "only 3 attempts may reach the password check: {statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 12 - checked);
    app.stop().await;
}
