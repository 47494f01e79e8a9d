//! `calltrail copy`: every row of one calltrail database into another, empty one — an embedded
//! SQLite installation moved to PostgreSQL, or back. Both are brought to this version's schema
//! first; the source is read in one snapshot (a server may keep running on it, and what it
//! writes after the snapshot is not copied), the target written in one transaction, so a copy
//! that fails leaves the target as empty as it was. Row counts are compared table by table
//! before the commit; the target is vacuumed and analysed after it.

use std::path::{Path, PathBuf};

use crate::store::db::{self, params_from_iter, Connection, Value};
use crate::store::{dialect, migrations, Database, StoreError};

/// Rows read from the source per query (keyset-paged by primary key, so memory stays bounded).
const PAGE: usize = 5_000;
/// Parameters per INSERT: under SQLite's (32,766) and PostgreSQL's (65,535) limits.
const MAX_PARAMS: usize = 30_000;

/// One table's copy: its name and rows.
pub type Copied = (String, u64);

/// Copies every row of `from` into `to`, which must hold no data. `progress` hears each table
/// as it is done.
pub fn copy(from: &Database, to: &Database, progress: impl FnMut(&Copied)) -> Result<Vec<Copied>, StoreError> {
    copy_paged(from, to, PAGE, progress)
}

