//! The call store: the only code that speaks SQL.
//!
//! One SQLite database in WAL mode. Reads run on a small pool of read-only connections on
//! tokio's blocking threads. All writes go through one writer thread that commits several
//! waiting jobs in one transaction (group commit), each job inside its own savepoint so that a
//! failing job changes nothing while the others land; a job's caller hears back only after the
//! commit is durable (`synchronous=FULL`).

pub mod access;
pub mod audit;
pub mod auth;
pub mod calllog;
pub mod counts;
pub mod cursor;
pub mod db;
pub mod dialect;
pub mod directory;
pub mod export;
pub mod exports;
pub mod ingest;
pub mod migrations;
pub mod people;
pub mod preferences;
pub mod qm;
pub mod recordings;
pub mod retention;
pub mod search;
pub mod view;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::OpenFlags;

pub use db::Connection;
use tokio::sync::{oneshot, Semaphore};

use crate::domain::{AccountId, FieldError};

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
    /// Count changes of the job being run, flushed by the job before it ends.
    pub counts: counts::CountDeltas,
}

impl WriteCache {
    fn clear(&mut self) {
        self.dims.clear();
        self.numbers.clear();
        self.counts = counts::CountDeltas::default();
    }
}

type Finisher = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// A write job: run inside the transaction, or told why it could not be (its caller then hears
/// that error). Returns whether it succeeded and what to do once the commit is known.
type Job = Box<dyn for<'a> FnOnce(Result<(&'a Connection, &'a mut WriteCache), StoreError>) -> (bool, Finisher) + Send>;

/// Where the store's connections go.
enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

struct Inner {
    backend: Backend,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    cursor_key: [u8; 32],
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A PostgreSQL client closes its connection by blocking on it: never on an async thread,
        // where the last handle to the store may well be dropped.
        let readers = std::mem::take(self.readers.get_mut().unwrap_or_else(|e| e.into_inner()));
        if readers.iter().any(Connection::is_postgres) {
            let _ = std::thread::spawn(move || drop(readers)).join();
        }
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl Store {
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
            .spawn(move || writer_loop(conn, rx))?;
        Ok(Store {
            inner: Arc::new(Inner {
                backend: Backend::Sqlite(path),
                readers: Mutex::new(Vec::new()),
                reader_permits: Semaphore::new(READERS),
                writer: Mutex::new(Some(tx)),
                cursor_key,
            }),
        })
    }

    /// Opens a PostgreSQL database (`postgres://…`), migrates it and starts the writer. The
    /// same store code runs on it; what differs is `dialect.rs`'s.
    pub fn open_postgres(url: &str) -> Result<Store, StoreError> {
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
                    let conn = Connection::Postgres(Box::new(db::PgConnection::new(client)));
                    auth::ensure_default_account(&conn)?;
                    let key = auth::secret(&conn, "cursor_key")?;
                    Ok::<_, StoreError>((conn, key))
                })();
                match opened {
                    Ok((conn, key)) => {
                        let _ = ready_tx.send(Ok(key));
                        writer_loop(conn, rx);
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
                reader_permits: Semaphore::new(READERS),
                writer: Mutex::new(Some(tx)),
                cursor_key,
            }),
        })
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
        let _permit = self
            .inner
            .reader_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Closed)?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().map_err(|_| StoreError::Closed)?.pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&inner.backend)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
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
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
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
                .send(job)
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
        self.inner.readers.lock().map_err(|_| StoreError::Closed)?.clear();
        Ok(())
    }

    /// Stops accepting writes; the writer finishes what it has and closes the database.
    pub fn shutdown(&self) {
        if let Ok(mut w) = self.inner.writer.lock() {
            w.take();
        }
    }
}

fn open_reader(backend: &Backend) -> Result<Connection, StoreError> {
    let path = match backend {
        Backend::Sqlite(path) => path,
        Backend::Postgres(url) => {
            let client = postgres::Client::connect(url, postgres::NoTls).map_err(db::Error::from)?;
            return Ok(Connection::Postgres(Box::new(db::PgConnection::new(client))));
        }
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

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    let mut cache = WriteCache::default();
    while let Ok(first) = rx.recv() {
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
                let (_, finish) = job(Err(StoreError::Conflict(format!("cannot begin a write: {e}"))));
                finish(None);
            }
            continue;
        }
        let mut finishers = Vec::with_capacity(jobs.len());
        let mut rolled_back = false;
        for job in jobs {
            let (ok, finish) = match conn.execute_batch("SAVEPOINT job") {
                // A job that panics is a bug; it must not take the writer (and every later write)
                // down with it. Its caller hears that the store failed; its changes roll back.
                Ok(()) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok((&conn, &mut cache)))))
                {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::error!("a write job panicked; its changes are rolled back");
                        (false, Box::new(|_| {}) as Finisher)
                    }
                },
                Err(e) => job(Err(StoreError::Conflict(format!("cannot open a savepoint: {e}")))),
            };
            let closed = if ok {
                conn.execute_batch("RELEASE job")
            } else {
                rolled_back = true;
                conn.execute_batch("ROLLBACK TO job; RELEASE job")
            };
            if let Err(e) = closed {
                tracing::error!(error = %e, "cannot close a savepoint");
            }
            finishers.push(finish);
        }
        let commit = conn.execute_batch("COMMIT");
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
