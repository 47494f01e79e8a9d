//! The integration's settings: who may change them, what is checked, the key sealed.

use calltrail::domain::{Role, TokenScope};
use calltrail::secrets::SealingKey;
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::*;
use crate::common::{error_field, temp_dir, TestApp};

#[tokio::test]
async fn settings_are_for_administrators_and_the_key_never_leaves_the_server() {
    let (_qm, base) = FakeQm::start(Tz::Europe__Moscow).await;
    let key = SealingKey::random();
    let dir = temp_dir("qm-settings");
    let app = TestApp::start_configured(dir.clone(), |c| fast(c, &key)).await;
    let owner = app.owner().await;
    let admin = app.token("default", "admin", Role::Admin, TokenScope::Full).await;
    let manager = app.token("default", "manager", Role::Manager, TokenScope::Full).await;
    let operator = app.token("default", "op", Role::Operator, TokenScope::Full).await;
    let path = "/api/v1/integrations/qm";

    for who in [&manager, &operator] {
        assert_eq!(app.get(who, path).await.0, 403);
        let (status, _) = app.send("PUT", who, path, Some(json!({"active": false}))).await;
        assert_eq!(status, 403);
    }
    let (status, fresh) = app.get(&admin, path).await;
    assert_eq!(status, 200);
    assert_eq!(
        fresh,
        json!({"base_url": "https://tqm-cloud.tbank.ru", "api_key": null, "api_key_readable": false,
               "language_code": "ru", "operator_channel": "left", "active": false, "connected": false,
               "connected_at": null, "file_links_from": format!("{}/qm/recordings/", app.base),
               "file_links_warning": format!("{} is this machine's own address: the QM system cannot download \
                   recordings from it; start calltrail with --public-url set to an address it can reach", app.base),
               "version": 0})
    );
    // Not active: exporting is refused with a clear conflict, and /me says so.
    let (status, body) = ask(&app, &manager, json!({"filters": {}})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not connected and active"),
        "{body}"
    );
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );

    // Bad input names its field and changes nothing.
    for (change, field) in [
        (json!({"base_url": "ftp://qm.example"}), "base_url"),
        (json!({"base_url": "not a url"}), "base_url"),
        (json!({"api_key": "has a space"}), "api_key"),
        (json!({"api_key": ""}), "api_key"),
        (json!({"api_key": "short"}), "api_key"),
        (json!({"language_code": "russian"}), "language_code"),
        (json!({"operator_channel": "middle"}), "operator_channel"),
        (json!({"active": "yes"}), "active"),
        (json!({"secret": 1}), "secret"),
        // Activating checks the key with the QM system: a wrong one is refused (401 there).
        (
            json!({"base_url": base, "api_key": "wrong-key", "active": true}),
            "api_key",
        ),
        // A QM system that cannot be reached.
        (
            json!({"base_url": "http://127.0.0.1:9", "api_key": KEY, "active": true}),
            "base_url",
        ),
        // Activating without any key.
        (json!({"active": true}), "api_key"),
    ] {
        let (status, body) = app.send("PUT", &admin, path, Some(change.clone())).await;
        assert_eq!((status, error_field(&body)), (400, field), "{change}: {body}");
    }
    let (_, wrong) = app
        .send(
            "PUT",
            &admin,
            path,
            Some(json!({"base_url": base, "api_key": "wrong-key", "active": true})),
        )
        .await;
    assert!(
        wrong["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused the API key (401)"),
        "{wrong}"
    );
    assert_eq!(app.get(&admin, path).await.1, fresh, "nothing changed");

    connected(&app, &admin, &base).await;
    // A change made from settings read before another change is refused, and changes nothing.
    let (_, read) = app.get(&owner, path).await;
    let stale = read["version"].as_i64().unwrap();
    assert!(stale > 0);
    let (status, _) = app
        .send(
            "PUT",
            &admin,
            path,
            Some(json!({"language_code": "kk", "version": stale})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .send("PUT", &owner, path, Some(json!({"active": false, "version": stale})))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("changed meanwhile"),
        "{body}"
    );
    let (_, now) = app.get(&owner, path).await;
    assert_eq!((&now["active"], &now["language_code"]), (&json!(true), &json!("kk")));
    let (status, _) = app
        .send(
            "PUT",
            &admin,
            path,
            Some(json!({"language_code": "ru", "version": now["version"]})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, shown) = app.get(&owner, path).await;
    assert_eq!(shown["api_key"], "••••2a9c", "masked: the last four characters only");
    assert_eq!(shown["api_key_readable"], true);
    assert_eq!(shown["operator_channel"], "right");
    assert_eq!(shown["base_url"], base.as_str());
    assert!(!shown.to_string().contains(KEY));
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        true
    );
    assert_eq!(
        app.get(&operator, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );
    let (status, body) = app.send("POST", &admin, "/api/v1/integrations/qm/connect", None).await;
    assert_eq!((status, &body["connected"]), (200, &json!(true)), "{body}");

    // At rest the key is sealed: the database holds neither it nor anything that opens without
    // the server's key.
    let sealed: String = app
        .store
        .read(|conn| Ok(conn.query_row("SELECT api_key_sealed FROM qm_integrations", (), |r| r.get(0))?))
        .await
        .unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains(KEY), "{sealed}");
    assert_eq!(key.open(&sealed, "qm-api-key:1").unwrap(), KEY);
    // The audit log has every change, never the key.
    let (_, audit) = app.get(&owner, "/api/v1/audit?action=qm_settings_changed").await;
    let entries = audit["items"].as_array().unwrap();
    // Newest first: connect; the language back; the language; connected by PUT. The refused
    // stale change is not there.
    let changed: Vec<&Value> = entries.iter().map(|e| &e["detail"]["changed"]).collect();
    assert_eq!(
        changed,
        vec![
            &Value::Null,
            &json!(["language_code"]),
            &json!(["language_code"]),
            &json!(["base_url", "api_key", "operator_channel", "active"])
        ],
        "{audit}"
    );
    assert_eq!(entries[0]["detail"]["connected"], true);
    assert!(!audit.to_string().contains(KEY));

    // Another secret key cannot open it: the page is told to ask for the key again, and exports
    // wait for it.
    app.stop().await;
    let app = TestApp::start_configured(dir, |c| fast(c, &SealingKey::random())).await;
    let (_, shown) = app.get(&owner, path).await;
    assert_eq!(
        (&shown["api_key_readable"], &shown["active"]),
        (&json!(false), &json!(true)),
        "{shown}"
    );
    let (status, body) = app.send("POST", &admin, "/api/v1/integrations/qm/connect", None).await;
    assert_eq!((status, error_field(&body)), (400, "api_key"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enter the API key again"),
        "{body}"
    );
    let (status, body) = ask(&app, &owner, json!({"filters": {}})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        false
    );
    // Entering it again mends it; switching off turns exports off.
    let (status, _) = app.send("PUT", &admin, path, Some(json!({"api_key": KEY}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.get(&manager, "/api/v1/me").await.1["permissions"]["qm_export"],
        true
    );
    let (status, off) = app.send("PUT", &admin, path, Some(json!({"active": false}))).await;
    assert_eq!((status, &off["active"]), (200, &json!(false)));
    let (status, _) = ask(&app, &owner, json!({"call_ids": ["1"]})).await;
    assert_eq!(status, 409);
    app.stop().await;
}