fn copy_paged(
    from: &Database,
    to: &Database,
    page: usize,
    mut progress: impl FnMut(&Copied),
) -> Result<Vec<Copied>, StoreError> {
    if from == to {
        return Err(invalid("--to", "is the same database as --from"));
    }
    let source = open(from, "--from")?;
    let target = open(to, "--to")?;
    let tables = tables(&target)?;
    for table in &tables {
        if target
            .prepare(&format!("SELECT 1 FROM {} LIMIT 1", table.name))?
            .exists(())?
        {
            return Err(invalid(
                "--to",
                format!(
                    "the database already holds data (table {}); copy into a new, empty database",
                    table.name
                ),
            ));
        }
    }
    // One consistent view of the source, whatever a server running on it writes meanwhile.
    source.execute_batch(if source.is_postgres() {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    } else {
        "BEGIN"
    })?;
    target.execute_batch("BEGIN")?;
    let copied = copy_tables(&source, &target, &tables, page, &mut progress);
    let _ = source.execute_batch("COMMIT");
    match copied {
        Ok(copied) => {
            target.execute_batch("COMMIT")?;
            // Fresh statistics for the planner; on PostgreSQL also the visibility map, without
            // which every index-only scan (the counts) reads the table rows as well.
            target.execute_batch(if target.is_postgres() {
                "VACUUM (ANALYZE)"
            } else {
                "ANALYZE"
            })?;
            Ok(copied)
        }
        Err(e) => {
            let _ = target.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(crate::domain::FieldError::new(field, message))
}

/// A database, migrated, on a connection of its own.
fn open(database: &Database, flag: &str) -> Result<Connection, StoreError> {
    match database {
        Database::Sqlite(dir) => {
            let path = sqlite_file(dir);
            if flag == "--from" && !path.exists() {
                return Err(invalid(
                    flag,
                    format!("there is no calltrail database at {}", path.display()),
                ));
            }
            std::fs::create_dir_all(dir)?;
            let mut conn = rusqlite::Connection::open(&path)?;
            dialect::configure_writer(&conn)?;
            migrations::run(&mut conn)?;
            Ok(Connection::Sqlite(conn))
        }
        Database::Postgres { url, .. } => {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .map_err(|e| invalid(flag, format!("cannot connect: {}", db::Error::from(e))))?;
            migrations::run_postgres(&mut client).map_err(db::Error::from)?;
            Ok(Connection::Postgres(Box::new(db::PgConnection::new(client))))
        }
    }
}

/// The SQLite file of a data folder (or the file itself, when named).
pub fn sqlite_file(dir: &Path) -> PathBuf {
    if dir.extension().is_some_and(|e| e == "sqlite") {
        dir.to_path_buf()
    } else {
        dir.join("calltrail.sqlite")
    }
}

struct Table {
    name: String,
    columns: Vec<String>,
    primary_key: Vec<String>,
}

/// The target's tables in creation order (a table is created after those it refers to), with
/// their columns in order and primary keys; each dialect's own search tables and version table
/// are not data.
fn tables(conn: &Connection) -> Result<Vec<Table>, StoreError> {
    let names: Vec<String> = if conn.is_postgres() {
        conn.prepare(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'calltrail_schema' ORDER BY c.oid",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_, _>>()?
    } else {
        conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE 'numbers_fts%' ORDER BY rowid",
        )?
        .query_map((), |r| r.get(0))?
        .collect::<Result<_, _>>()?
    };
    let mut out = vec![];
    for name in names {
        let (columns, primary_key) = if conn.is_postgres() {
            let columns = conn
                .prepare(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = ? ORDER BY ordinal_position",
                )?
                .query_map([name.as_str()], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            let key = conn
                .prepare(
                    "SELECT a.attname::text FROM pg_constraint con \
                     CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
                     WHERE con.conrelid = CAST(CAST(? AS TEXT) AS regclass) AND con.contype = 'p' ORDER BY k.n",
                )?
                .query_map([name.as_str()], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            (columns, key)
        } else {
            let mut cols: Vec<(String, i64)> = conn
                .prepare(&format!(
                    "SELECT name, pk FROM pragma_table_info('{name}') ORDER BY cid"
                ))?
                .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let columns = cols.iter().map(|(c, _)| c.clone()).collect();
            cols.retain(|(_, pk)| *pk > 0);
            cols.sort_by_key(|(_, pk)| *pk);
            (columns, cols.into_iter().map(|(c, _)| c).collect())
        };
        if primary_key.is_empty() {
            return Err(StoreError::Conflict(format!(
                "table {name} has no primary key to copy it by"
            )));
        }
        out.push(Table {
            name,
            columns,
            primary_key,
        });
    }
    Ok(out)
}

fn copy_tables(
    source: &Connection,
    target: &Connection,
    tables: &[Table],
    page: usize,
    progress: &mut impl FnMut(&Copied),
) -> Result<Vec<Copied>, StoreError> {
    let mut copied = vec![];
    for table in tables {
        let rows = copy_table(source, target, table, page)?;
        let count = |conn: &Connection| -> Result<i64, StoreError> {
            Ok(conn.query_row(&format!("SELECT count(*) FROM {}", table.name), (), |r| r.get(0))?)
        };
        let (there, here) = (count(source)?, count(target)?);
        if there != here || here != rows as i64 {
            return Err(StoreError::Conflict(format!(
                "table {}: {there} rows in the source, {here} in the target after copying {rows}; nothing was copied",
                table.name
            )));
        }
        let done = (table.name.clone(), rows);
        progress(&done);
        copied.push(done);
    }
    if target.is_postgres() {
        // Identity columns go on from the highest id copied, not from 1.
        let identities: Vec<(String, String)> = target
            .prepare(
                "SELECT table_name::text, column_name::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND is_identity = 'YES'",
            )?
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (table, column) in identities {
            target.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                 COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)"
            ))?;
        }
    } else {
        // The number search index is derived from the numbers just copied.
        target.execute_batch("INSERT INTO numbers_fts (numbers_fts) VALUES ('rebuild')")?;
    }
    Ok(copied)
}

/// Copies one table page by page in primary-key order; returns the rows copied.
fn copy_table(source: &Connection, target: &Connection, table: &Table, page_rows: usize) -> Result<u64, StoreError> {
    let cols = table.columns.join(", ");
    let key = table.primary_key.join(", ");
    let key_at: Vec<usize> = table
        .primary_key
        .iter()
        .map(|k| table.columns.iter().position(|c| c == k).unwrap_or(0))
        .collect();
    let marks = vec!["?"; key_at.len()].join(", ");
    let first = format!("SELECT {cols} FROM {} ORDER BY {key} LIMIT {page_rows}", table.name);
    let next = format!(
        "SELECT {cols} FROM {} WHERE ({key}) > ({marks}) ORDER BY {key} LIMIT {page_rows}",
        table.name
    );
    let per_insert = (MAX_PARAMS / table.columns.len()).max(1);
    let mut after: Option<Vec<Value>> = None;
    let mut total = 0u64;
    loop {
        let mut stmt = source.prepare_cached(if after.is_some() { &next } else { &first })?;
        let mut rows = stmt.query(params_from_iter(after.take().unwrap_or_default()))?;
        let mut page: Vec<Vec<Value>> = Vec::with_capacity(page_rows);
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(table.columns.len());
            for i in 0..table.columns.len() {
                values.push(row.get::<_, Value>(i)?);
            }
            page.push(values);
        }
        drop(rows);
        drop(stmt);
        for chunk in page.chunks(per_insert) {
            insert(target, table, chunk)?;
        }
        total += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == page_rows => after = Some(key_at.iter().map(|&i| last[i].clone()).collect()),
            _ => return Ok(total),
        }
    }
}

