//! Where `calltrail import --follow` stopped reading each followed log.

use crate::store::db::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::AccountId;

/// A followed file: which one (inode) and how far it was read (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub inode: u64,
    pub offset: u64,
}

pub fn get(conn: &Connection, account: AccountId, path: &str) -> Result<Option<Position>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT inode, position FROM import_positions WHERE account_id = ? AND path = ?")?
        .query_row(params![account.0, path], |r| {
            let (inode, offset): (i64, i64) = (r.get(0)?, r.get(1)?);
            Ok(Position {
                inode: u64::try_from(inode).unwrap_or(0),
                offset: u64::try_from(offset).unwrap_or(0),
            })
        })
        .optional()?)
}

pub fn set(
    conn: &Connection,
    account: AccountId,
    path: &str,
    format: &str,
    p: Position,
    now: i64,
) -> Result<(), StoreError> {
    let (inode, offset) = (
        i64::try_from(p.inode).unwrap_or(i64::MAX),
        i64::try_from(p.offset).unwrap_or(i64::MAX),
    );
    conn.execute(
        "INSERT INTO import_positions (account_id, path, format, inode, position, updated_at) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, path) DO UPDATE SET format = excluded.format, inode = excluded.inode, \
         position = excluded.position, updated_at = excluded.updated_at",
        params![account.0, path, format, inode, offset, now],
    )?;
    Ok(())
}
