//! Server configuration: flags, then `CALLTRAIL_*` environment variables, then defaults
//! (clap applies that order). Validated once at start-up and passed along in state.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

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

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
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
}

impl ServeArgs {
    /// Checks the arguments; the message names the flag at fault.
    pub fn validate(&self) -> Result<Config, String> {
        if let Some(url) = &self.database_url {
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                return Err(
                    "--database-url: PostgreSQL is not supported by this build yet; omit it to use SQLite".into(),
                );
            }
            return Err(format!("--database-url: expected a postgres:// URL, got {url:?}"));
        }
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes: must be at least 1024".into());
        }
        let public_url = match &self.public_url {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_string(),
            Some(u) => return Err(format!("--public-url: expected an http(s) URL, got {u:?}")),
            None => format!("http://{}", self.listen),
        };
        Ok(Config {
            listen: self.listen,
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
        })
    }
}
