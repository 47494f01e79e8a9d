//! The two dialects' migrations: the same versions, and the same schema — tables, columns (name,
//! kind, nullability, default, in order), primary keys, foreign keys, unique constraints and
//! indexes (name, key columns, uniqueness, partial or not) — apart from the one thing each does its own way: number search
//! (SQLite's FTS5 table `numbers_fts` with its shadow tables; PostgreSQL's trigram index
//! `numbers_trgm_idx`, and its filter indexes' `INCLUDE (id)`, which SQLite's hold as the rowid). PostgreSQL is the machine's server at 127.0.0.1:5432 (user `postgres`),
//! in a database of this test's own, dropped afterwards.

use std::collections::{BTreeMap, BTreeSet};

use calltrail::store::migrations::{MIGRATIONS, POSTGRES};

#[derive(Debug, Default, PartialEq)]
struct Table {
    /// (name, kind: int | text | bytes, not null, default), in order.
    columns: Vec<(String, String, bool, Option<String>)>,
    /// (column, referenced table, referenced column)
    foreign_keys: BTreeSet<(String, String, String)>,
    primary_key: Vec<String>,
    uniques: BTreeSet<Vec<String>>,
    /// name → (columns, unique, partial)
    indexes: BTreeMap<String, (Vec<String>, bool, bool)>,
}

type Schema = BTreeMap<String, Table>;

/// Each dialect's own way to search numbers, and PostgreSQL's version table (SQLite keeps the
/// version in `PRAGMA user_version`): left out of the comparison.
fn dialect_only(name: &str) -> bool {
    name.starts_with("numbers_fts") || name == "numbers_trgm_idx" || name == "calltrail_schema"
}

fn sqlite_schema() -> Schema {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    for (_, sql) in MIGRATIONS {
        conn.execute_batch(sql).unwrap();
    }
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let tx = conn.transaction().unwrap();
    let mut schema = Schema::new();
    for name in names.into_iter().filter(|n| !dialect_only(n)) {
        let mut t = Table::default();
        let mut pk: Vec<(i64, String)> = vec![];
        let mut stmt = tx.prepare(&format!("PRAGMA table_info('{name}')")).unwrap();
        let cols = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .unwrap();
        for col in cols {
            let (col, declared, not_null, default, in_pk) = col.unwrap();
            let kind = match declared.as_str() {
                "INTEGER" => "int",
                "TEXT" => "text",
                "BLOB" => "bytes",
                other => panic!("{name}.{col}: type {other}"),
            };
            // A primary key is never null (SQLite lets a TEXT one be, by an old quirk; no row does).
            t.columns
                .push((col.clone(), kind.into(), not_null || in_pk > 0, default));
            if in_pk > 0 {
                pk.push((in_pk, col));
            }
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let mut stmt = tx.prepare(&format!("PRAGMA foreign_key_list('{name}')")).unwrap();
        let fks = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(3)?, r.get::<_, String>(2)?, r.get::<_, String>(4)?))
            })
            .unwrap();
        t.foreign_keys = fks.collect::<Result<_, _>>().unwrap();
        let mut stmt = tx.prepare(&format!("PRAGMA index_list('{name}')")).unwrap();
        let indexes: Vec<(String, bool, String, bool)> = stmt
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (index, unique, origin, partial) in indexes {
            let mut stmt = tx.prepare(&format!("PRAGMA index_info('{index}')")).unwrap();
            let columns: Vec<String> = stmt
                .query_map([], |r| r.get(2))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            match origin.as_str() {
                "pk" => {}
                "u" => {
                    t.uniques.insert(columns);
                }
                _ => {
                    t.indexes.insert(index, (columns, unique, partial));
                }
            }
        }
        schema.insert(name, t);
    }
    schema
}

/// A database of the test's own on the machine's PostgreSQL, dropped when done.
/// The version the PostgreSQL migrations reach.
fn latest() -> i64 {
    i64::from(POSTGRES.last().unwrap().0)
}

/// What `calltrail migrate` says once a PostgreSQL database is up to date.
fn migrated() -> String {
    format!("the PostgreSQL database is at schema version {}", latest())
}

fn schema_version(client: &mut postgres::Client) -> i64 {
    client
        .query_one("SELECT version FROM calltrail_schema", &[])
        .unwrap()
        .get(0)
}

pub(crate) struct Scratch {
    name: String,
}

impl Scratch {
    fn admin() -> postgres::Client {
        postgres::Client::connect("host=127.0.0.1 port=5432 user=postgres", postgres::NoTls)
            .expect("PostgreSQL at 127.0.0.1:5432, user postgres (./run-tests starts it)")
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    pub(crate) fn create() -> (Scratch, postgres::Client) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("calltrail_schema_{}_{nanos}", std::process::id());
        Scratch::admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let client = postgres::Client::connect(
            &format!("host=127.0.0.1 port=5432 user=postgres dbname={name}"),
            postgres::NoTls,
        )
        .unwrap();
        (Scratch { name }, client)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // On a thread of its own: the synchronous client must not block an async test's thread.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let _ = Scratch::admin().batch_execute(&sql);
        })
        .join();
    }
}

