//! Server configuration: flags, then `CALLTRAIL_*` environment variables, then defaults
//! (clap applies that order). Validated once at start-up and passed along in state.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::recording::storage::{S3Config, StorageConfig};

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CALLTRAIL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Data folder: the SQLite database, recordings and exports.
    #[arg(long, env = "CALLTRAIL_DATA", default_value = "./calltrail-data")]
    pub data: PathBuf,
    /// `postgres://…` selects PostgreSQL; default: SQLite in the data folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// `postgres://…` of a read replica of `--database-url`, for searches and exports.
    #[arg(long, env = "CALLTRAIL_READ_DATABASE_URL")]
    pub read_database_url: Option<String>,
    /// How others reach this server, for the links it hands out.
    #[arg(long, env = "CALLTRAIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest request body accepted, in bytes (ingest batches).
    #[arg(long, env = "CALLTRAIL_MAX_BODY_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// A browser session ends after this many minutes without a request.
    #[arg(long, env = "CALLTRAIL_SESSION_IDLE_MINUTES", default_value_t = 12 * 60)]
    pub session_idle_minutes: u32,
    /// A browser session ends this many hours after sign-in, however active.
    #[arg(long, env = "CALLTRAIL_SESSION_MAX_HOURS", default_value_t = 7 * 24)]
    pub session_max_hours: u32,
    /// Failed sign-ins for one login, within the throttle window, before it is refused for a while.
    #[arg(long, env = "CALLTRAIL_LOGIN_FAILURES_PER_LOGIN", default_value_t = 5)]
    pub login_failures_per_login: u32,
    /// Failed sign-ins from one address, within the throttle window, before it is refused for a while.
    #[arg(long, env = "CALLTRAIL_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 30)]
    pub login_failures_per_address: u32,
    /// How long a finished background export's file is kept for download before it is deleted.
    #[arg(long, env = "CALLTRAIL_EXPORT_KEEP_HOURS", default_value_t = 24)]
    pub export_keep_hours: u32,
    /// Where recordings are stored: omit for the data folder, or `s3://bucket/prefix` for
    /// S3-compatible object storage (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "CALLTRAIL_STORAGE_URL")]
    pub storage_url: Option<String>,
    /// The S3-compatible server, e.g. `http://127.0.0.1:9000` (default: AWS).
    #[arg(long, env = "CALLTRAIL_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    #[arg(long, env = "CALLTRAIL_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Largest recording accepted (upload or fetch), in megabytes.
    #[arg(long, env = "CALLTRAIL_RECORDING_MAX_MB", default_value_t = 512)]
    pub recording_max_mb: u64,
    /// Attempts to fetch a recording from its URL before giving up.
    #[arg(long, env = "CALLTRAIL_RECORDING_FETCH_ATTEMPTS", default_value_t = 6)]
    pub recording_fetch_attempts: u32,
    /// Delay before the second fetch attempt, in seconds; it doubles with each attempt after.
    #[arg(long, env = "CALLTRAIL_RECORDING_RETRY_SECONDS", default_value_t = 60)]
    pub recording_retry_seconds: u32,
    /// How often expired calls and recordings are deleted (the accounts' retention settings), in minutes.
    #[arg(long, env = "CALLTRAIL_RETENTION_EVERY_MINUTES", default_value_t = 60)]
    pub retention_every_minutes: u32,
    /// The key that seals secrets kept in the database (the QM API key): 64 hex digits or base64
    /// of 32 bytes. Default: `secret.key` in the data folder, created on first start.
    #[arg(long, env = "CALLTRAIL_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Calls sent to the QM system in one batch, before a pause.
    #[arg(long, env = "CALLTRAIL_QM_BATCH_SIZE", default_value_t = 100)]
    pub qm_batch_size: u32,
    /// Requests to the QM system per second, evenly spaced, within a batch.
    #[arg(long, env = "CALLTRAIL_QM_REQUESTS_PER_SECOND", default_value_t = 5)]
    pub qm_requests_per_second: u32,
    /// The pause between two batches, in seconds.
    #[arg(long, env = "CALLTRAIL_QM_BATCH_PAUSE_SECONDS", default_value_t = 10)]
    pub qm_batch_pause_seconds: u32,
    /// Attempts to send one call before it is reported failed (5xx, 429, timeouts are retried).
    #[arg(long, env = "CALLTRAIL_QM_ATTEMPTS", default_value_t = 5)]
    pub qm_attempts: u32,
    /// Delay before the second attempt, in seconds; it doubles with each attempt after.
    #[arg(long, env = "CALLTRAIL_QM_RETRY_SECONDS", default_value_t = 30)]
    pub qm_retry_seconds: u32,
    /// A request the QM system has not answered in this many seconds failed (and is retried).
    #[arg(long, env = "CALLTRAIL_QM_TIMEOUT_SECONDS", default_value_t = 30)]
    pub qm_timeout_seconds: u32,
    /// How long the recording links handed to the QM system work, in hours.
    #[arg(long, env = "CALLTRAIL_QM_LINK_HOURS", default_value_t = 72)]
    pub qm_link_hours: u32,
    /// The client address is the last one in X-Forwarded-For (set only behind your own proxy).
    #[arg(long, env = "CALLTRAIL_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
}

