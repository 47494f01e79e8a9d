//! The reference product's webhook subscription of an account: its domain and sealed salt.

use crate::store::db::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::domain::AccountId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    pub domain: String,
    /// Sealed with the server's secret key (`secrets::SealingKey`), never stored in clear.
    pub salt_sealed: String,
    pub updated_at: i64,
}

pub fn integration(conn: &Connection, account: AccountId) -> Result<Option<Integration>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT domain, salt_sealed, updated_at FROM voximplant_kit_integrations WHERE account_id = ?")?
        .query_row([account.0], |r| {
            Ok(Integration {
                domain: r.get(0)?,
                salt_sealed: r.get(1)?,
                updated_at: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn save(conn: &Connection, account: AccountId, i: &Integration) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO voximplant_kit_integrations (account_id, domain, salt_sealed, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (account_id) DO UPDATE SET domain = excluded.domain, salt_sealed = excluded.salt_sealed, \
         updated_at = excluded.updated_at",
        params![account.0, i.domain, i.salt_sealed, i.updated_at],
    )?;
    Ok(())
}