fn postgres_schema(client: &mut postgres::Client) -> Schema {
    let names: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut schema = Schema::new();
    for name in names.into_iter().filter(|n| !dialect_only(n)) {
        let mut t = Table::default();
        let cols = client
            .query(
                "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text \
                 FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
                &[&name],
            )
            .unwrap();
        for r in cols {
            let (col, data_type, nullable): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            // As SQLite writes it: `'UTC'::text` is `'UTC'`.
            let default: Option<String> = r
                .get::<_, Option<String>>(3)
                .map(|d| d.trim_end_matches("::text").trim_end_matches("::bigint").to_string());
            let kind = match data_type.as_str() {
                "bigint" => "int",
                "text" => "text",
                "bytea" => "bytes",
                other => panic!("{name}.{col}: type {other}"),
            };
            t.columns.push((col, kind.into(), nullable == "NO", default));
        }
        let constraints = client
            .query(
                "SELECT c.contype::text, array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o) \
                 FROM pg_constraint c WHERE c.conrelid = $1::text::regclass AND c.contype IN ('p', 'u')",
                &[&name],
            )
            .unwrap();
        for r in constraints {
            let (kind, columns): (String, Vec<String>) = (r.get(0), r.get(1));
            if kind == "p" {
                t.primary_key = columns;
            } else {
                t.uniques.insert(columns);
            }
        }
        let fks = client
            .query(
                "SELECT a.attname::text, f.relname::text, b.attname::text FROM pg_constraint c \
                 CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(n, m) \
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n \
                 JOIN pg_class f ON f.oid = c.confrelid \
                 JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = k.m \
                 WHERE c.conrelid = $1::text::regclass AND c.contype = 'f'",
                &[&name],
            )
            .unwrap();
        t.foreign_keys = fks.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        let indexes = client
            .query(
                "SELECT i.relname::text, x.indisunique, x.indpred IS NOT NULL, \
                 array(SELECT a.attname::text FROM unnest(x.indkey) WITH ORDINALITY k(n, o) \
                 JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n \
                 WHERE k.o <= x.indnkeyatts ORDER BY k.o) \
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                 WHERE x.indrelid = $1::text::regclass \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                &[&name],
            )
            .unwrap();
        for r in indexes {
            let index: String = r.get(0);
            if !dialect_only(&index) {
                t.indexes.insert(index, (r.get(3), r.get(1), r.get(2)));
            }
        }
        schema.insert(name, t);
    }
    schema
}

#[test]
fn both_dialects_migrate_to_the_same_schema() {
    let versions = |list: &[(u32, &str)]| list.iter().map(|(v, _)| *v).collect::<Vec<_>>();
    assert_eq!(versions(MIGRATIONS), versions(POSTGRES), "the same versions");
    let sqlite = sqlite_schema();
    let (scratch, mut client) = Scratch::create();
    // Through the command line, as an operator migrates a database; twice changes nothing.
    for _ in 0..2 {
        let (code, out, err) = crate::cli::calltrail(&["migrate", "--database-url", &scratch.url()], "");
        assert_eq!((code, out.trim()), (0, migrated().as_str()), "{err}");
    }
    assert_eq!(schema_version(&mut client), latest());
    let postgres = postgres_schema(&mut client);
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (name, table) in &sqlite {
        assert_eq!(table, &postgres[name], "{name}");
    }
    // The comparison sees what matters: every table, the calls table's indexes among them.
    assert!(sqlite.len() > 30, "{}", sqlite.len());
    assert!(sqlite["calls"].indexes.contains_key("calls_recording_idx"));
    assert!(sqlite["calls"].indexes["calls_recording_idx"].2, "partial");
    assert!(sqlite["users"]
        .foreign_keys
        .contains(&("account_id".into(), "accounts".into(), "id".into())));
    assert!(sqlite["accounts"].columns.contains(&(
        "restricted_recordings".into(),
        "text".into(),
        true,
        Some("'play'".into())
    )));
    // Number search exists in both, each its own way.
    let trigram: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'numbers_trgm_idx'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(trigram, 1);
    // PostgreSQL's filter indexes carry the call id (SQLite's hold the rowid): searches through
    // them read no call rows for their ids.
    for index in [
        "calls_from_idx",
        "calls_to_idx",
        "calls_campaign_idx",
        "calls_campaign_group_idx",
        "calls_operator_idx",
        "calls_result_idx",
    ] {
        let def: String = client
            .query_one("SELECT indexdef FROM pg_indexes WHERE indexname = $1", &[&index])
            .unwrap()
            .get(0);
        assert!(def.ends_with("INCLUDE (id)"), "{def}");
    }
}

#[test]
fn migrate_brings_the_data_folder_up_to_date_and_names_a_bad_url() {
    let dir = crate::common::temp_dir("migrate-cli");
    let data = dir.to_str().unwrap();
    // The data folder's SQLite file, whichever database the rest of the suite runs on.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["migrate", "--data", data])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let (code, out, err) = (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        format!("{}/calltrail.sqlite is at schema version {}", data, latest())
    );
    let conn = rusqlite::Connection::open(dir.join("calltrail.sqlite")).unwrap();
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.last().unwrap().0);
    let (code, _, err) = crate::cli::calltrail(&["migrate", "--database-url", "mysql://x"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--database-url: expected a postgres:// URL"), "{err}");
    let (code, _, err) = crate::cli::calltrail(&["migrate", "--database-url", "postgres://postgres@127.0.0.1:1/x"], "");
    assert_eq!(code, 2);
    assert!(err.contains("--database-url: cannot connect"), "{err}");
}

#[test]
fn instances_migrating_one_database_at_once_all_succeed_and_migrate_it_once() {
    let (scratch, mut client) = Scratch::create();
    let url = scratch.url();
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || crate::cli::calltrail(&["migrate", "--database-url", &url], ""))
        })
        .collect();
    for run in runs {
        let (code, out, err) = run.join().unwrap();
        assert_eq!((code, out.trim()), (0, migrated().as_str()), "{err}");
    }
    assert_eq!(schema_version(&mut client), latest());
    let rows: i64 = client
        .query_one("SELECT count(*) FROM calltrail_schema", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "one version row");
}
