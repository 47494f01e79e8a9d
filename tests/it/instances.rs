//! Several calltrail instances on one PostgreSQL database (the machine's server, a database of
//! the test's own), as behind a load balancer: live updates reach every instance's streams, a
//! background job is run by exactly one of them, a session signed in on one works on the
//! other, files are in shared object storage (and instances on local disks refuse to share);
//! searches read the replica when one is named.

use std::time::Duration;

use calltrail::domain::{Role, TokenScope};
use calltrail::recording::storage::StorageConfig;
use calltrail::store::auth::{self, NewUser};
use calltrail::store::{Database, StoreError};
use serde_json::{json, Value};

use crate::common::{collect_live, open_database, session_cookie, temp_dir, Moto, TestApp};
use crate::schema::Scratch;

async fn scratch() -> Scratch {
    tokio::task::spawn_blocking(|| Scratch::create().0).await.unwrap()
}

fn on(url: &str) -> Database {
    Database::Postgres {
        url: url.to_string(),
        read_url: None,
    }
}

/// An instance on the database at `url`, with its own data folder and the given file storage.
async fn instance(url: &str, name: &str, files: StorageConfig) -> TestApp {
    TestApp::start_on(open_database(on(url)), temp_dir(name), move |c| {
        c.recordings.storage = files;
    })
    .await
}

fn call(id: &str, minute: u32) -> Value {
    json!({"external_id": id, "kind": "incoming", "from": "+79161234567", "to": "+74950000001",
           "started_at": format!("2026-11-10T09:{minute:02}:00Z"), "ended_at": format!("2026-11-10T09:{minute:02}:40Z"),
           "result": "answered", "operator": "ivanova"})
}

