//! A real calltrail server on a loopback port over a fresh data folder, with clients per role.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use calltrail::config::{AuthConfig, Config};
use calltrail::domain::{Role, TokenScope};
use calltrail::store::auth::{self, NewUser};
use calltrail::store::{Store, StoreError};
use calltrail::Server;
use futures_util::StreamExt;
use serde_json::Value;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty folder under cargo's scratch folder for tests (inside `target/`).
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "calltrail-test-{}-{}-{}",
        name,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `CALLTRAIL_TEST_DATABASE=postgres` runs every test server on PostgreSQL (the machine's
/// server at 127.0.0.1:5432, user `postgres`; `CALLTRAIL_TEST_POSTGRES` names another), each data
/// folder with a database of its own; otherwise on SQLite in the data folder.
pub fn on_postgres() -> bool {
    std::env::var("CALLTRAIL_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

fn postgres_server() -> String {
    std::env::var("CALLTRAIL_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The test databases of this run are named `ct_test_{pid}_{n}`: `./run-tests` drops them all
/// when the run ends, and a run drops those left by runs that no longer exist.
const TEST_DB_PREFIX: &str = "ct_test_";

/// Runs blocking PostgreSQL client code on a thread of its own (its client must not block, or
/// start a runtime on, an async test's thread).
fn off_runtime<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(f).join().expect("PostgreSQL client thread")
}

static SWEPT: std::sync::Once = std::sync::Once::new();

/// Drops the databases of earlier test runs that ended without dropping theirs.
fn sweep_stale_databases(admin: &mut postgres::Client) {
    let rows = admin
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            &[&format!("{TEST_DB_PREFIX}%")],
        )
        .expect("list test databases");
    for row in rows {
        let name: String = row.get(0);
        let pid = name[TEST_DB_PREFIX.len()..].split('_').next().unwrap_or("");
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The database a test data folder's server runs on: on PostgreSQL, one created for the folder
/// the first time it is asked for (its URL kept in the folder, so a restarted server finds it).
pub fn database_for(dir: &std::path::Path) -> calltrail::store::Database {
    use calltrail::store::Database;
    if !on_postgres() {
        return Database::Sqlite(dir.to_path_buf());
    }
    let marker = dir.join("test-database-url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return Database::Postgres { url, read_url: None };
    }
    let name = format!(
        "{TEST_DB_PREFIX}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let server = postgres_server();
    let create = format!("CREATE DATABASE {name}");
    off_runtime(move || {
        let mut admin = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
            .expect("PostgreSQL at 127.0.0.1:5432, user postgres (./run-tests starts it)");
        SWEPT.call_once(|| sweep_stale_databases(&mut admin));
        admin.batch_execute(&create).expect("create a test database");
    });
    let url = format!("{}/{name}", postgres_server());
    std::fs::create_dir_all(dir).expect("data folder");
    std::fs::write(&marker, &url).expect("remember the test database");
    Database::Postgres { url, read_url: None }
}

/// Opens the store of a test data folder, on the database `database_for` gives it.
pub fn open_store(dir: &std::path::Path) -> Store {
    open_database(database_for(dir))
}

/// Opens a store on `database` (off the async threads: PostgreSQL connects blocking).
pub fn open_database(database: calltrail::store::Database) -> Store {
    off_runtime(move || Store::connect(&database)).expect("store")
}

/// The real binary, with the data folder's database when a `--data` argument names one (so the
/// same test runs it on SQLite or PostgreSQL), and no outside data folder or database.
pub fn binary(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"));
    cmd.args(args).env_remove("CALLTRAIL_DATA").env_remove("DATABASE_URL");
    let data = args.iter().position(|a| *a == "--data").and_then(|i| args.get(i + 1));
    if let Some(data) = data {
        if let calltrail::store::Database::Postgres { url, .. } = database_for(std::path::Path::new(data)) {
            cmd.env("DATABASE_URL", url);
        }
    }
    cmd
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    pub dir: PathBuf,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub const MAX_BODY: usize = 64 * 1024;

impl TestApp {
    pub async fn start(name: &str) -> TestApp {
        let dir = temp_dir(name);
        Self::start_in(dir).await
    }

    pub async fn start_in(dir: PathBuf) -> TestApp {
        Self::start_with(dir, AuthConfig::default()).await
    }

    /// A server with its own sign-in rules (lower throttle limits, short sessions).
    pub async fn start_with(dir: PathBuf, auth: AuthConfig) -> TestApp {
        Self::start_configured(dir, |c| c.auth = auth).await
    }

    /// A server whose configuration the test adjusts.
    pub async fn start_configured(dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let store = open_store(&dir);
        Self::start_on(store, dir, adjust).await
    }

    /// A server on a store opened by the test (PostgreSQL); `dir` holds its files.
    pub async fn start_on(store: Store, dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config {
            public_url: "http://127.0.0.1".into(),
            max_body_bytes: MAX_BODY,
            ..Config::defaults("127.0.0.1:0".parse().expect("addr"), dir.clone())
        };
        adjust(&mut config);
        let server = Server::bind_with(config, store.clone()).await.expect("bind");
        let base = format!("http://{}", server.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base,
            store,
            dir,
            http: reqwest::Client::new(),
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and waits until its writer has let go of the database.
    pub async fn stop(mut self) -> PathBuf {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        self.dir.clone()
    }

    /// Creates a user in `account` (created if needed) and returns a token for them.
    pub async fn token(&self, account: &str, login: &str, role: Role, scope: TokenScope) -> String {
        let token = calltrail::secrets::new_token("ct_");
        let hash = calltrail::secrets::token_hash(&token);
        let (account, login) = (account.to_string(), login.to_string());
        self.store
            .write(move |conn, _| {
                let account = auth::ensure_account(conn, &account)?;
                let user = match auth::user_by_login(conn, account.id, &login)? {
                    Some(u) => u,
                    None => auth::create_user(
                        conn,
                        &NewUser {
                            account_id: account.id,
                            login: &login,
                            name: &login,
                            role,
                            password_hash: Some("x"),
                        },
                    )?,
                };
                auth::create_token(conn, user, "test", scope, &hash)?;
                Ok::<_, StoreError>(())
            })
            .await
            .expect("token");
        token
    }

    pub async fn owner(&self) -> String {
        self.token("default", "owner", Role::Owner, TokenScope::Full).await
    }

    /// A GET with a token, as it came back.
    pub async fn fetch(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.fetch(token, path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, token: &str, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("post");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn ingest(&self, token: &str, calls: Value) -> (u16, Value) {
        self.post_raw(
            token,
            "/api/v1/ingest/calls",
            "application/json",
            serde_json::to_vec(&calls).expect("json"),
        )
        .await
    }

    /// Ingests and insists that it worked.
    pub async fn ingest_ok(&self, token: &str, calls: Value) -> Value {
        let (status, body) = self.ingest(token, calls).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The external ids of a search's first page, sorted.
    pub async fn search_ids(&self, token: &str, query: &str) -> Vec<String> {
        let (status, body) = self.get(token, &format!("/api/v1/calls?limit=500&{query}")).await;
        assert_eq!(status, 200, "{query}: {body}");
        let mut ids: Vec<String> = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["external_id"].as_str().expect("external_id").to_string())
            .collect();
        assert_eq!(
            body["total"].as_u64(),
            Some(ids.len() as u64),
            "{query}: total matches the items"
        );
        ids.sort();
        ids
    }

    /// A JSON request with a bearer token; `None` sends no body.
    pub async fn send(&self, method: &str, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits for a background export to end (done, failed or cancelled) and returns it.
    pub async fn finished_job(&self, token: &str, id: &str) -> Value {
        for _ in 0..200 {
            let (status, job) = self.get(token, &format!("/api/v1/exports/{id}")).await;
            assert_eq!(status, 200, "{job}");
            if !matches!(job["state"].as_str(), Some("queued" | "running")) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("export {id} did not finish");
    }

    /// Starts a small CSV export and waits for it to finish; its id.
    pub async fn finished_export(&self, token: &str) -> String {
        let (status, job) = self
            .send(
                "POST",
                token,
                "/api/v1/exports",
                Some(serde_json::json!({"format": "csv"})),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        let id = job["id"].as_str().expect("job id").to_string();
        let done = self.finished_job(token, &id).await;
        assert_eq!(done["state"], "done", "{done}");
        id
    }

    /// GETs a path and returns the status and the body as text.
    pub async fn download(&self, token: &str, path: &str) -> (u16, String) {
        let r = self.fetch(token, path).await;
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// Posts a sign-in (`{"login","password"[,"account"]}`).
    pub async fn sign_in(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/v1/session", self.base))
            .json(body)
            .send()
            .await
            .expect("sign-in request")
    }

    /// A live event stream of the calls matching `query`, as `token` may see them.
    pub async fn live(
        &self,
        token: &str,
        query: &str,
    ) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin {
        open_live(
            self.http
                .get(format!("{}/api/v1/calls/live?{query}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    /// The user id of `login`, as an administrator sees it.
    pub async fn user_id(&self, admin: &str, login: &str) -> String {
        self.dir_id(admin, "/api/v1/users", "login", login).await
    }

    /// Sets a group's members and supervisors (by login) and its call-history switch, creating
    /// the group if needed; returns its id.
    pub async fn set_group(
        &self,
        admin: &str,
        name: &str,
        members: &[&str],
        supervisors: &[&str],
        access: bool,
    ) -> String {
        let (_, groups) = self.get(admin, "/api/v1/groups").await;
        let existing = groups["items"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == name)
            .map(|g| g["id"].as_str().expect("id").to_string());
        let mut member_ids = vec![];
        for m in members {
            member_ids.push(self.user_id(admin, m).await);
        }
        let mut supervisor_ids = vec![];
        for s in supervisors {
            supervisor_ids.push(self.user_id(admin, s).await);
        }
        let body = serde_json::json!({
            "name": name, "members": member_ids, "supervisors": supervisor_ids, "call_history_access": access,
        });
        let (status, group) = match existing {
            Some(id) => {
                self.send("PUT", admin, &format!("/api/v1/groups/{id}"), Some(body))
                    .await
            }
            None => self.send("POST", admin, "/api/v1/groups", Some(body)).await,
        };
        assert!(status == 200 || status == 201, "{status} {group}");
        group["id"].as_str().expect("group id").to_string()
    }

    /// The directory id of the entity called `name` in a list endpoint.
    pub async fn dir_id(&self, token: &str, list: &str, field: &str, name: &str) -> String {
        let (_, body) = self.get(token, list).await;
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i[field] == name)
            .unwrap_or_else(|| panic!("{name} in {list}: {body}"))["id"]
            .as_str()
            .expect("id")
            .to_string()
    }
}

/// Reads a live stream until `want` calls (by external id) arrived, then `quiet` longer;
/// returns every call seen.
pub async fn collect_live(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    want: usize,
    quiet: Duration,
) -> Vec<Value> {
    let mut buf = String::new();
    let mut seen = vec![];
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if event.lines().any(|l| l == "event: call") {
                let data: String = event.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
                seen.push(serde_json::from_str(&data).unwrap());
            }
        }
        let wait = if seen.len() >= want {
            quiet
        } else {
            Duration::from_secs(10)
        };
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(chunk)) => buf.push_str(&String::from_utf8_lossy(&chunk.unwrap())),
            Ok(None) => return seen,
            Err(_) if seen.len() >= want => return seen,
            Err(_) => panic!("only {} of {want} live events arrived: {seen:?}", seen.len()),
        }
    }
}

/// The `name=value` of the session cookie a response sets, if it sets one.
pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    let set = r.headers().get(reqwest::header::SET_COOKIE)?.to_str().ok()?;
    set.split(';').next().map(str::to_string)
}

/// Opens a live event stream with this request and checks that it is one.
pub async fn open_live(
    req: reqwest::RequestBuilder,
) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin {
    let r = req.send().await.expect("live request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    r.bytes_stream()
}

/// Error field and status of a failed request.
pub fn error_field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("")
}

/// The recordings of a data folder, as a server on it stores them (for tests that seed the demo).
pub fn disk_recordings(dir: &std::path::Path) -> calltrail::recording::Recordings {
    calltrail::recording::Recordings::open(&calltrail::config::RecordingConfig::on_disk(dir)).expect("recordings")
}

/// A WAV file of `len` bytes (a real header, then deterministic noise), as telephony uploads.
pub fn wav_bytes(len: usize, seed: u8) -> Vec<u8> {
    let data = len.saturating_sub(44) as u32;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    let mut x: u32 = 2_463_534_242 ^ u32::from(seed);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push((x >> 24) as u8);
    }
    out
}

impl TestApp {
    /// The id of the call with this external id, as the first page of the owner's search lists it.
    pub async fn call_id(&self, token: &str, external_id: &str) -> String {
        let (_, page) = self.get(token, "/api/v1/calls?limit=500").await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|c| c["external_id"] == external_id)
            .unwrap_or_else(|| panic!("{external_id} in {page}"))["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Uploads a recording for the call `external_id`; returns the status and answer.
    pub async fn upload(&self, token: &str, external_id: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/api/v1/ingest/calls/{external_id}/recording", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A moto S3 server on loopback: `moto_server` from `$CALLTRAIL_MOTO_SERVER`, the tests' venv
/// (`target/s3-venv`, made by `./run-tests`) or the PATH.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/s3-venv/bin/moto_server");
        let program = std::env::var("CALLTRAIL_MOTO_SERVER").unwrap_or_else(|_| {
            if std::path::Path::new(venv).exists() {
                venv.to_string()
            } else {
                "moto_server".to_string()
            }
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {program} ({e}); ./run-tests installs it (pip install 'moto[server]' into target/s3-venv)")
            });
        // Owned from here on: dropped (killed and reaped) on every path, a failed start included.
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not start on port {port}");
    }

    /// A bucket, made as an operator would before pointing calltrail at it, and the storage
    /// settings for it.
    pub async fn bucket(&self, name: &str, prefix: &str) -> calltrail::recording::storage::StorageConfig {
        let created = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("create a bucket");
        assert!(
            created.status().is_success(),
            "{}",
            created.text().await.unwrap_or_default()
        );
        calltrail::recording::storage::StorageConfig::S3(calltrail::recording::storage::S3Config {
            bucket: name.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
        })
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
