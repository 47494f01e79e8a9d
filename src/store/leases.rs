//! Who runs which background work when several instances share the database. A lease names a
//! piece of work (`export:17`, `qm-export:4`, `retention`); its owner renews it while working;
//! once it has run out, any instance may take the work over. On the embedded SQLite default
//! there is one instance and every claim succeeds.

use crate::store::db::{params, Connection};
use crate::store::StoreError;

/// Takes or renews the lease `name` for `owner` until `now + ttl_ms`. False while another
/// owner's lease runs. One statement, so two instances claiming at once cannot both win.
pub fn claim(conn: &Connection, name: &str, owner: &str, now: i64, ttl_ms: i64) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "INSERT INTO leases (name, owner, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE leases.owner = excluded.owner OR leases.until < ?4",
        )?
        .execute(params![name, owner, now + ttl_ms, now])?;
    Ok(changed == 1)
}

/// Gives the lease back (the work is done, or left for another instance).
pub fn release(conn: &Connection, name: &str, owner: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM leases WHERE name = ? AND owner = ?")?
        .execute(params![name, owner])?;
    Ok(())
}

/// Forgets the leases of an earlier life of `owner` (a server that stopped or died): its work
/// is nobody's now, so it is taken over at once rather than when the leases run out.
pub fn release_all(conn: &Connection, owner: &str) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM leases WHERE owner = ?")?
        .execute([owner])?)
}

/// A condition on the lease named by the SQL expression `name` (e.g. `'export:' || CAST(id AS
/// TEXT)`): true while another instance holds it. Binds the current time and the asking owner.
pub fn held_elsewhere(name: &str) -> String {
    format!("EXISTS (SELECT 1 FROM leases l WHERE l.name = {name} AND l.until >= ? AND l.owner <> ?)")
}

/// A running server, as the other instances see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub id: String,
    pub host: String,
    pub files: String,
    pub seen_at: i64,
}

/// Says this instance is running (and where its files are); called every few seconds.
pub fn heartbeat(conn: &Connection, me: &Peer, started_at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO instances (id, host, files, started_at, seen_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET host = excluded.host, files = excluded.files, seen_at = excluded.seen_at",
    )?
    .execute(params![me.id, me.host, me.files, started_at, me.seen_at])?;
    Ok(())
}

/// The other instances seen since `since`.
pub fn peers(conn: &Connection, me: &str, since: i64) -> Result<Vec<Peer>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT id, host, files, seen_at FROM instances WHERE id <> ? AND seen_at >= ? ORDER BY id")?
        .query_map(params![me, since], |r| {
            Ok(Peer {
                id: r.get(0)?,
                host: r.get(1)?,
                files: r.get(2)?,
                seen_at: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// A stopping server leaves the list at once.
pub fn leave(conn: &Connection, me: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM instances WHERE id = ?")?
        .execute([me])?;
    release_all(conn, me)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_one_owners_until_it_runs_out() {
        let conn = Connection::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        conn.execute_batch("CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)")
            .unwrap();
        assert!(claim(&conn, "export:1", "a", 1_000, 100).unwrap());
        assert!(!claim(&conn, "export:1", "b", 1_050, 100).unwrap(), "a holds it");
        assert!(claim(&conn, "export:1", "a", 1_050, 100).unwrap(), "a renews");
        assert!(
            !claim(&conn, "export:1", "b", 1_150, 100).unwrap(),
            "renewed until 1150"
        );
        assert!(
            claim(&conn, "export:1", "b", 1_151, 100).unwrap(),
            "ran out: b takes it"
        );
        assert!(
            claim(&conn, "export:2", "a", 1_151, 100).unwrap(),
            "another name is free"
        );
        release(&conn, "export:2", "b").unwrap();
        assert!(
            !claim(&conn, "export:2", "b", 1_152, 100).unwrap(),
            "only the owner releases"
        );
        assert_eq!(release_all(&conn, "a").unwrap(), 1);
        assert!(claim(&conn, "export:2", "b", 1_152, 100).unwrap());
    }
}
