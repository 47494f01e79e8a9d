//! The call store: the only code that speaks SQL.
//!
//! The embedded default is one SQLite database in WAL mode; the same code runs on PostgreSQL
//! (`Database::Postgres`, differences in `dialect.rs`). Reads run on a small pool of read-only connections on
//! tokio's blocking threads. All writes go through one writer thread that commits several
//! waiting jobs in one transaction (group commit), each job inside its own savepoint so that a
//! failing job changes nothing while the others land; a job's caller hears back only after the
//! commit is durable (`synchronous=FULL`).

pub mod access;
pub mod audit;
pub mod auth;
pub mod batch_rows;
pub mod calllog;
pub mod copy;
pub mod counts;
pub mod cursor;
pub mod db;
pub mod deferred;
pub mod dialect;
pub mod directory;
pub mod export;
pub mod exports;
pub mod health;
pub mod ingest;
pub mod labels;
pub mod leases;
pub mod migrations;
pub mod pbx;
pub mod people;
pub mod positions;
pub mod preferences;
pub mod qm;
pub mod recordings;
pub mod retention;
pub mod search;
pub mod view;
pub mod voximplant;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::OpenFlags;

pub use db::Connection;
use tokio::sync::{oneshot, Semaphore};

use crate::domain::{AccountId, CallScope, FieldError, SearchRequest};

/// How many write jobs one transaction may carry.
const MAX_JOBS_PER_COMMIT: usize = 256;
/// How many read connections may be open at once.
const READERS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database: {0}")]
    Database(#[from] db::Error),
    #[error("record {index}: {error}")]
    InvalidRecord { index: usize, error: FieldError },
    #[error("{0}")]
    Invalid(FieldError),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A rule that depends on data only the transaction sees (e.g. "only an owner changes an owner").
    #[error("{0}")]
    Forbidden(String),
    #[error("the store is shut down")]
    Closed,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Directory key → (id, fingerprint of the name and details last written).
pub type DimIds = HashMap<String, (i64, u64)>;

/// Ids the writer has already resolved, so a busy ingest does not look them up again.
/// Cleared whenever a transaction (or part of one) rolls back, since it may name rows that
/// no longer exist.
#[derive(Default)]
pub struct WriteCache {
    /// Per directory table and account: key → (id, fingerprint of the name and details last written).
    pub dims: HashMap<(&'static str, AccountId), DimIds>,
    pub numbers: HashSet<String>,
    /// Rows and count changes of ingest, written with the rest of the commit.
    pub deferred: deferred::Deferred,
}

impl WriteCache {
    fn clear(&mut self) {
        self.dims.clear();
        self.numbers.clear();
        self.deferred.clear();
    }
}

type Finisher = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// A write job: run inside the transaction, or told why it could not be (its caller then hears
/// that error). Returns whether it succeeded and what to do once the commit is known.
type Run = Box<dyn for<'a> FnOnce(Result<(&'a Connection, &'a mut WriteCache), StoreError>) -> (bool, Finisher) + Send>;

/// A write job, and whether what it defers may wait for the commit (an ingest job) rather than
/// be written before it ends.
struct Job {
    run: Run,
    ingest: bool,
}

/// Which database the store runs on, as the command line names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: `calltrail.sqlite` in the data folder.
    Sqlite(PathBuf),
    /// A PostgreSQL server; searches and exports read from the replica when one is named.
    Postgres { url: String, read_url: Option<String> },
}

impl Database {
    /// From `--data`, `--database-url` and `--read-database-url`; the message names the flag.
    pub fn from_args(data: &Path, url: Option<&str>, read_url: Option<&str>) -> Result<Database, String> {
        let postgres = |flag: &str, url: &str| {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                url.parse::<postgres::Config>()
                    .map(|_| url.to_string())
                    .map_err(|e| format!("{flag}: not a valid PostgreSQL URL: {e}"))
            } else {
                Err(format!("{flag}: expected a postgres:// URL, got {url:?}"))
            }
        };
        match (url.filter(|u| !u.is_empty()), read_url.filter(|u| !u.is_empty())) {
            (None, None) => Ok(Database::Sqlite(data.to_path_buf())),
            (None, Some(_)) => Err("--read-database-url: needs --database-url (a replica of that database)".into()),
            (Some(url), read) => Ok(Database::Postgres {
                url: postgres("--database-url", url)?,
                read_url: read.map(|r| postgres("--read-database-url", r)).transpose()?,
            }),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Database::Postgres { .. })
    }
}

/// Where the store's connections go.
enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    fn dialect(&self) -> dialect::Dialect {
        match self {
            Backend::Sqlite(_) => dialect::Dialect::Sqlite,
            Backend::Postgres(_) => dialect::Dialect::Postgres,
        }
    }
}