/// Sign-in and session rules.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_idle_ms: i64,
    pub session_max_ms: i64,
    pub failures_per_login: u32,
    pub failures_per_address: u32,
    /// Failures older than this are forgotten.
    pub throttle_window_ms: i64,
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_ms: 12 * 3_600_000,
            session_max_ms: 7 * 24 * 3_600_000,
            failures_per_login: 5,
            failures_per_address: 30,
            throttle_window_ms: 15 * 60_000,
            trust_forwarded_for: false,
        }
    }
}

/// Recordings: where they are stored and how they are fetched.
#[derive(Debug, Clone)]
pub struct RecordingConfig {
    pub storage: StorageConfig,
    pub max_bytes: u64,
    pub fetch_attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub retry_base_ms: i64,
    /// A fetch whose source sends nothing for this long fails (and is retried).
    pub fetch_timeout_ms: u64,
}

impl RecordingConfig {
    /// Recordings in `data/recordings`, with the defaults of the command line.
    pub fn on_disk(data: &std::path::Path) -> RecordingConfig {
        RecordingConfig {
            storage: StorageConfig::Disk(data.join("recordings")),
            max_bytes: 512 * 1024 * 1024,
            fetch_attempts: 6,
            retry_base_ms: 60_000,
            fetch_timeout_ms: 60_000,
        }
    }
}

/// Delivery to the QM system.
#[derive(Debug, Clone)]
pub struct QmConfig {
    pub batch_size: u32,
    /// Time between two requests within a batch.
    pub request_interval_ms: u64,
    pub batch_pause_ms: u64,
    pub attempts: u32,
    /// Delay before the second attempt; doubles after each.
    pub retry_base_ms: i64,
    pub timeout_ms: u64,
    pub link_ttl_ms: i64,
}

