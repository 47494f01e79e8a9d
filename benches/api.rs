//! End-to-end benchmark over HTTP: builds (or reuses) demo databases of the given sizes, starts
//! the real server on loopback and times the list queries and ingest.
//!
//! `cargo bench --bench api -- --calls 1000000,10000000 [--dir bench-data] [--runs 30]
//! [--database-url postgres://…] [--no-ingest]`
//!
//! With `--database-url`, the same demo database (built in SQLite under `--dir` if needed) is
//! copied once into the PostgreSQL database (`calltrail copy`'s code) and the server runs on it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use calltrail::config::Config;
use calltrail::demo::generate::Generator;
use calltrail::domain::{Role, TokenScope};
use calltrail::store::{auth, Database, Store, StoreError};
use calltrail::Server;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

struct Opts {
    sizes: Vec<usize>,
    dir: PathBuf,
    runs: usize,
    database_url: Option<String>,
    /// Skip the ingest figures (which add ~205,000 calls to the database).
    no_ingest: bool,
}

fn opts() -> Opts {
    let args: Vec<String> = std::env::args().collect();
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    Opts {
        sizes: get("--calls")
            .unwrap_or_else(|| "1000000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        dir: get("--dir")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("bench-data")),
        runs: get("--runs").and_then(|s| s.parse().ok()).unwrap_or(30),
        database_url: get("--database-url"),
        no_ingest: args.iter().any(|a| a == "--no-ingest"),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// The JSON answer and whether it was a success.
    async fn fetch(&self, path: &str) -> (bool, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let ok = r.status().is_success();
        (ok, r.json().await.expect("json"))
    }

    async fn get(&self, path: &str) -> Value {
        let (ok, body) = self.fetch(path).await;
        assert!(ok, "{path}: {body}");
        body
    }

    /// Times each URL once after one untimed warm-up pass; returns (p50, p95, median rows, median total).
    async fn time(&self, urls: &[String]) -> (f64, f64, u64, u64) {
        for u in urls {
            self.get(u).await;
        }
        let mut ms = vec![];
        let mut rows = vec![];
        let mut totals = vec![];
        for u in urls {
            let t = Instant::now();
            let body = self.get(u).await;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            rows.push(body["items"].as_array().map(|a| a.len() as u64).unwrap_or(0));
            totals.push(body["total"].as_u64().unwrap_or(0));
        }
        ms.sort_by(f64::total_cmp);
        rows.sort_unstable();
        totals.sort_unstable();
        (
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            rows[rows.len() / 2],
            totals[totals.len() / 2],
        )
    }
}

/// Tokens for the owner, the demo supervisor (two of four groups) and the demo operator (her
/// own calls).
struct Tokens {
    owner: String,
    supervisor: String,
    operator: String,
}

/// The PostgreSQL database when it already holds calls (filled by an earlier run, or grown by
/// SQL as for the 50-million-call figures): then it is used as it is. Looked at without opening
/// the store, which would create the default account in an empty database.
async fn filled(url: &str) -> Result<Option<Store>, StoreError> {
    let u = url.to_string();
    let has_calls = tokio::task::spawn_blocking(move || -> Result<bool, postgres::Error> {
        let mut client = postgres::Client::connect(&u, postgres::NoTls)?;
        let exists: bool = client
            .query_one("SELECT to_regclass('public.calls') IS NOT NULL", &[])?
            .get(0);
        Ok(exists && client.query_opt("SELECT 1 FROM calls LIMIT 1", &[])?.is_some())
    })
    .await
    .map_err(|_| StoreError::Closed)?
    .map_err(|e| StoreError::Database(e.into()))?;
    if !has_calls {
        return Ok(None);
    }
    let database = Database::Postgres {
        url: url.to_string(),
        read_url: None,
    };
    let store = tokio::task::spawn_blocking(move || Store::connect(&database))
        .await
        .map_err(|_| StoreError::Closed)??;
    Ok(Some(store))
}

async fn prepare(dir: &std::path::Path, calls: usize, url: Option<&str>) -> Result<(Store, Tokens), StoreError> {
    if let Some(url) = url {
        if let Some(store) = filled(url).await? {
            let tokens = tokens(&store).await?;
            return Ok((store, tokens));
        }
    }
    let mut store = Store::open(dir)?;
    let started = Instant::now();
    if calltrail::demo::prepare(
        &store,
        &calltrail::recording::Recordings::open(&calltrail::config::RecordingConfig::on_disk(dir)).expect("recordings"),
        dir,
        calls,
        90,
    )
    .await?
    .is_some()
    {
        eprintln!("built {calls} calls in {:.1} s", started.elapsed().as_secs_f64());
    }
    if let Some(url) = url {
        store.shutdown();
        drop(store);
        let (from, to) = (
            Database::Sqlite(dir.to_path_buf()),
            Database::Postgres {
                url: url.to_string(),
                read_url: None,
            },
        );
        let opened = to.clone();
        store = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let copied = calltrail::store::copy::copy(&from, &to, |(t, n)| eprintln!("  {t}: {n} rows"))?;
            eprintln!(
                "copied {} rows into PostgreSQL in {:.1} s",
                copied.iter().map(|(_, n)| n).sum::<u64>(),
                started.elapsed().as_secs_f64()
            );
            Store::connect(&opened)
        })
        .await
        .map_err(|_| StoreError::Closed)??;
        store.analyze(true).await?;
    }
    let tokens = tokens(&store).await?;
    Ok((store, tokens))
}