struct Inner {
    backend: Backend,
    readers: Mutex<Vec<Connection>>,
    /// A PostgreSQL replica for searches and exports: its URL and idle connections.
    replica: Option<(String, Mutex<Vec<Connection>>)>,
    reader_permits: Semaphore,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    cursor_key: [u8; 32],
}

impl Inner {
    /// An idle read connection (or a new one) and the pool it goes back to: the replica's when
    /// asked for and configured, else the database's own.
    fn check_out(&self, replica: bool) -> Result<(&Mutex<Vec<Connection>>, Connection), StoreError> {
        if let (true, Some((url, pool))) = (replica, &self.replica) {
            let pooled = pool.lock().map_err(|_| StoreError::Closed)?.pop();
            return Ok((pool, pooled.map_or_else(|| open_postgres_reader(url), Ok)?));
        }
        let pooled = self.readers.lock().map_err(|_| StoreError::Closed)?.pop();
        Ok((&self.readers, pooled.map_or_else(|| open_reader(&self.backend), Ok)?))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let mut readers = std::mem::take(self.readers.get_mut().unwrap_or_else(|e| e.into_inner()));
        if let Some((_, replicas)) = self.replica.as_mut() {
            readers.append(replicas.get_mut().unwrap_or_else(|e| e.into_inner()));
        }
        discard(readers);
    }
}

