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
    (
        12,
        include_str!("../../migrations/sqlite/0012_totals_and_number_search.sql"),
    ),
    (13, include_str!("../../migrations/sqlite/0013_label_bits.sql")),
    (14, include_str!("../../migrations/sqlite/0014_pbx.sql")),
];

/// The same migrations for PostgreSQL: the same versions, tables, columns and indexes in its
/// dialect (`tests/it/schema.rs` compares the schemas both produce).
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
    (
        12,
        include_str!("../../migrations/postgres/0012_totals_and_number_search.sql"),
    ),
    (13, include_str!("../../migrations/postgres/0013_label_bits.sql")),
    (14, include_str!("../../migrations/postgres/0014_pbx.sql")),
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

    /// Version 12 fills the 32-day blocks from the day buckets already counted, rounding days
    /// before 1970 down as `counts` does.
    #[test]
    fn count_blocks_are_filled_from_the_days() {
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 12) {
            tx.execute_batch(sql).unwrap();
        }
        for (bucket, kind, operator, n) in [
            (-1, "incoming", 0, 2),
            (-32, "incoming", 0, 3),
            (-33, "incoming", 0, 4),
            (0, "incoming", 0, 5),
            (31, "incoming", 0, 6),
            (32, "incoming", 0, 7),
            (31, "incoming", 9, 8),
            (20_600, "auto_campaign", 0, 9),
        ] {
            tx.execute(
                "INSERT INTO call_counts_day (account_id, bucket, kind, result, operator_id, n) VALUES (1, ?1, ?2, '', ?3, ?4)",
                rusqlite::params![bucket, kind, operator, n],
            )
            .unwrap();
        }
        tx.execute_batch(MIGRATIONS[11].1).unwrap();
        let blocks: Vec<(i64, String, i64, i64)> = tx
            .prepare("SELECT bucket, kind, operator_id, n FROM call_counts_block ORDER BY bucket, kind, operator_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected = [
            (-2, "incoming", 0, 4),
            (-1, "incoming", 0, 5),
            (0, "incoming", 0, 11),
            (0, "incoming", 9, 8),
            (1, "incoming", 0, 7),
            (643, "auto_campaign", 0, 9),
        ];
        let expected: Vec<(i64, String, i64, i64)> = expected
            .iter()
            .map(|(b, k, o, n)| (*b, k.to_string(), *o, *n))
            .collect();
        assert_eq!(blocks, expected);
        // The same rounding as the writer's, which divides hours by the block's 768.
        for (day, block) in [
            (-1i64, -1),
            (-32, -1),
            (-33, -2),
            (0, 0),
            (31, 0),
            (32, 1),
            (20_600, 643),
        ] {
            assert_eq!((day * 24).div_euclid(32 * 24), block, "day {day}");
        }
    }

    /// Version 13 fills `label_bits` from the calls' tags and topics with the bits of
    /// `store/labels.rs`.
    #[test]
    fn label_bits_are_filled_from_tags_and_topics() {
        use crate::store::labels::label_bits;
        let mut conn = Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        for (_, sql) in MIGRATIONS.iter().filter(|(v, _)| *v < 13) {
            tx.execute_batch(sql).unwrap();
        }
        let calls: [(i64, &[i64], &[i64]); 5] = [
            (1, &[], &[]),
            (2, &[1, 33, 31], &[]),
            (3, &[], &[0, 31, 30, 62]),
            (4, &[7, 8], &[7, 1000]),
            (5, &[32], &[]),
        ];
        tx.execute_batch("INSERT INTO accounts (id, name, created_at) VALUES (1, 'a', 0)")
            .unwrap();
        for (id, tags, topics) in calls {
            tx.execute(
                "INSERT INTO calls (id, account_id, external_id, started_at, kind, talk_seconds, updated_at) \
                 VALUES (?1, 1, ?1, 0, 'incoming', 0, 0)",
                [id],
            )
            .unwrap();
            for tag in tags {
                tx.execute("INSERT INTO call_tags (call_id, tag_id) VALUES (?1, ?2)", [id, *tag])
                    .unwrap();
            }
            for topic in topics {
                tx.execute(
                    "INSERT INTO call_topics (call_id, topic_id) VALUES (?1, ?2)",
                    [id, *topic],
                )
                .unwrap();
            }
        }
        tx.execute_batch(MIGRATIONS[12].1).unwrap();
        for (id, tags, topics) in calls {
            let bits: i64 = tx
                .query_row("SELECT label_bits FROM calls WHERE id = ?1", [id], |r| r.get(0))
                .unwrap();
            assert_eq!(bits, label_bits(tags, topics), "call {id}");
        }
    }
}
