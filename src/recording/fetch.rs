//! The background worker that fetches recordings from the URLs the telephony named, with
//! retries, and deletes stored objects nothing refers to any more.
//!
//! A fetch is claimed with a lease (its next attempt pushed ahead) before it starts, so a fetch
//! that dies with its process is tried again, and an instance that restarts picks up where it
//! was. Answers that cannot get better (not audio, too large, 4xx other than 404/408/429) fail
//! at once; the rest are retried with a doubling delay until the attempts run out.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{StreamExt, TryStreamExt};
use reqwest::StatusCode;

use super::storage::StorageError;
use super::{RecordingError, Recordings};
use crate::config::RecordingConfig;
use crate::live::LiveHub;
use crate::store::auth::now_ms;
use crate::store::recordings::{self, Due};
use crate::store::Store;

/// How many fetches run at once.
const PARALLEL: usize = 4;
/// How long a claimed fetch may take before another round may claim it again.
const LEASE_MS: i64 = 15 * 60_000;
/// The longest the worker sleeps without looking for work.
const IDLE: Duration = Duration::from_secs(60);

/// Why one attempt failed, and whether trying again could help.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retry: false,
        }
    }
    fn transient(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retry: true,
        }
    }
}

pub async fn run(store: Store, recordings: Recordings, config: Arc<RecordingConfig>, live: LiveHub) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_millis(config.fetch_timeout_ms))
        .user_agent(concat!("calltrail/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HTTP client; recordings will not be fetched");
            return;
        }
    };
    loop {
        purge_deleted(&store, &recordings).await;
        // Looked up on a read connection: an idle fetcher costs the writer nothing.
        let next = store.read(recordings::next_due).await.ok().flatten();
        let now = now_ms();
        let due = match next {
            Some(at) if at <= now => store
                .write(move |conn, _| recordings::claim_due(conn, now, PARALLEL as u32, LEASE_MS))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "cannot claim recording fetches");
                    Vec::new()
                }),
            _ => Vec::new(),
        };
        if due.is_empty() {
            let wait = next
                .map(|at| Duration::from_millis(u64::try_from(at - now).unwrap_or(0)))
                .unwrap_or(IDLE)
                .clamp(Duration::from_millis(50), IDLE);
            let _ = tokio::time::timeout(wait, recordings.wake.notified()).await;
            continue;
        }
        futures_util::stream::iter(due)
            .for_each_concurrent(PARALLEL, |d| fetch_one(&store, &recordings, &config, &live, &client, d))
            .await;
    }
}

async fn fetch_one(
    store: &Store,
    recordings: &Recordings,
    config: &RecordingConfig,
    live: &LiveHub,
    client: &reqwest::Client,
    due: Due,
) {
    let attempt = due.attempts + 1;
    let outcome = download(recordings, client, &due).await;
    let (account, external_id, url) = (due.account, due.external_id.clone(), due.url.clone());
    let now = now_ms();
    let written = match outcome {
        Ok(file) => {
            let key = file.object_key.clone();
            let attached = store
                .write(move |conn, _| {
                    recordings::attach(conn, account, &external_id, &file, Some(&url), "calltrail", now)
                })
                .await;
            match attached {
                Ok(Some(call)) => {
                    live.publish(account, vec![call]);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => {
                    // Not recorded: the file must not stay behind; the lease brings the fetch back.
                    let _ = recordings.storage.delete(&key).await;
                    Err(e)
                }
            }
        }
        Err(failure) => {
            let retry_at = (failure.retry && attempt < i64::from(config.fetch_attempts)).then(|| {
                let factor = 1i64 << (attempt - 1).clamp(0, 20);
                now + config.retry_base_ms.saturating_mul(factor)
            });
            tracing::info!(url = %url, attempt, error = %failure.message, retry = retry_at.is_some(), "recording fetch failed");
            store
                .write(move |conn, _| {
                    recordings::fetch_failed(conn, account, &external_id, &url, &failure.message, retry_at, now)
                })
                .await
        }
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "recording fetch could not be recorded; it will be tried again");
    }
}

async fn download(
    recordings: &Recordings,
    client: &reqwest::Client,
    due: &Due,
) -> Result<crate::store::recordings::StoredFile, Failure> {
    let response = client
        .get(&due.url)
        .send()
        .await
        .map_err(|e| Failure::transient(describe(&e)))?;
    let status = response.status();
    if !status.is_success() {
        let message = format!("the server answered {status}");
        return Err(match status {
            StatusCode::NOT_FOUND | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Failure::transient(message)
            }
            s if s.is_server_error() => Failure::transient(message),
            _ => Failure::permanent(message),
        });
    }
    if let Some(length) = response.content_length() {
        if length > recordings.max_bytes {
            return Err(Failure::permanent(format!(
                "the recording is {length} bytes, more than the limit of {}",
                recordings.max_bytes
            )));
        }
    }
    let declared = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response
        .bytes_stream()
        .map_err(|e| StorageError::Source(describe(&e)))
        .boxed();
    recordings
        .store_body(due.account, body, declared.as_deref())
        .await
        .map_err(|e| match e {
            RecordingError::NotAudio(m) => Failure::permanent(m),
            RecordingError::TooLarge { .. } => Failure::permanent(e.to_string()),
            RecordingError::Source(m) | RecordingError::Storage(m) => Failure::transient(m),
        })
}

/// reqwest's errors with their causes, which say what actually happened (refused, timed out).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Deletes stored objects queued for deletion (replaced or expired recordings).
pub async fn purge_deleted(store: &Store, recordings: &Recordings) {
    loop {
        match store.read(recordings::deletions_queued).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the object deletion queue");
                return;
            }
        }
        let keys = match store.write(|conn, _| recordings::deletable(conn, 100)).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the object deletion queue");
                return;
            }
        };
        if keys.is_empty() {
            return;
        }
        for key in keys {
            match recordings.storage.delete(&key).await {
                Ok(()) => {
                    let k = key.clone();
                    if let Err(e) = store.write(move |conn, _| recordings::deleted(conn, &k)).await {
                        tracing::warn!(error = %e, "cannot clear a deleted object from the queue");
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "cannot delete a stored recording; will try again");
                    return;
                }
            }
        }
    }
}