/// Closes connections. A PostgreSQL client closes its connection by blocking on it: never on an
/// async thread, where the last handle to the store may well be dropped.
fn discard(conns: Vec<Connection>) {
    if conns.iter().any(Connection::is_postgres) {
        let _ = std::thread::spawn(move || drop(conns)).join();
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
    /// Opens the database the command line names: blocking (PostgreSQL connects and migrates),
    /// so async callers run it on a blocking thread.
    pub fn connect(database: &Database) -> Result<Store, StoreError> {
        match database {
            Database::Sqlite(dir) => Store::open(dir),
            Database::Postgres { url, read_url } => Store::open_postgres_with(url, read_url.as_deref()),
        }
    }

    /// Opens (creating if needed) the database in `data_dir`, migrates it and starts the writer.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join("calltrail.sqlite");
        let mut sqlite = rusqlite::Connection::open(&path)?;
        dialect::configure_writer(&sqlite)?;
        // The ingest path uses a few dozen statements; with the default cache of 16 they evicted
        // each other and were parsed and planned again for every call.
        sqlite.set_prepared_statement_cache_capacity(256);
        migrations::run(&mut sqlite)?;
        let conn = Connection::Sqlite(sqlite);
        auth::ensure_default_account(&conn)?;
        let cursor_key = auth::secret(&conn, "cursor_key")?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("calltrail-writer".into())
            .spawn(move || writer_loop(conn, rx, None))?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(path),
                readers: Mutex::new(Vec::new()),
                replica: None,
                reader_permits: Semaphore::new(READERS),
                writer: Mutex::new(Some(tx)),
                cursor_key,
            }),
        })
    }

    /// Opens a PostgreSQL database (`postgres://…`), migrates it and starts the writer. The
    /// same store code runs on it; what differs is `dialect.rs`'s.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
        Store::open_postgres_with(url, None)
    }

    /// The same, with a read replica for searches and exports.
    fn open_postgres_with(url: &str, read_url: Option<&str>) -> Result<Store, StoreError> {
        // A replica that cannot be reached fails the start rather than the first search.
        let replica = read_url
            .map(|r| Ok::<_, StoreError>((r.to_string(), Mutex::new(vec![open_postgres_reader(r)?]))))
            .transpose()?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<[u8; 32], StoreError>>();
        let writer_url = url.to_string();
        // The synchronous client runs a small runtime of its own: connected on the writer's
        // own thread, never on an async one.
        std::thread::Builder::new()
            .name("calltrail-writer".into())
            .spawn(move || {
                let opened = (|| {
                    let mut client =
                        postgres::Client::connect(&writer_url, postgres::NoTls).map_err(db::Error::from)?;
                    migrations::run_postgres(&mut client).map_err(db::Error::from)?;
                    client.batch_execute(WRITE_TIMEOUTS).map_err(db::Error::from)?;
                    let conn = Connection::Postgres(Box::new(db::PgConnection::new(client)));
                    auth::ensure_default_account(&conn)?;
                    let key = auth::secret(&conn, "cursor_key")?;
                    Ok::<_, StoreError>((conn, key))
                })();
                match opened {
                    Ok((conn, key)) => {
                        let _ = ready_tx.send(Ok(key));
                        let reconnect = move || {
                            let mut client = postgres::Client::connect(&writer_url, postgres::NoTls)?;
                            client.batch_execute(WRITE_TIMEOUTS)?;
                            Ok(Connection::Postgres(Box::new(db::PgConnection::new(client))))
                        };
                        writer_loop(conn, rx, Some(Box::new(reconnect)));
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
        let cursor_key = ready_rx.recv().map_err(|_| StoreError::Closed)??;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Postgres(url.to_string()),
                readers: Mutex::new(Vec::new()),
                replica,
                reader_permits: Semaphore::new(READERS),
                writer: Mutex::new(Some(tx)),
                cursor_key,
            }),
        })
    }

    /// The PostgreSQL database's URL, when the store is on one (for the live-update relay).
    pub fn postgres_url(&self) -> Option<&str> {
        match &self.inner.backend {
            Backend::Postgres(url) => Some(url),
            Backend::Sqlite(_) => None,
        }
    }

    /// The key that signs search cursors.
    pub fn cursor_key(&self) -> &[u8; 32] {
        &self.inner.cursor_key
    }

    /// Runs `f` on a read connection, off the async threads.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.read_on(false, f).await
    }

    /// Like `read`, for searches and exports: on the read replica when one is configured. A
    /// replica may lag the primary by a moment, so nothing that must see a write just made
    /// (sign-in, permissions, a job's state) reads through here.
    pub async fn read_replica<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.read_on(true, f).await
    }

    /// A search's page and its exact total, on the read replica when there is one. When the
    /// page's plan does not depend on the total (a number search on PostgreSQL), the two run
    /// side by side on two connections: each reads every match of a common fragment (34,638
    /// calls at 10 million for a four-digit one), and one after the other they took twice as long.
    pub async fn search(&self, scope: CallScope, req: SearchRequest) -> Result<search::Page, StoreError> {
        let key = self.inner.cursor_key;
        let Some(plan) = search::plan_without_total(self.inner.backend.dialect(), &req.filter) else {
            return self
                .read_replica(move |conn| search::search(conn, &scope, &req, &key))
                .await;
        };
        let after = search::cursor_position(&req, &key)?;
        let (counted, filter) = (scope.clone(), req.filter.clone());
        let total = self.read_replica(move |conn| search::count(conn, &counted, &filter));
        let page = self.read_replica(move |conn| search::page(conn, &scope, &req, &key, after, plan));
        let (total, (items, next_cursor)) = tokio::try_join!(total, page)?;
        Ok(search::Page::new(items, next_cursor, total))
    }

    async fn read_on<R, F>(&self, replica: bool, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let (pool, conn) = inner.check_out(replica)?;
            let out = f(&conn);
            put_back(pool, conn);
            out
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Runs `f` inside the writer's transaction; answers once the transaction is durable.
    /// If `f` fails, everything it did is rolled back and its error is returned.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut WriteCache) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    /// `write` for an ingest job: the rows and counts it defers (`deferred.rs`) are written with
    /// those of the other ingest jobs of the same commit.
    pub async fn ingest<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut WriteCache) -> Result<R, StoreError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    async fn submit<R, F>(&self, f: F, ingest: bool) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &mut WriteCache) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |ctx| {
            let result = match ctx {
                Ok((conn, cache)) => f(conn, cache),
                Err(e) => Err(e),
            };
            let ok = result.is_ok();
            let finish: Finisher = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) if ok => Err(e),
                    _ => result,
                });
            });
            (ok, finish)
        });
        {
            let writer = self.inner.writer.lock().map_err(|_| StoreError::Closed)?;
            writer
                .as_ref()
                .ok_or(StoreError::Closed)?
                .send(Job { run, ingest })
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Refreshes the planner's statistics (`ANALYZE` where SQLite finds them stale, or everywhere
    /// with `full`). Read connections only load statistics when they open, so the pool is
    /// emptied and reopens with the new ones.
    pub async fn analyze(&self, full: bool) -> Result<(), StoreError> {
        self.write(move |conn, _| {
            let sql = if full || conn.is_postgres() {
                "ANALYZE"
            } else {
                "PRAGMA optimize"
            };
            Ok(conn.execute_batch(sql)?)
        })
        .await?;
        let stale = std::mem::take(&mut *self.inner.readers.lock().map_err(|_| StoreError::Closed)?);
        discard(stale);
        Ok(())
    }

    /// Stops accepting writes; the writer finishes what it has and closes the database.
    pub fn shutdown(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
    }
}

/// Returns a connection to its pool, unless it broke (a restarted PostgreSQL server): the next
/// read opens a fresh one.
fn put_back(pool: &Mutex<Vec<Connection>>, conn: Connection) {
    if conn.is_broken() {
        return;
    }
    if let Ok(mut pool) = pool.lock() {
        pool.push(conn);
    }
}

/// A reader's PostgreSQL session. How long one read may run before the server cancels it:
/// searches and export stretches take milliseconds; a runaway query must not hold a connection for
/// ever. (Searches are planned for their values: `Connection::prepare_planned`.)
const READ_SESSION: &str = "SET statement_timeout = '60s'";