/// Fresh tokens for the owner, the demo supervisor and the demo operator.
async fn tokens(store: &Store) -> Result<Tokens, StoreError> {
    let tokens: Vec<String> = (0..3).map(|_| calltrail::secrets::new_token("ct_")).collect();
    let hashes: Vec<Vec<u8>> = tokens.iter().map(|t| calltrail::secrets::token_hash(t)).collect();
    store
        .write(move |conn, _| {
            let account = auth::account_by_name(conn, auth::DEFAULT_ACCOUNT)?.ok_or(StoreError::NotFound)?;
            for (login, hash) in ["owner", "supervisor", "ivanova"].into_iter().zip(&hashes) {
                let user = auth::user_by_login(conn, account.id, login)?.ok_or(StoreError::NotFound)?;
                auth::create_token(conn, user, "bench", TokenScope::Full, hash)?;
            }
            Ok(())
        })
        .await?;
    let [owner, supervisor, operator] = <[String; 3]>::try_from(tokens).map_err(|_| StoreError::NotFound)?;
    Ok(Tokens {
        owner,
        supervisor,
        operator,
    })
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["id"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

async fn run_size(opts: &Opts, calls: usize) {
    let dir = opts.dir.join(calls.to_string());
    let (store, tokens) = prepare(&dir, calls, opts.database_url.as_deref())
        .await
        .expect("prepare");
    let config = Config {
        public_url: "http://127.0.0.1".into(),
        max_body_bytes: 256 * 1024 * 1024,
        ..Config::defaults("127.0.0.1:0".parse().expect("addr"), dir.clone())
    };
    let server = Server::bind_with(config, store).await.expect("bind");
    let addr = server.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = stop_rx.await;
    }));
    let client = |token: &str| Client {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
        token: token.to_string(),
    };
    let c = client(&tokens.owner);
    let mut rng = StdRng::seed_from_u64(7);
    let users = c.get("/api/v1/users").await;
    let operators: Vec<String> = users["items"]
        .as_array()
        .expect("users")
        .iter()
        .filter(|u| u["role"] == Role::Operator.code() && !u["groups"].as_array().is_some_and(|g| g.is_empty()))
        .filter_map(|u| u["id"].as_str().map(String::from))
        .collect();
    let tags = ids(&c.get("/api/v1/tags").await);
    let groups = ids(&c.get("/api/v1/groups").await);
    let campaigns = ids(&c.get("/api/v1/campaigns").await);
    let total = c.get("/api/v1/calls?limit=1").await["total"].as_u64().unwrap_or(0);
    // Number fragments: 4–7 digits from inside customer numbers of random calls.
    let mut fragments = vec![];
    while fragments.len() < opts.runs {
        let id = rng.random_range(1..=total.max(1));
        let (found, call) = c.fetch(&format!("/api/v1/calls/{id}")).await;
        if !found {
            continue;
        }
        let number = if call["direction"] == "incoming" {
            &call["from"]
        } else {
            &call["to"]
        };
        let digits: String = number
            .as_str()
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect();
        if digits.len() < 11 {
            continue;
        }
        let len = rng.random_range(4..=7);
        let start = rng.random_range(3..=digits.len() - len);
        fragments.push(digits[start..start + len].to_string());
    }
    let rare = [
        "invalid_number",
        "blocked_dnc",
        "insufficient_funds",
        "request_cancelled",
        "other_error",
    ];
    let n = opts.runs;
    let pick = |list: &[String], rng: &mut StdRng| list[rng.random_range(0..list.len())].clone();
    let mut queries: Vec<(&str, Vec<String>)> = vec![];
    queries.push((
        "newest page (no filter)",
        (0..n).map(|_| "/api/v1/calls?limit=50".to_string()).collect(),
    ));
    queries.push((
        "newest page, last 7 days",
        (0..n)
            .map(|_| "/api/v1/calls?limit=50&preset=last_7_days".to_string())
            .collect(),
    ));
    queries.push((
        "+5 operators",
        (0..n)
            .map(|_| {
                let ops: Vec<String> = (0..5)
                    .map(|_| format!("operator={}", pick(&operators, &mut rng)))
                    .collect();
                format!("/api/v1/calls?preset=last_7_days&{}", ops.join("&"))
            })
            .collect(),
    ));
    queries.push((
        "30 d + 2 rare results + talk 60–600",
        (0..n)
            .map(|_| {
                let a = rare[rng.random_range(0..rare.len())];
                let b = rare[rng.random_range(0..rare.len())];
                format!("/api/v1/calls?preset=last_30_days&result={a}&result={b}&talk_min=60&talk_max=600")
            })
            .collect(),
    ));
    queries.push((
        "number substring (all time)",
        fragments.iter().map(|f| format!("/api/v1/calls?number={f}")).collect(),
    ));
    queries.push((
        "tag + 2 groups + campaign, 7 d",
        (0..n)
            .map(|_| {
                format!(
                    "/api/v1/calls?preset=last_7_days&tag={}&group={}&group={}&campaign={}",
                    pick(&tags, &mut rng),
                    pick(&groups, &mut rng),
                    pick(&groups, &mut rng),
                    pick(&campaigns, &mut rng)
                )
            })
            .collect(),
    ));
    queries.push((
        "exact total, filtered 30 d (incoming answered, limit 1)",
        (0..n)
            .map(|_| "/api/v1/calls?preset=last_30_days&direction=incoming&result=answered&limit=1".to_string())
            .collect(),
    ));
    queries.push((
        "exact total, 30 d + talk ≥ 60 s (counted call by call)",
        (0..n)
            .map(|i| format!("/api/v1/calls?preset=last_30_days&talk_min={}&limit=1", 60 + i))
            .collect(),
    ));
    // Page 200 by cursor: walk 199 pages of one search once, then time the 200th.
    let mut page_urls = vec![];
    let variants = [
        "",
        "&direction=incoming",
        "&direction=outgoing",
        "&result=answered",
        "&kind=softphone_outgoing",
    ];
    for v in variants.iter().take(n.min(5)) {
        let base = format!("/api/v1/calls?limit=50&preset=last_30_days{v}");
        let mut url = base.clone();
        for _ in 0..199 {
            let body = c.get(&url).await;
            match body["next_cursor"].as_str() {
                Some(cur) => url = format!("{base}&cursor={cur}"),
                None => break,
            }
        }
        page_urls.push(url);
    }
    let page_urls: Vec<String> = (0..n).map(|i| page_urls[i % page_urls.len()].clone()).collect();
    queries.push(("page 200 by cursor (30 d)", page_urls));

    println!("\n### {calls} calls (database: {})\n", dir.display());
    println!("| query | p50 ms | p95 ms | rows (median) | total (median) |");
    println!("|---|---|---|---|---|");
    for (name, urls) in &queries {
        let (p50, p95, rows, total) = c.time(urls).await;
        println!("| {name} | {p50:.2} | {p95:.2} | {rows} | {total} |");
    }
    // Restricted scopes: every query carries the scope's operators.
    let repeat = |url: &str| -> Vec<String> { (0..n).map(|_| url.to_string()).collect() };
    for (who, token) in [("supervisor", &tokens.supervisor), ("operator", &tokens.operator)] {
        let rc = client(token);
        for (name, url) in [
            ("newest page", "/api/v1/calls?limit=50"),
            ("newest page, last 7 days", "/api/v1/calls?limit=50&preset=last_7_days"),
            (
                "exact total, 30 d answered (limit 1)",
                "/api/v1/calls?preset=last_30_days&result=answered&limit=1",
            ),
            ("30 d + talk ≥ 60 s", "/api/v1/calls?preset=last_30_days&talk_min=60"),
        ] {
            let (p50, p95, rows, total) = rc.time(&repeat(url)).await;
            println!("| {who}: {name} | {p50:.2} | {p95:.2} | {rows} | {total} |");
        }
    }

    // Ingest: batches of 5,000 and one call per request, from one client and from several.
    let mut g = Generator::new(99, 400_000, &format!("bench-{}", Utc::now().timestamp()));
    let now = Utc::now();
    let batches = |g: &mut Generator, calls: usize, per_request: usize| -> Vec<String> {
        g.start_times(calls, 1, now)
            .chunks(per_request)
            .map(|chunk| serde_json::to_string(&chunk.iter().map(|t| g.call(*t)).collect::<Vec<_>>()).expect("json"))
            .collect()
    };
    let ingests = [
        ("batches of 5,000, 1 client", 100_000, 5_000, 1),
        ("batches of 5,000, 4 clients", 100_000, 5_000, 4),
        ("one call per request, 1 client", 1_000, 1, 1),
        ("one call per request, 32 clients", 4_000, 1, 32),
    ];
    for (label, calls, per_request, clients) in ingests.into_iter().filter(|_| !opts.no_ingest) {
        let bodies = batches(&mut g, calls, per_request);
        let sent = bodies.len() * per_request;
        let seconds = post_all(&c, bodies, clients).await;
        println!(
            "| ingest, {label} | {:.0} calls/s | | {sent} calls | |",
            sent as f64 / seconds
        );
    }

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
}

/// Posts every body to the ingest endpoint from `clients` concurrent clients; returns the seconds.
async fn post_all(c: &Client, bodies: Vec<String>, clients: usize) -> f64 {
    let t = Instant::now();
    let work = std::sync::Arc::new(std::sync::Mutex::new(bodies));
    let mut tasks = vec![];
    for _ in 0..clients {
        let (work, http, url, token) = (
            work.clone(),
            c.http.clone(),
            format!("{}/api/v1/ingest/calls", c.base),
            c.token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let next = work.lock().expect("lock").pop();
                let Some(body) = next else { break };
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("ingest");
                assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    t.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let opts = opts();
    for size in opts.sizes.clone() {
        run_size(&opts, size).await;
    }
}
