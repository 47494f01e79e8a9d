//! Handing calls to the quality-management system (T-Bank QM): its HTTP client, the signed links
//! it downloads recordings from, and the background worker that delivers export jobs.

pub mod client;
pub mod link;
mod send;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::secrets::SealingKey;

/// What the HTTP side and the worker share.
#[derive(Clone)]
pub struct Qm {
    /// Seals the accounts' API keys.
    pub sealing: SealingKey,
    /// Signs the recording links handed to the QM system.
    pub link_key: [u8; 32],
    /// Wakes the worker when a job is queued.
    pub wake: Arc<Notify>,
}

impl Qm {
    pub fn new(sealing: SealingKey) -> Qm {
        Qm {
            link_key: sealing.derive("calltrail qm file links"),
            sealing,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The context an account's API key is sealed in: a sealed key copied to another account
    /// does not open there.
    pub fn key_context(account: crate::domain::AccountId) -> String {
        format!("qm-api-key:{}", account.0)
    }
}