fn open_postgres_reader(url: &str) -> Result<Connection, StoreError> {
    let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(db::Error::from)?;
    client.batch_execute(READ_SESSION).map_err(db::Error::from)?;
    Ok(Connection::Postgres(Box::new(db::PgConnection::new(client))))
}

fn open_reader(backend: &Backend) -> Result<Connection, StoreError> {
    let path = match backend {
        Backend::Sqlite(path) => path,
        Backend::Postgres(url) => return open_postgres_reader(url),
    };
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    dialect::configure_reader(&conn)?;
    // Searches differ in their filters and page sizes; keep their statements prepared.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(Connection::Sqlite(conn))
}

/// The writer's PostgreSQL session: a write waits at most this long for a row another instance
/// holds, and no statement runs for ever (retention deletes in bounded batches).
const WRITE_TIMEOUTS: &str = "SET lock_timeout = '30s'; SET statement_timeout = '300s'";

/// Opens a fresh writer connection after the old one broke (PostgreSQL restarted).
type Reconnect = Box<dyn Fn() -> Result<Connection, postgres::Error> + Send>;

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, reconnect: Option<Reconnect>) {
    let mut cache = WriteCache::default();
    while let Ok(first) = rx.recv() {
        if let (true, Some(reconnect)) = (conn.is_broken(), &reconnect) {
            match reconnect() {
                Ok(fresh) => {
                    tracing::warn!("the database connection broke; the writer reconnected");
                    conn = fresh;
                    cache.clear();
                }
                Err(e) => tracing::error!(error = %e, "the database connection broke and cannot be opened again"),
            }
        }
        let mut jobs = vec![first];
        while jobs.len() < MAX_JOBS_PER_COMMIT {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // SQLite takes the write lock at once, so a busy reader cannot make the commit fail.
        let begin = if conn.is_postgres() { "BEGIN" } else { "BEGIN IMMEDIATE" };
        if let Err(e) = conn.execute_batch(begin) {
            tracing::error!(error = %e, "cannot begin a write transaction");
            cache.clear();
            for job in jobs {
                // Nothing ran; tell each caller why.
                let (_, finish) = (job.run)(Err(StoreError::Conflict(format!("cannot begin a write: {e}"))));
                finish(None);
            }
            continue;
        }
        let mut finishers = Vec::with_capacity(jobs.len());
        let mut rolled_back = false;
        // What ingest jobs deferred is written before any other job runs and before the commit;
        // if that fails, nothing of the transaction may be acknowledged.
        let mut broken: Option<String> = None;
        // A job's savepoint is released when the next one opens (one round trip, not two) or by
        // the commit.
        let mut open_savepoint = false;
        for job in jobs {
            if !job.ingest && broken.is_none() {
                broken = cache.deferred.flush(&conn).err().map(|e| e.to_string());
            }
            if let Some(e) = &broken {
                let (_, finish) = (job.run)(Err(StoreError::Conflict(format!("the write failed: {e}"))));
                finishers.push(finish);
                continue;
            }
            let undo = cache.deferred.begin_job(job.ingest);
            let open = if open_savepoint {
                "RELEASE job; SAVEPOINT job"
            } else {
                "SAVEPOINT job"
            };
            let (ok, finish) = match conn.execute_batch(open) {
                // A job that panics is a bug; it must not take the writer (and every later write)
                // down with it. Its caller hears that the store failed; its changes roll back.
                Ok(()) => {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Ok((&conn, &mut cache)))))
                    {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            tracing::error!("a write job panicked; its changes are rolled back");
                            (false, Box::new(|_| {}) as Finisher)
                        }
                    }
                }
                Err(e) => (job.run)(Err(StoreError::Conflict(format!("cannot open a savepoint: {e}")))),
            };
            open_savepoint = ok;
            let closed = if ok {
                Ok(())
            } else {
                rolled_back = true;
                cache.deferred.undo(undo);
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, "cannot close a savepoint");
            }
            finishers.push(finish);
        }
        let commit = match broken {
            Some(e) => Err(e),
            None => match cache.deferred.flush(&conn) {
                Ok(()) => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        if rolled_back || commit.is_err() {
            cache.clear();
        }
        match commit {
            Ok(()) => finishers.into_iter().for_each(|f| f(None)),
            Err(e) => {
                tracing::error!(error = %e, "commit failed");
                let _ = conn.execute_batch("ROLLBACK");
                for f in finishers {
                    f(Some(StoreError::Conflict(format!("commit failed: {e}"))));
                }
            }
        }
    }
    if conn.as_sqlite().is_some() {
        if let Err(e) = conn.execute_batch("PRAGMA optimize") {
            tracing::warn!(error = %e, "PRAGMA optimize at shutdown failed");
        }
    }
}