impl Default for QmConfig {
    fn default() -> Self {
        QmConfig {
            batch_size: 100,
            request_interval_ms: 200,
            batch_pause_ms: 10_000,
            attempts: 5,
            retry_base_ms: 30_000,
            timeout_ms: 30_000,
            link_ttl_ms: 72 * 3_600_000,
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: crate::store::Database,
    /// The data folder: the SQLite database (when that is the database), the secret key, export
    /// files and recordings on disk.
    pub data: PathBuf,
    pub public_url: String,
    pub max_body_bytes: usize,
    pub auth: AuthConfig,
    /// Rows per XLSX sheet before an export continues on the next (Excel's limit by default;
    /// lowered only by tests).
    pub xlsx_sheet_rows: u32,
    /// How long a background export's file is kept, in milliseconds.
    pub export_keep_ms: i64,
    /// Calls per read of an export (lowered only by tests, to watch a job in the middle).
    pub export_stretch: u32,
    pub recordings: RecordingConfig,
    /// How often retention runs, in milliseconds.
    pub retention_every_ms: u64,
    /// None: the key file in the data folder.
    pub secret_key: Option<crate::secrets::SealingKey>,
    pub qm: QmConfig,
}

impl Config {
    /// The defaults of the command line for a server on `listen` with its data in `data` (for
    /// tests and benchmarks, which then change what they need).
    pub fn defaults(listen: SocketAddr, data: PathBuf) -> Config {
        Config {
            listen,
            database: crate::store::Database::Sqlite(data.clone()),
            public_url: format!("http://{listen}"),
            max_body_bytes: 64 * 1024 * 1024,
            auth: AuthConfig::default(),
            xlsx_sheet_rows: crate::export::xlsx::SHEET_ROWS,
            export_keep_ms: 24 * 3_600_000,
            export_stretch: crate::export::walk::STRETCH,
            recordings: RecordingConfig::on_disk(&data),
            retention_every_ms: 3_600_000,
            secret_key: None,
            qm: QmConfig::default(),
            data,
        }
    }
}

impl ServeArgs {
    /// Checks the arguments; the message names the flag at fault.
    pub fn validate(&self) -> Result<Config, String> {
        let database = crate::store::Database::from_args(
            &self.data,
            self.database_url.as_deref(),
            self.read_database_url.as_deref(),
        )?;
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes: must be at least 1024".into());
        }
        let storage = match &self.storage_url {
            None => StorageConfig::Disk(self.data.join("recordings")),
            Some(url) => {
                let rest = url.strip_prefix("s3://").ok_or_else(|| {
                    format!("--storage-url: expected s3://bucket/prefix (or omit it for the data folder), got {url:?}")
                })?;
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err("--storage-url: the bucket name is missing (s3://bucket/prefix)".into());
                }
                if let Some(e) = &self.s3_endpoint {
                    if !(e.starts_with("http://") || e.starts_with("https://")) {
                        return Err(format!("--s3-endpoint: expected an http(s) URL, got {e:?}"));
                    }
                }
                StorageConfig::S3(S3Config {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                    endpoint: self.s3_endpoint.clone(),
                    region: self.s3_region.clone(),
                    access_key_id: self.s3_access_key_id.clone(),
                    secret_access_key: self.s3_secret_access_key.clone(),
                })
            }
        };
        if self.recording_max_mb == 0 {
            return Err("--recording-max-mb: must be at least 1".into());
        }
        let secret_key = match &self.secret_key {
            None => None,
            Some(text) => Some(crate::secrets::SealingKey::parse(text).map_err(|e| format!("--secret-key: {e}"))?),
        };
        if self.qm_batch_size == 0 || self.qm_requests_per_second == 0 {
            return Err("--qm-batch-size and --qm-requests-per-second: must be at least 1".into());
        }
        let public_url = match &self.public_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_string(),
            Some(u) => return Err(format!("--public-url: expected an http(s) URL, got {u:?}")),
            None => format!("http://{}", self.listen),
        };
        Ok(Config {
            listen: self.listen,
            database,
            data: self.data.clone(),
            public_url,
            max_body_bytes: self.max_body_bytes,
            auth: AuthConfig {
                session_idle_ms: i64::from(self.session_idle_minutes.max(1)) * 60_000,
                session_max_ms: i64::from(self.session_max_hours.max(1)) * 3_600_000,
                failures_per_login: self.login_failures_per_login.max(1),
                failures_per_address: self.login_failures_per_address.max(1),
                trust_forwarded_for: self.trust_forwarded_for,
                ..AuthConfig::default()
            },
            xlsx_sheet_rows: crate::export::xlsx::SHEET_ROWS,
            export_keep_ms: i64::from(self.export_keep_hours.max(1)) * 3_600_000,
            export_stretch: crate::export::walk::STRETCH,
            recordings: RecordingConfig {
                storage,
                max_bytes: self.recording_max_mb.saturating_mul(1024 * 1024),
                fetch_attempts: self.recording_fetch_attempts.max(1),
                retry_base_ms: i64::from(self.recording_retry_seconds.max(1)) * 1000,
                fetch_timeout_ms: 60_000,
            },
            retention_every_ms: u64::from(self.retention_every_minutes.max(1)) * 60_000,
            secret_key,
            qm: QmConfig {
                batch_size: self.qm_batch_size,
                request_interval_ms: 1000 / u64::from(self.qm_requests_per_second),
                batch_pause_ms: u64::from(self.qm_batch_pause_seconds) * 1000,
                attempts: self.qm_attempts.max(1),
                retry_base_ms: i64::from(self.qm_retry_seconds.max(1)) * 1000,
                timeout_ms: u64::from(self.qm_timeout_seconds.max(1)) * 1000,
                link_ttl_ms: i64::from(self.qm_link_hours.max(1)) * 3_600_000,
            },
        })
    }
}
