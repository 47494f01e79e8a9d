//! The retention task: now and then, deletes the calls and recordings that each account's
//! settings say have expired, then the files nothing refers to, and says so in the audit log.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::audit::AuditAction;
use crate::recording::fetch::purge_deleted;
use crate::recording::Recordings;
use crate::store::audit::{self, Actor};
use crate::store::auth::{self, now_ms};
use crate::store::{leases, retention, Store, StoreError};

/// Calls or recordings deleted per transaction.
const BATCH: u32 = 2_000;
const DAY_MS: i64 = 86_400_000;

/// One instance sweeps at a time: the others skip the round while its lease runs.
const LEASE: &str = "retention";
const LEASE_MS: i64 = 30 * 60_000;

pub async fn run(store: Store, recordings: Recordings, every_ms: u64, me: Arc<str>) {
    loop {
        let owner = me.clone();
        let mine = store
            .write(move |conn, _| leases::claim(conn, LEASE, &owner, now_ms(), LEASE_MS))
            .await;
        match mine {
            Ok(true) => {
                if let Err(e) = sweep(&store, &recordings, now_ms()).await {
                    tracing::warn!(error = %e, "retention failed; will try again");
                }
                let owner = me.clone();
                let _ = store.write(move |conn, _| leases::release(conn, LEASE, &owner)).await;
            }
            Ok(false) => tracing::debug!("another instance is sweeping"),
            Err(e) => tracing::warn!(error = %e, "retention could not start; will try again"),
        }
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
    }
}

/// What one sweep deleted in one account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub calls: usize,
    pub recordings: usize,
}

/// Runs `batch` in its own transaction until it deletes fewer than a whole batch; returns the sum.
async fn in_batches<F>(store: &Store, batch: F) -> Result<usize, StoreError>
where
    F: Fn(&crate::store::db::Connection) -> Result<usize, StoreError> + Clone + Send + 'static,
{
    let mut total = 0;
    loop {
        let f = batch.clone();
        let n = store.write(move |conn, _| f(conn)).await?;
        total += n;
        if n < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Deletes everything expired as of `now` in every account.
pub async fn sweep(store: &Store, recordings: &Recordings, now: i64) -> Result<(), StoreError> {
    for account in store.read(auth::accounts).await? {
        let mut swept = Swept::default();
        let recordings_before = account.keep_recordings_days.map(|d| now - i64::from(d) * DAY_MS);
        let calls_before = account.keep_calls_days.map(|d| now - i64::from(d) * DAY_MS);
        let id = account.id;
        if let Some(cutoff) = recordings_before {
            swept.recordings = in_batches(store, move |conn| {
                retention::expire_recordings(conn, id, cutoff, BATCH, now)
            })
            .await?;
        }
        if let Some(cutoff) = calls_before {
            swept.calls = in_batches(store, move |conn| retention::expire_calls(conn, id, cutoff, BATCH, now)).await?;
        }
        if swept != Swept::default() {
            let detail = serde_json::json!({
                "calls": swept.calls,
                "recordings": swept.recordings,
                "calls_before": calls_before.map(|t| crate::store::view::format_time(t, None)),
                "recordings_before": recordings_before.map(|t| crate::store::view::format_time(t, None)),
            });
            let actor = Actor::system(id, retention::SOURCE);
            store
                .write(move |conn, _| audit::record(conn, &actor, AuditAction::RetentionDeleted, None, Some(detail)))
                .await?;
            tracing::info!(account = %account.name, calls = swept.calls, recordings = swept.recordings, "retention deleted");
        }
    }
    purge_deleted(store, recordings).await;
    Ok(())
}
