//! Recordings: files stored behind one interface (`storage`), recognised by their bytes
//! (`sniff`), served by byte ranges (`range`), fetched from the telephony's URLs in the
//! background (`fetch`). What the database knows of them is `store::recordings`.

pub mod fetch;
pub mod range;
pub mod sniff;
pub mod storage;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use tokio::sync::Notify;

use crate::domain::AccountId;
use crate::store::recordings::StoredFile;
use storage::{ByteStream, Storage, StorageError};

/// Why a recording could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("{0}")]
    NotAudio(String),
    #[error("the recording is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Source(String),
    #[error("{0}")]
    Storage(String),
}

impl From<StorageError> for RecordingError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::TooLarge { limit } => RecordingError::TooLarge { limit },
            StorageError::Source(m) => RecordingError::Source(m),
            other => RecordingError::Storage(other.to_string()),
        }
    }
}

/// The recordings service: storage, its limits and the fetcher's doorbell; cheap to clone.
#[derive(Clone)]
pub struct Recordings {
    pub storage: Storage,
    pub max_bytes: u64,
    /// Rung when a fetch or a deletion is queued, so the background worker need not poll.
    pub wake: Arc<Notify>,
}

impl Recordings {
    /// Opens the configured storage.
    pub fn open(config: &crate::config::RecordingConfig) -> Result<Recordings, StorageError> {
        Ok(Recordings::new(Storage::open(&config.storage)?, config.max_bytes))
    }

    pub fn new(storage: Storage, max_bytes: u64) -> Recordings {
        Recordings {
            storage,
            max_bytes,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Streams `body` into storage under a new key after checking from its first bytes that it is
    /// audio. Nothing is left in storage when this fails.
    pub async fn store_body(
        &self,
        account: AccountId,
        mut body: ByteStream,
        declared: Option<&str>,
    ) -> Result<StoredFile, RecordingError> {
        let mut head: Vec<Bytes> = Vec::new();
        let mut seen = 0;
        while seen < sniff::HEAD {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    seen += chunk.len();
                    head.push(chunk);
                }
                None => break,
            }
        }
        let first: Vec<u8> = head.iter().flat_map(|c| c.iter().copied()).take(sniff::HEAD).collect();
        if first.is_empty() {
            return Err(RecordingError::NotAudio("the file is empty".into()));
        }
        let content_type = sniff::decide(declared, &first).map_err(RecordingError::NotAudio)?;
        let month = chrono::Utc::now().format("%Y-%m");
        let key = format!(
            "{}/{month}/{}.{}",
            account.0,
            storage::random_name(),
            sniff::extension(&content_type)
        );
        let whole: ByteStream = stream::iter(head.into_iter().map(Ok)).chain(body).boxed();
        let written = self.storage.put(&key, whole, self.max_bytes).await?;
        Ok(StoredFile {
            object_key: key,
            content_type,
            bytes: i64::try_from(written.bytes).unwrap_or(i64::MAX),
            sha256: written.sha256,
        })
    }
}
