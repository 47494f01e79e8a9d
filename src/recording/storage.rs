//! Where recording files live: the data folder (default) or S3-compatible object storage. One
//! type with the same four operations for both, so the rest of calltrail never asks which.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// How storage is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// Files under this folder.
    Disk(PathBuf),
    /// An S3-compatible bucket.
    S3(S3Config),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Keys are written under this prefix (may be empty).
    pub prefix: String,
    /// `http(s)://host:port` of an S3-compatible server; AWS when absent.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is not in storage")]
    NotFound,
    /// The body being stored failed (the sender went away, the source broke off).
    #[error("reading the file failed: {0}")]
    Source(String),
    #[error("storage: {0}")]
    Backend(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => StorageError::NotFound,
            other => StorageError::Backend(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            _ => StorageError::Backend(e.to_string()),
        }
    }
}

/// What `put` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub bytes: u64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
}

/// A body to store, chunk by chunk.
pub type ByteStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// The recording store; cheap to clone.
#[derive(Clone)]
pub enum Storage {
    Disk(PathBuf),
    Object {
        store: Arc<dyn ObjectStore>,
        prefix: String,
    },
}

impl Storage {
    pub fn open(config: &StorageConfig) -> Result<Storage, StorageError> {
        match config {
            StorageConfig::Disk(root) => {
                std::fs::create_dir_all(root.join("tmp"))?;
                Ok(Storage::Disk(root.clone()))
            }
            StorageConfig::S3(s3) => {
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if let Some(endpoint) = &s3.endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"));
                }
                if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
                    builder = builder.with_access_key_id(id).with_secret_access_key(secret);
                }
                let store = builder.build()?;
                Ok(Storage::Object {
                    store: Arc::new(store),
                    prefix: s3.prefix.trim_matches('/').to_string(),
                })
            }
        }
    }

    fn object_path(prefix: &str, key: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{prefix}/{key}"))
        }
    }

    /// Stores `body` under `key`, never holding it whole in memory; at most `limit` bytes. The
    /// object appears only once complete (and, on disk, synced), so a failed or too large body
    /// leaves nothing behind.
    pub async fn put(&self, key: &str, body: ByteStream, limit: u64) -> Result<Written, StorageError> {
        match self {
            Storage::Disk(root) => {
                let tmp = root.join("tmp").join(format!("{}.part", random_name()));
                let result: Result<Written, StorageError> = async {
                    let mut file = tokio::fs::File::create(&tmp).await?;
                    let written = copy_limited(body, &mut file, limit).await?;
                    file.sync_all().await?;
                    let path = root.join(key);
                    let parent = path.parent().unwrap_or(root).to_path_buf();
                    tokio::fs::create_dir_all(&parent).await?;
                    tokio::fs::rename(&tmp, &path).await?;
                    // The rename is durable only once the folder that holds it is synced.
                    tokio::fs::File::open(&parent).await?.sync_all().await?;
                    Ok(written)
                }
                .await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&tmp).await;
                }
                result
            }
            Storage::Object { store, prefix } => {
                let mut writer = BufWriter::new(store.clone(), Self::object_path(prefix, key));
                match copy_limited(body, &mut writer, limit).await {
                    Ok(written) => {
                        writer.shutdown().await?;
                        Ok(written)
                    }
                    Err(e) => {
                        let _ = writer.abort().await;
                        Err(e)
                    }
                }
            }
        }
    }

    /// The bytes of `range` of the object (all of it when None), as a stream.
    pub async fn get(&self, key: &str, range: Option<Range<u64>>) -> Result<ByteStream, StorageError> {
        match self {
            Storage::Disk(root) => {
                let mut file = tokio::fs::File::open(root.join(key)).await?;
                let reader = match range {
                    Some(r) => {
                        file.seek(std::io::SeekFrom::Start(r.start)).await?;
                        file.take(r.end - r.start)
                    }
                    None => file.take(u64::MAX),
                };
                Ok(tokio_util::io::ReaderStream::with_capacity(reader, 64 * 1024)
                    .map_err(StorageError::from)
                    .boxed())
            }
            Storage::Object { store, prefix } => {
                let options = GetOptions {
                    range: range.map(GetRange::Bounded),
                    ..Default::default()
                };
                let got = store.get_opts(&Self::object_path(prefix, key), options).await?;
                Ok(got.into_stream().map_err(StorageError::from).boxed())
            }
        }
    }

    /// Deletes the object; one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let result = match self {
            Storage::Disk(root) => tokio::fs::remove_file(root.join(key)).await.map_err(StorageError::from),
            Storage::Object { store, prefix } => store
                .delete(&Self::object_path(prefix, key))
                .await
                .map_err(StorageError::from),
        };
        match result {
            Err(StorageError::NotFound) => Ok(()),
            other => other,
        }
    }

    /// Whether the object exists (for tests and checks).
    pub async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let result = match self {
            Storage::Disk(root) => tokio::fs::metadata(root.join(key))
                .await
                .map(|_| ())
                .map_err(StorageError::from),
            Storage::Object { store, prefix } => store
                .head(&Self::object_path(prefix, key))
                .await
                .map(|_| ())
                .map_err(StorageError::from),
        };
        match result {
            Ok(()) => Ok(true),
            Err(StorageError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Copies `body` into `sink`, at most `limit` bytes, hashing as it goes.
async fn copy_limited(
    mut body: ByteStream,
    sink: &mut (impl tokio::io::AsyncWrite + Unpin),
    limit: u64,
) -> Result<Written, StorageError> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        if bytes > limit {
            return Err(StorageError::TooLarge { limit });
        }
        hasher.update(&chunk);
        sink.write_all(&chunk).await?;
    }
    Ok(Written {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

/// 128 random bits as hex: object names nobody can guess or collide with.
pub fn random_name() -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut raw);
    hex(&raw)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
