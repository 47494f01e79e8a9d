//! Embedded, numbered schema migrations, applied in order at start-up inside one transaction.
//! `PRAGMA user_version` records the last one applied.

use rusqlite::Connection;

/// `(version, sql)` in order. Never edit a shipped migration: add the next one, here and in
/// `POSTGRES` with the same version.
pub const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_campaign_group_index.sql")),
    (3, include_str!("../../migrations/sqlite/0003_started_talk_index.sql")),
    (4, include_str!("../../migrations/sqlite/0004_sessions_audit.sql")),
    (5, include_str!("../../migrations/sqlite/0005_operator_talk_index.sql")),
    (6, include_str!("../../migrations/sqlite/0006_user_preferences.sql")),
    (7, include_str!("../../migrations/sqlite/0007_export_jobs.sql")),
    (8, include_str!("../../migrations/sqlite/0008_started_id_index.sql")),
    (9, include_str!("../../migrations/sqlite/0009_recordings_call_log.sql")),
    (10, include_str!("../../migrations/sqlite/0010_qm.sql")),
    (11, include_str!("../../migrations/sqlite/0011_instances.sql")),
];

/// The same migrations for PostgreSQL: the same versions, tables, columns and indexes in its
/// dialect (`tests/it/schema.rs` compares the schemas both produce). The store speaks only
/// SQLite yet; these are ready for when it speaks PostgreSQL too.
pub const POSTGRES: &[(u32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_campaign_group_index.sql"),
    ),
    (3, include_str!("../../migrations/postgres/0003_started_talk_index.sql")),
    (4, include_str!("../../migrations/postgres/0004_sessions_audit.sql")),
    (
        5,
        include_str!("../../migrations/postgres/0005_operator_talk_index.sql"),
    ),
    (6, include_str!("../../migrations/postgres/0006_user_preferences.sql")),
    (7, include_str!("../../migrations/postgres/0007_export_jobs.sql")),
    (8, include_str!("../../migrations/postgres/0008_started_id_index.sql")),
    (
        9,
        include_str!("../../migrations/postgres/0009_recordings_call_log.sql"),
    ),
    (10, include_str!("../../migrations/postgres/0010_qm.sql")),
    (11, include_str!("../../migrations/postgres/0011_instances.sql")),
];

pub fn run(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tx = conn.transaction()?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tracing::info!(version, "applying migration");
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()
}

/// The PostgreSQL twin of `run`: each pending migration in its own transaction, the version kept
/// in `calltrail_schema`, under a session advisory lock so that instances starting together
/// migrate once. Returns the version reached.
pub fn run_postgres(client: &mut postgres::Client) -> Result<u32, postgres::Error> {
    // Any constant shared by every calltrail instance: "ctmg" in ASCII.
    const LOCK: i64 = 0x6374_6d67;
    // Held for the whole run, before anything is created: instances starting together wait
    // here, and the later ones find the work done.
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let result = migrate_postgres(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]);
    let reached = result?;
    unlocked?;
    Ok(reached)
}

fn migrate_postgres(client: &mut postgres::Client) -> Result<u32, postgres::Error> {
    client.batch_execute("CREATE TABLE IF NOT EXISTS calltrail_schema (version BIGINT NOT NULL)")?;
    let current: i64 = match client.query_opt("SELECT version FROM calltrail_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            client.execute("INSERT INTO calltrail_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let mut reached = u32::try_from(current).unwrap_or(0);
    for (version, sql) in POSTGRES.iter().filter(|(v, _)| i64::from(*v) > current) {
        tracing::info!(version, "applying PostgreSQL migration");
        let mut tx = client.transaction()?;
        tx.batch_execute(sql)?;
        tx.execute("UPDATE calltrail_schema SET version = $1", &[&i64::from(*version)])?;
        tx.commit()?;
        reached = *version;
    }
    Ok(reached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_are_numbered_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        run(&mut conn).unwrap();
        run(&mut conn).unwrap();
        let v: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 + 1 == w[1].0));
    }
}
