//! What differs between the databases: SQLite's connection settings, the number-search clause,
//! the time-index hint. The rest of the store's SQL is written in the subset SQLite and
//! PostgreSQL share, with `?` placeholders (`db.rs` numbers them for PostgreSQL).

use super::batch_rows::Insert;
use super::deferred::Deferred;
use crate::store::db::{Connection, Value};

/// The writer: WAL so readers never block it; `synchronous=FULL` so a commit that returned is on
/// disk (an acknowledged ingest is never lost, even to a power cut).
pub fn configure_writer(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -262144;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 10000;",
    )
}

/// Readers map the file into memory and keep a generous page cache: the list queries walk
/// B-trees, and the OS page cache then serves them without copies.
pub fn configure_reader(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA busy_timeout = 10000;
         PRAGMA mmap_size = 17179869184;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;",
    )
}

/// Which database a connection speaks, for the few places where the SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn of(conn: &Connection) -> Dialect {
        if conn.is_postgres() {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }

    /// Makes a page query walk the time index newest first (see `search::PagePlan`); SQLite's
    /// planner, guessing without exact counts, sometimes sorts a million matches instead.
    /// PostgreSQL has no such hint (its planner keeps statistics of its own).
    pub fn walk_time_index(self) -> &'static str {
        match self {
            Dialect::Sqlite => " INDEXED BY calls_started_idx",
            Dialect::Postgres => "",
        }
    }

    /// Whether a page of a number search may walk the time index, testing each call's numbers
    /// (`search::PagePlan::WalkTime`, chosen when the fragment matches many calls). PostgreSQL does
    /// not walk that query: it gathers the id of every match and then visits each one's row for its
    /// start — a four-digit fragment matching 34,638 of 10 million calls took 0.25–0.32 s, where
    /// reading the matches' starts from the number indexes and sorting them (as the count
    /// already does) took 15 ms. So there a number search's page is always sorted, and its plan
    /// does not wait for the total (`Store::search`).
    pub fn walks_number_matches(self) -> bool {
        self == Dialect::Sqlite
    }

    /// Ends a `SELECT` of work to claim: on PostgreSQL, rows another instance's transaction is
    /// claiming are skipped rather than waited for (and then claimed twice); SQLite has one
    /// writer, so nothing to skip.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// A condition that `column` holds a number containing `fragment`, with its argument. The
    /// matching numbers are found in the trigram index over the number dictionary (SQLite: FTS5;
    /// PostgreSQL: `pg_trgm` GIN), then the calls through the per-number indexes
    /// `(account, number, started_at)`, which hold the call's id too.
    pub fn number_in(self, column: &str, fragment: &str) -> (String, Value) {
        match self {
            Dialect::Sqlite => (
                format!(
                    "{column} IN (SELECT n.number FROM numbers n WHERE n.id IN \
                     (SELECT rowid FROM numbers_fts WHERE numbers_fts MATCH ?))"
                ),
                Value::Text(format!("\"{}\"", fragment.replace('"', "\"\""))),
            ),
            // `= ANY (ARRAY(…))` makes the numbers' look-up a plan of its own, run once: as an
            // `IN` subquery it was planned into the join, where a parallel scan of the whole
            // dictionary looked cheaper than the trigram index (0.4 s at 10 million calls).
            Dialect::Postgres => (
                format!("{column} = ANY (ARRAY(SELECT n.number FROM numbers n WHERE n.number LIKE ?))"),
                Value::Text(format!(
                    "%{}%",
                    fragment.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                )),
            ),
        }
    }

    /// A condition matching calls of `account` whose caller or callee number contains
    /// `fragment`, with its arguments, for queries that test calls one by one (a walk through
    /// the time index, live updates). Counts and sorted pages use `search`'s union of the two
    /// sides instead.
    ///
    /// On PostgreSQL the calls are named by id from a subquery that starts at the numbers (within
    /// the period when there is one): written as an `OR` of two `IN` lists, its planner walked
    /// the time index testing every call against the lists (0.3 s at 100,000 calls).
    pub fn number_match(
        self,
        account: i64,
        from: Option<i64>,
        to: Option<i64>,
        fragment: &str,
    ) -> (String, Vec<Value>) {
        match self {
            Dialect::Sqlite => {
                let (caller, arg) = self.number_in("c.from_number", fragment);
                let (callee, _) = self.number_in("c.to_number", fragment);
                (format!("({caller} OR {callee})"), vec![arg.clone(), arg])
            }
            Dialect::Postgres => {
                let mut period = String::new();
                let mut bounds = vec![];
                if let Some(from) = from {
                    period.push_str(" AND x.started_at >= ?");
                    bounds.push(Value::Integer(from));
                }
                if let Some(to) = to {
                    period.push_str(" AND x.started_at < ?");
                    bounds.push(Value::Integer(to));
                }
                let mut sides = vec![];
                let mut args = vec![];
                for column in ["x.from_number", "x.to_number"] {
                    let (test, arg) = self.number_in(column, fragment);
                    sides.push(format!(
                        "SELECT x.id FROM calls x WHERE x.account_id = ? AND {test}{period}"
                    ));
                    args.push(Value::Integer(account));
                    args.push(arg);
                    args.extend(bounds.iter().cloned());
                }
                (format!("c.id IN ({})", sides.join(" UNION ALL ")), args)
            }
        }
    }
}

/// New numbers on PostgreSQL; a number twice in one statement is skipped like one already there.
static NUMBERS: Insert = Insert {
    table: "numbers",
    columns: &["number"],
    tail: " ON CONFLICT (number) DO NOTHING",
};

/// Records a number in the dictionary (and its trigram index) if it is new there. On PostgreSQL,
/// whose GIN index follows the table, with the rest of the ingest (`Deferred`): a round trip per
/// new number saved.
pub fn remember_number(conn: &Connection, later: &mut Deferred, number: &str) -> crate::store::db::Result<()> {
    if conn.is_postgres() {
        later.add(&NUMBERS, [number]);
        return Ok(());
    }
    let mut find = conn.prepare_cached("SELECT 1 FROM numbers WHERE number = ?")?;
    if find.exists([number])? {
        return Ok(());
    }
    let mut ins = conn.prepare_cached("INSERT INTO numbers (number) VALUES (?)")?;
    ins.execute([number])?;
    let id = conn.last_insert_rowid()?;
    let mut fts = conn.prepare_cached("INSERT INTO numbers_fts (rowid, number) VALUES (?, ?)")?;
    fts.execute(crate::store::db::params![id, number])?;
    Ok(())
}
