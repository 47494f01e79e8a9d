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
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub public_url: String,
    pub max_body_bytes: usize,
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
        })
    }
}
