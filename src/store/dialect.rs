//! What is particular to SQLite: connection settings and the number-search clause. The rest of
//! the store's SQL is written in the subset SQLite and PostgreSQL share, with `?` placeholders.

use crate::store::db::Connection;

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

/// Makes a page query walk the time index newest first (see `search::PagePlan`); the planner,
/// guessing without exact counts, sometimes sorts a million matches instead.
pub const WALK_TIME_INDEX: &str = " INDEXED BY calls_started_idx";

/// A condition matching calls whose caller or callee number contains the bound fragment
/// (bound twice). It finds the matching numbers in the trigram index over the number
/// dictionary, then the calls through the per-number indexes.
pub const NUMBER_MATCH: &str = "(c.from_number IN (SELECT n.number FROM numbers n WHERE n.id IN \
     (SELECT rowid FROM numbers_fts WHERE numbers_fts MATCH ?)) \
     OR c.to_number IN (SELECT n.number FROM numbers n WHERE n.id IN \
     (SELECT rowid FROM numbers_fts WHERE numbers_fts MATCH ?)))";

/// The FTS5 query text for a literal substring: one quoted phrase, quotes doubled.
pub fn number_match_arg(fragment: &str) -> String {
    format!("\"{}\"", fragment.replace('"', "\"\""))
}

/// Records a number in the dictionary (and its trigram index) if it is new there.
pub fn remember_number(conn: &Connection, number: &str) -> crate::store::db::Result<()> {
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