fn insert(target: &Connection, table: &Table, rows: &[Vec<Value>]) -> Result<(), StoreError> {
    let one = format!("({})", vec!["?"; table.columns.len()].join(", "));
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        table.columns.join(", "),
        vec![one; rows.len()].join(", ")
    );
    target
        .prepare_cached(&sql)?
        .execute(params_from_iter(rows.iter().flatten().cloned()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages of 1,000 over tables of several thousand rows, a composite key among them: every
    /// row arrives once, and the derived number index answers on the copy.
    #[test]
    fn pages_by_primary_key_copy_every_row_once() {
        let root = std::env::temp_dir().join(format!("calltrail-copy-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (from, to) = (Database::Sqlite(root.join("a")), Database::Sqlite(root.join("b")));
        let source = open(&Database::Sqlite(root.join("a")), "--to").unwrap();
        source
            .execute_batch(
                "INSERT INTO accounts (id, name, created_at) VALUES (1, 'default', 0);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4321)
                 INSERT INTO numbers (id, number) SELECT i, '+7916' || (1000000 + i) FROM n;
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
                 INSERT INTO users (id, account_id, login, name, role, created_at) SELECT i, 1, 'u' || i, 'User ' || i, 'operator', i FROM n;
                 INSERT INTO groups (id, account_id, key, name) VALUES (1, 1, 'a', 'A'), (2, 1, 'b', 'B');
                 INSERT INTO group_members (group_id, user_id) SELECT g.id, u.id FROM groups g, users u;",
            )
            .unwrap();
        drop(source);
        let mut heard = vec![];
        let copied = copy_paged(&from, &to, 1_000, |t| heard.push(t.clone())).unwrap();
        assert_eq!(copied, heard);
        let rows = |name: &str| copied.iter().find(|(t, _)| t == name).map(|(_, n)| *n);
        assert_eq!(rows("numbers"), Some(4_321));
        assert_eq!(rows("users"), Some(2_500));
        assert_eq!(rows("group_members"), Some(5_000));
        let target = open(&to, "--to").unwrap();
        let digest = |conn: &Connection, sql: &str| -> (i64, String) {
            conn.query_row(sql, (), |r| Ok((r.get(0)?, r.get(1)?))).unwrap()
        };
        let a = open(&from, "--from").unwrap();
        for sql in [
            "SELECT count(*), group_concat(number, ',') FROM (SELECT number FROM numbers ORDER BY id)",
            "SELECT count(*), group_concat(g, ',') FROM (SELECT group_id || ':' || user_id AS g FROM group_members ORDER BY 1)",
        ] {
            assert_eq!(digest(&a, sql), digest(&target, sql), "{sql}");
        }
        let found: i64 = target
            .query_row(
                "SELECT count(*) FROM numbers_fts WHERE numbers_fts MATCH '\"1004321\"'",
                (),
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(found, 1, "the number index was rebuilt");
        let again = copy_paged(&from, &to, 1_000, |_| {}).unwrap_err();
        assert!(again.to_string().contains("already holds data"), "{again}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