#[tokio::test]
async fn two_instances_share_live_updates_jobs_sessions_and_files() {
    let moto = Moto::start();
    let files = moto.bucket("shared", "calltrail").await;
    let db = scratch().await;
    let a = instance(&db.url(), "inst-a", files.clone()).await;
    let b = instance(&db.url(), "inst-b", files).await;
    let owner = a.owner().await;

    // Live: a stream open on B hears a call ingested on A, and again for a change on A.
    let mut on_b = b.live(&owner, "").await;
    a.ingest_ok(&owner, json!([call("x1", 0), call("x2", 1)])).await;
    let seen = collect_live(&mut on_b, 2, Duration::from_millis(300)).await;
    let mut ids: Vec<&str> = seen.iter().map(|c| c["external_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["x1", "x2"], "{seen:?}");
    let mut changed = call("x1", 0);
    changed["tags"] = json!(["vip"]);
    a.ingest_ok(&owner, json!([changed])).await;
    let seen = collect_live(&mut on_b, 1, Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        (seen[0]["external_id"].as_str(), seen[0]["tags"][0]["name"].as_str()),
        (Some("x1"), Some("vip"))
    );
    // And the other way round.
    let mut on_a = a.live(&owner, "").await;
    b.ingest_ok(&owner, json!([call("y1", 2)])).await;
    let seen = collect_live(&mut on_a, 1, Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["external_id"], "y1");

    // Jobs: exports asked for on both instances are each run once, by one worker or the other;
    // the file is downloaded from the instance that did not necessarily write it.
    let mut jobs = vec![];
    for i in 0..6 {
        let (app, other) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let body = json!({"format": "csv", "filters": {"from": "2026-11-01", "to": "2026-12-01", "tz": "UTC"}});
        let (status, job) = app.send("POST", &owner, "/api/v1/exports", Some(body)).await;
        assert_eq!(status, 202, "{job}");
        jobs.push((job["id"].as_str().unwrap().to_string(), other));
    }
    for (id, other) in &jobs {
        let mut job = Value::Null;
        for _ in 0..200 {
            job = other.get(&owner, &format!("/api/v1/exports/{id}")).await.1;
            if job["state"] == "done" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(job["state"], "done", "{job}");
        assert_eq!(job["rows_done"], 3, "{job}");
        let (status, csv) = other.download(&owner, &format!("/api/v1/exports/{id}/file")).await;
        assert_eq!(status, 200, "{csv}");
        assert_eq!(csv.lines().filter(|l| l.contains("79161234567")).count(), 3, "{csv}");
    }
    let attempts: Vec<i64> = a
        .store
        .read(|conn| {
            Ok(conn
                .prepare("SELECT attempts FROM export_jobs ORDER BY id")?
                .query_map((), |r| r.get(0))?
                .collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(attempts, vec![1; 6], "every job was claimed once");
    // Nothing stayed in either data folder: the files are in the bucket.
    for app in [&a, &b] {
        let exports = app.dir.join("exports");
        let left = std::fs::read_dir(&exports).map(|d| d.count()).unwrap_or(0);
        assert_eq!(left, 0, "{}", exports.display());
    }

    // Sessions: signed in on A, the browser goes on on B (and signs out there, for both).
    let hash = calltrail::secrets::hash_password("correct horse battery").unwrap();
    a.store
        .write(move |conn, _| {
            let account = auth::ensure_account(conn, "default")?;
            auth::create_user(
                conn,
                &NewUser {
                    account_id: account.id,
                    login: "sup",
                    name: "Супервайзер",
                    role: Role::Admin,
                    password_hash: Some(&hash),
                },
            )?;
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let signed = a
        .sign_in(&json!({"login": "sup", "password": "correct horse battery"}))
        .await;
    assert_eq!(signed.status(), 200);
    let cookie = session_cookie(&signed).unwrap();
    let me = b
        .http
        .get(format!("{}/api/v1/me", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["user"]["login"], "sup", "{me}");

    // Each instance is in the list while it runs, and leaves it when it stops.
    let count = |app: &TestApp| {
        let store = app.store.clone();
        async move {
            store
                .read(|conn| Ok(conn.query_row("SELECT count(*) FROM instances", (), |r| r.get::<_, i64>(0))?))
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&a).await, 2);
    let store = a.store.clone();
    b.stop().await;
    let left: i64 = store
        .read(|conn| Ok(conn.query_row("SELECT count(*) FROM instances", (), |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(left, 1);
    a.stop().await;
    drop(moto);
    drop(db);
}

#[tokio::test]
async fn instances_on_local_disks_refuse_to_share_a_database() {
    let moto = Moto::start();
    let bucket = moto.bucket("one", "").await;
    let other_bucket = moto.bucket("two", "").await;
    let db = scratch().await;
    let dir = temp_dir("inst-disk-a");
    let first = TestApp::start_on(open_database(on(&db.url())), dir.clone(), |_| {}).await;
    let owner = first.owner().await;

    // A second instance on disk storage: refused, naming the flag that fixes it.
    let refuse = |name: &str, files: Option<StorageConfig>| {
        let url = db.url();
        let dir = temp_dir(name);
        async move {
            let mut config = calltrail::config::Config::defaults("127.0.0.1:0".parse().unwrap(), dir);
            if let Some(files) = files {
                config.recordings.storage = files;
            }
            match calltrail::Server::bind_with(config, open_database(on(&url))).await {
                Ok(_) => panic!("a second instance started"),
                Err(e) => e.to_string(),
            }
        }
    };
    let err = refuse("inst-disk-b", None).await;
    assert!(
        err.contains("another calltrail instance") && err.contains("--storage-url"),
        "{err}"
    );
    // Object storage on the newcomer does not help while the first keeps files on its disk.
    let err = refuse("inst-disk-c", Some(bucket.clone())).await;
    assert!(err.contains("local disk"), "{err}");
    // The first is untouched and still serves.
    assert_eq!(first.get(&owner, "/api/v1/calls").await.0, 200);
    first.stop().await;

    // Once it stopped (left the list), another can start; instances on different buckets refuse.
    let second = TestApp::start_on(open_database(on(&db.url())), temp_dir("inst-s3-a"), move |c| {
        c.recordings.storage = bucket;
    })
    .await;
    let err = refuse("inst-s3-b", Some(other_bucket)).await;
    assert!(err.contains("different places"), "{err}");
    second.stop().await;

    // Two servers on one data folder: the second is refused, whatever the database.
    let a = TestApp::start_in(temp_dir("inst-folder")).await;
    let config = calltrail::config::Config::defaults("127.0.0.1:0".parse().unwrap(), a.dir.clone());
    let err = match calltrail::Server::bind_with(config, crate::common::open_store(&a.dir)).await {
        Ok(_) => panic!("two servers on one data folder"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("another calltrail server is running on the data folder"),
        "{err}"
    );
    a.stop().await;
    drop(db);
}

#[tokio::test]
async fn searches_and_exports_read_the_replica() {
    // Two databases stand for a primary and its replica; what each holds tells which one a
    // request read.
    let (primary, replica) = (scratch().await, scratch().await);
    let seed = TestApp::start_on(open_database(on(&replica.url())), temp_dir("replica-seed"), |_| {}).await;
    let token = seed.owner().await;
    seed.ingest_ok(&token, json!([call("only-on-replica", 5)])).await;
    seed.stop().await;

    let both = Database::Postgres {
        url: primary.url(),
        read_url: Some(replica.url()),
    };
    let app = TestApp::start_on(open_database(both), temp_dir("replica"), |_| {}).await;
    let owner = app.token("default", "owner", Role::Owner, TokenScope::Full).await;
    app.ingest_ok(&owner, json!([call("only-on-primary", 6)])).await;
    // The search reads the replica; the write and the sign-in went to the primary.
    let month = "tz=UTC&from=2026-11-01&to=2026-12-01";
    assert_eq!(app.search_ids(&owner, month).await, vec!["only-on-replica"]);
    let (status, csv) = app
        .download(&owner, &format!("/api/v1/calls/export?format=csv&{month}"))
        .await;
    assert_eq!(status, 200);
    assert!(csv.contains("09:05") && !csv.contains("09:06"), "{csv}");
    let on_primary: i64 = app
        .store
        .read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FROM calls WHERE external_id = 'only-on-primary'",
                (),
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(on_primary, 1);
    app.stop().await;
    drop((primary, replica));
}

#[test]
fn a_replica_needs_a_primary_and_urls_are_checked() {
    let dir = std::path::Path::new("/tmp/x");
    assert_eq!(Database::from_args(dir, None, None), Ok(Database::Sqlite(dir.into())));
    let err = Database::from_args(dir, None, Some("postgres://r/db")).unwrap_err();
    assert!(err.starts_with("--read-database-url: needs --database-url"), "{err}");
    let err = Database::from_args(dir, Some("mysql://x"), None).unwrap_err();
    assert!(err.starts_with("--database-url: expected a postgres:// URL"), "{err}");
    let err = Database::from_args(dir, Some("postgres://p/db"), Some("http://r")).unwrap_err();
    assert!(
        err.starts_with("--read-database-url: expected a postgres:// URL"),
        "{err}"
    );
    assert_eq!(
        Database::from_args(dir, Some("postgres://p/db"), Some("postgresql://r/db")),
        Ok(Database::Postgres {
            url: "postgres://p/db".into(),
            read_url: Some("postgresql://r/db".into())
        })
    );
}
