//! An account's PBX settings (`ingest::pbx::PbxSettings`), kept as one JSON document.

use crate::store::db::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::AccountId;
use crate::ingest::pbx::PbxSettings;

/// The account's settings; the defaults until they are first changed.
pub fn settings(conn: &Connection, account: AccountId) -> Result<PbxSettings, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT settings FROM pbx_settings WHERE account_id = ?")?
        .query_row([account.0], |r| r.get(0))
        .optional()?;
    // Written by `save` only, from checked settings; a document from a newer version with
    // fields this one does not know falls back to the defaults rather than stopping imports.
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default())
}

pub fn save(conn: &Connection, account: AccountId, s: &PbxSettings, now: i64) -> Result<(), StoreError> {
    let text = serde_json::to_string(s).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
    conn.execute(
        "INSERT INTO pbx_settings (account_id, settings, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (account_id) DO UPDATE SET settings = excluded.settings, updated_at = excluded.updated_at",
        params![account.0, text, now],
    )?;
    Ok(())
}
