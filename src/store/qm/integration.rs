//! An account's QM integration, and the operators imported into the QM system.

use crate::store::db::{params, Connection, OptionalExtension};

use crate::domain::qm::OperatorChannel;
use crate::domain::AccountId;
use crate::store::StoreError;

/// One account's integration as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Integration {
    pub base_url: String,
    /// Sealed with the server's secret key (`secrets::SealingKey`).
    pub api_key_sealed: Option<String>,
    /// The key's last characters, to show it masked.
    pub api_key_hint: Option<String>,
    pub language_code: String,
    pub operator_channel: OperatorChannel,
    /// When the QM system last accepted the credentials.
    pub connected_at: Option<i64>,
    pub active: bool,
    pub updated_at: i64,
}

pub fn integration(conn: &Connection, account: AccountId) -> Result<Option<Integration>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT base_url, api_key_sealed, api_key_hint, language_code, operator_channel, connected_at, active, \
             updated_at FROM qm_integrations WHERE account_id = ?",
        )?
        .query_row([account.0], |r| {
            let channel: String = r.get(4)?;
            Ok(Integration {
                base_url: r.get(0)?,
                api_key_sealed: r.get(1)?,
                api_key_hint: r.get(2)?,
                language_code: r.get(3)?,
                operator_channel: OperatorChannel::parse(&channel).unwrap_or_default(),
                connected_at: r.get(5)?,
                active: r.get(6)?,
                updated_at: r.get(7)?,
            })
        })
        .optional()?;
    Ok(row)
}

/// Saves the integration unless it changed since it was read (`read_at`: its `updated_at` then,
/// 0 for none): a deactivation made while a credential check ran is not overwritten.
pub fn save_integration(
    conn: &Connection,
    account: AccountId,
    i: &Integration,
    read_at: i64,
) -> Result<(), StoreError> {
    let now_at = integration(conn, account)?.map_or(0, |x| x.updated_at);
    if now_at != read_at {
        return Err(StoreError::Conflict(
            "the QM settings were changed meanwhile; load them again and retry".into(),
        ));
    }
    put_integration(conn, account, i)
}

fn put_integration(conn: &Connection, account: AccountId, i: &Integration) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_integrations (account_id, base_url, api_key_sealed, api_key_hint, language_code, \
         operator_channel, connected_at, active, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (account_id) DO UPDATE SET base_url = excluded.base_url, api_key_sealed = excluded.api_key_sealed, \
         api_key_hint = excluded.api_key_hint, language_code = excluded.language_code, \
         operator_channel = excluded.operator_channel, connected_at = excluded.connected_at, \
         active = excluded.active, updated_at = excluded.updated_at",
    )?
    .execute(params![
        account.0,
        i.base_url,
        i.api_key_sealed,
        i.api_key_hint,
        i.language_code,
        i.operator_channel.code(),
        i.connected_at,
        i.active,
        i.updated_at
    ])?;
    Ok(())
}

/// Forgets which operators were imported: another QM system knows none of them.
pub fn forget_operators(conn: &Connection, account: AccountId) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM qm_operators WHERE account_id = ?")?
        .execute([account.0])?;
    Ok(())
}

/// The name an operator was last imported with, if they were.
pub fn imported_operator(conn: &Connection, account: AccountId, user: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT name FROM qm_operators WHERE account_id = ? AND user_id = ?")?
        .query_row(params![account.0, user], |r| r.get(0))
        .optional()?)
}

pub fn operator_imported(
    conn: &Connection,
    account: AccountId,
    user: i64,
    qm_id: &str,
    name: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO qm_operators (account_id, user_id, qm_id, name, imported_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (account_id, user_id) DO UPDATE SET qm_id = excluded.qm_id, name = excluded.name, \
         imported_at = excluded.imported_at",
    )?
    .execute(params![account.0, user, qm_id, name, now])?;
    Ok(())
}
