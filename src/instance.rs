//! This server among the others sharing its database: its identity, kept in the data folder so
//! that a restarted server knows its own unfinished work at once; the lock that keeps two servers
//! off one data folder; the heartbeat by which instances see each other; and the rule that
//! several instances need shared file storage (a recording or export file written on one
//! machine's disk cannot be downloaded from another).

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::recording::storage::StorageConfig;
use crate::store::auth::now_ms;
use crate::store::leases::{self, Peer};
use crate::store::{Store, StoreError};

/// How often a running instance says so.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not heard from for this long is taken for stopped.
pub const SEEN_WITHIN_MS: i64 = 20_000;

/// A running server's place among the instances; holds the data folder's lock while it lives.
pub struct Instance {
    pub id: Arc<str>,
    files: String,
    host: String,
    started_at: i64,
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error("{0}")]
    Refused(String),
    #[error("the data folder: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Where an instance's files live, as the others compare it: `disk`, or the bucket's address.
pub fn files_of(storage: &StorageConfig) -> String {
    match storage {
        StorageConfig::Disk(_) => "disk".into(),
        StorageConfig::S3(s3) => format!(
            "s3://{}/{} at {}",
            s3.bucket,
            s3.prefix,
            s3.endpoint.as_deref().unwrap_or("AWS")
        ),
    }
}

impl Instance {
    /// Locks the data folder (one server per folder) and reads, or first creates, its id.
    pub fn claim(data: &Path, storage: &StorageConfig) -> Result<Instance, InstanceError> {
        std::fs::create_dir_all(data)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data.join("instance.lock"))?;
        if lock.try_lock().is_err() {
            return Err(InstanceError::Refused(format!(
                "another calltrail server is running on the data folder {}; give each server a data folder of its own (--data)",
                data.display()
            )));
        }
        let id_file = data.join("instance-id");
        let id = match std::fs::read_to_string(&id_file) {
            Ok(id) if !id.trim().is_empty() => id.trim().to_string(),
            _ => {
                let id = crate::secrets::new_token("i_");
                std::fs::write(&id_file, &id)?;
                id
            }
        };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown host".into());
        Ok(Instance {
            id: id.into(),
            files: files_of(storage),
            host,
            started_at: now_ms(),
            _lock: lock,
        })
    }

    fn me(&self) -> Peer {
        Peer {
            id: self.id.to_string(),
            host: self.host.clone(),
            files: self.files.clone(),
            seen_at: now_ms(),
        }
    }

    /// Joins the instances on the database: refuses when another one is running and files are
    /// not in one shared object storage; takes back at once the work an earlier life of this
    /// instance left (its leases), and says it is running.
    pub async fn join(&self, store: &Store) -> Result<(), InstanceError> {
        let (me, started_at) = (self.me(), self.started_at);
        let conflict = store
            .write(move |conn, _| {
                let peers = leases::peers(conn, &me.id, now_ms() - SEEN_WITHIN_MS)?;
                let conflict = peers.into_iter().find(|p| !can_share(&me.files, &p.files));
                if conflict.is_none() {
                    leases::release_all(conn, &me.id)?;
                    leases::heartbeat(conn, &me, started_at)?;
                }
                Ok(conflict)
            })
            .await?;
        match conflict {
            None => Ok(()),
            Some(p) => Err(InstanceError::Refused(sharing_refused(&self.files, &p))),
        }
    }

    /// Says every few seconds that this instance is running, until the task is dropped.
    pub fn heartbeat(&self, store: Store) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (mut me, started_at) = (self.me(), self.started_at);
        async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                me.seen_at = now_ms();
                let peer = me.clone();
                if let Err(e) = store
                    .write(move |conn, _| leases::heartbeat(conn, &peer, started_at))
                    .await
                {
                    tracing::warn!(error = %e, "could not tell the other instances this one is running");
                }
            }
        }
    }

    /// Leaves the list and gives back every lease, so the others take over without waiting.
    pub async fn leave(&self, store: &Store) {
        let id = self.id.to_string();
        if let Err(e) = store.write(move |conn, _| leases::leave(conn, &id)).await {
            tracing::warn!(error = %e, "could not leave the list of instances");
        }
    }
}

/// Two instances can run side by side only when they keep files in the same object storage.
fn can_share(mine: &str, theirs: &str) -> bool {
    mine == theirs && mine != "disk"
}

fn sharing_refused(mine: &str, other: &Peer) -> String {
    let (theirs, seen) = (&other.files, (now_ms() - other.seen_at) / 1000);
    let why = if mine == "disk" || theirs == "disk" {
        "recordings and export files are on local disk (--storage-url is not set) and could not be \
         downloaded from the other instance; with several instances every one needs the same \
         --storage-url s3://bucket/prefix"
            .to_string()
    } else {
        format!("the instances keep files in different places ({mine} here, {theirs} there); give every instance the same --storage-url")
    };
    format!(
        "another calltrail instance ({} on {}, seen {seen} s ago) is running on this database, and {why}",
        other.id, other.host
    )
}
