//! The command line (api.md): `serve`, `demo`, `user add`, `token create`, `token revoke`,
//! `import`, `export`; and `migrate`, `copy` for the database. Exit codes: 0 done, 2 bad arguments or input (the message names what), 1 anything
//! else.

mod export;
mod import;

use std::io::BufRead;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::ServeArgs;
use crate::domain::audit::AuditAction;
use crate::domain::{Role, TokenScope};
use crate::secrets;
use crate::store::audit::{self, Actor};
use crate::store::auth::{self, NewUser};
use crate::store::directory::{self, Dim};
use crate::store::{Database, Store, StoreError};
use crate::Server;

#[derive(Debug, Parser)]
#[command(name = "calltrail", version, about = "Call history for contact centers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Run the server on a demo contact center (filled on first start), with calls arriving live.
    Demo(DemoArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import call records from files: native JSON/NDJSON, FreeSWITCH CDRs, Asterisk CDRs and
    /// queue logs.
    Import(Box<import::ImportArgs>),
    /// Export the filtered calls to a CSV or XLSX file, as the page does.
    Export(Box<export::ExportArgs>),
    /// Bring a database's schema up to this version (the server also does at start).
    Migrate(MigrateArgs),
    /// Copy every row of one calltrail database into a new, empty one: an embedded installation
    /// to PostgreSQL (`--from sqlite://DATA --to postgres://…`), or back.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// `sqlite://DATA-FOLDER` (or `sqlite://…/calltrail.sqlite`) or `postgres://…`.
    #[arg(long)]
    pub from: String,
    /// The same forms; the database must hold no data yet.
    #[arg(long)]
    pub to: String,
}

/// `sqlite://PATH` or `postgres://…` as a database; the message names the flag.
fn database_url(flag: &str, url: &str) -> Result<Database, CliError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(CliError::Usage(format!(
                "{flag}: sqlite:// needs the data folder's path"
            )));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Database::from_args(std::path::Path::new("."), Some(url), None)
            .map_err(|e| CliError::Usage(e.replacen("--database-url", flag, 1)));
    }
    Err(CliError::Usage(format!(
        "{flag}: expected sqlite://DATA-FOLDER or postgres://…, got {url:?}"
    )))
}

async fn copy(args: CopyArgs) -> Result<(), CliError> {
    let from = database_url("--from", &args.from)?;
    let to = database_url("--to", &args.to)?;
    let started = std::time::Instant::now();
    let copied = tokio::task::spawn_blocking(move || {
        crate::store::copy::copy(&from, &to, |(table, rows)| {
            eprintln!("{table}: {rows} rows");
        })
    })
    .await
    .map_err(|e| CliError::Failed(e.to_string()))??;
    let rows: u64 = copied.iter().map(|(_, n)| n).sum();
    println!(
        "copied {rows} rows in {} tables in {:.1} s; every table's count checked",
        copied.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// How many calls the demo history holds.
    #[arg(long, default_value_t = 120_000)]
    pub calls: usize,
    /// Over how many days before today.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Do not keep adding calls.
    #[arg(long)]
    pub no_live: bool,
}

#[derive(Debug, Args)]
pub struct DataArgs {
    /// Data folder, as for `serve`.
    #[arg(long, env = "CALLTRAIL_DATA", default_value = "./calltrail-data")]
    pub data: PathBuf,
    /// `postgres://…`: a PostgreSQL database instead of the data folder's SQLite file, as for `serve`.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DataArgs {
    pub fn database(&self) -> Result<Database, CliError> {
        Database::from_args(&self.data, self.database_url.as_deref(), None).map_err(CliError::Usage)
    }

    /// What the messages call the database.
    pub fn describe(&self) -> String {
        match &self.database_url {
            Some(_) => "the PostgreSQL database".into(),
            None => format!("the data folder {}", self.data.display()),
        }
    }
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Add {
        #[arg(long)]
        login: String,
        /// owner, admin, manager, supervisor or operator.
        #[arg(long)]
        role: String,
        #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
        account: String,
        #[arg(long)]
        name: Option<String>,
        /// A group the user belongs to (supervisors: is connected to); repeatable.
        #[arg(long = "group")]
        groups: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new API token (shown only once) acting as the user.
    Create {
        #[arg(long)]
        login: String,
        #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
        account: String,
        #[arg(long)]
        name: Option<String>,
        /// full (default) or ingest.
        #[arg(long, default_value = "full")]
        scope: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke the user's tokens (all of them, or those with --name): they stop working at once,
    /// open live streams included.
    Revoke {
        #[arg(long)]
        login: String,
        #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
        account: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// A command's failure and its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Exit 2: the arguments or the input are wrong.
    Usage(String),
    /// Exit 1.
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(f) => CliError::Usage(f.to_string()),
            StoreError::Conflict(m) => CliError::Usage(m),
            other => CliError::Failed(other.to_string()),
        }
    }
}

async fn migrate(args: MigrateArgs) -> Result<(), CliError> {
    let url = match args.data.database()? {
        Database::Sqlite(dir) => {
            let store = Store::open(&dir)?;
            let version = crate::store::migrations::MIGRATIONS.last().map_or(0, |m| m.0);
            store.shutdown();
            println!(
                "{} is at schema version {version}",
                dir.join("calltrail.sqlite").display()
            );
            return Ok(());
        }
        Database::Postgres { url, .. } => url,
    };
    // The synchronous client runs its own small runtime: off this one's threads.
    let reached = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .map_err(|e| CliError::Usage(format!("--database-url: cannot connect: {e}")))?;
        // The server's own words (a db error's message), not just "db error".
        crate::store::migrations::run_postgres(&mut client).map_err(|e| {
            CliError::Failed(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string()),
            )
        })
    })
    .await
    .map_err(|e| CliError::Failed(e.to_string()))??;
    println!("the PostgreSQL database is at schema version {reached}");
    Ok(())
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve(args, None).await,
        Command::Demo(args) => serve(args.serve.clone(), Some(args)).await,
        Command::Export(args) => export::run(*args).await,
        Command::Import(args) => import::run(*args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Copy(args) => copy(args).await,
        Command::User(UserCommand::Add {
            login,
            role,
            account,
            name,
            groups,
            data,
        }) => {
            let role = Role::parse(&role).ok_or_else(|| {
                CliError::Usage(format!(
                    "--role: unknown role {role:?}; use owner, admin, manager, supervisor or operator"
                ))
            })?;
            let password = read_password()?;
            let hash = secrets::hash_password(&password).map_err(|e| CliError::Failed(e.to_string()))?;
            let name = name.unwrap_or_else(|| login.clone());
            let id = write_once(&data, move |conn, cache| {
                let account = auth::ensure_account(conn, &account)?;
                let user = auth::create_user(
                    conn,
                    &NewUser {
                        account_id: account.id,
                        login: &login,
                        name: &name,
                        role,
                        password_hash: Some(&hash),
                    },
                )?;
                for g in &groups {
                    let group = directory::ensure(conn, cache, Dim::Group, account.id, g, Some(g), None)?;
                    directory::add_to_group(conn, group, user, role == Role::Supervisor)?;
                }
                let detail = serde_json::json!({ "login": login, "role": role, "groups": groups });
                audit_command(conn, account.id, AuditAction::UserCreated, user, detail)?;
                Ok(user)
            })
            .await?;
            println!("created user {id}");
            Ok(())
        }
        Command::Token(TokenCommand::Create {
            login,
            account,
            name,
            scope,
            data,
        }) => {
            let scope = TokenScope::parse(&scope)
                .ok_or_else(|| CliError::Usage(format!("--scope: unknown scope {scope:?}; use full or ingest")))?;
            let token = secrets::new_token("ct_");
            let hash = secrets::token_hash(&token);
            let name = name.unwrap_or_else(|| format!("{} token", scope.code()));
            write_once(&data, move |conn, _| {
                let (account, user) = existing_user(conn, &account, &login)?;
                auth::create_token(conn, user, &name, scope, &hash)?;
                let detail = serde_json::json!({ "login": login, "name": name, "scope": scope });
                audit_command(conn, account.id, AuditAction::TokenCreated, user, detail)
            })
            .await?;
            println!("{token}");
            Ok(())
        }
        Command::Token(TokenCommand::Revoke {
            login,
            account,
            name,
            data,
        }) => {
            let revoked = write_once(&data, move |conn, _| {
                let (account, user) = existing_user(conn, &account, &login)?;
                let n = auth::revoke_tokens(conn, user, name.as_deref())?;
                let detail = serde_json::json!({ "login": login, "name": name, "revoked": n });
                audit_command(conn, account.id, AuditAction::TokenRevoked, user, detail)?;
                Ok(n)
            })
            .await?;
            println!("revoked {revoked} token(s)");
            Ok(())
        }
    }
}

/// Records what a command did to a user in the account's audit log.
fn audit_command(
    conn: &crate::store::db::Connection,
    account: crate::domain::AccountId,
    action: AuditAction,
    user: crate::domain::UserId,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    audit::record(
        conn,
        &Actor::command_line(account),
        action,
        Some(&user.0.to_string()),
        Some(detail),
    )
}

/// The account and user the arguments name; a wrong name is a usage error naming the flag.
fn existing_user(
    conn: &crate::store::db::Connection,
    account: &str,
    login: &str,
) -> Result<(auth::Account, crate::domain::UserId), StoreError> {
    let account = auth::account_by_name(conn, account)?.ok_or_else(|| {
        StoreError::Invalid(crate::domain::FieldError::new(
            "account",
            format!("no account {account:?}"),
        ))
    })?;
    let user = auth::user_by_login(conn, account.id, login)?.ok_or_else(|| {
        StoreError::Invalid(crate::domain::FieldError::new(
            "login",
            format!("no user {login:?} in this account"),
        ))
    })?;
    Ok((account, user))
}

/// Runs one write on the database (beside a running server, if any) and lets go of it.
async fn write_once<R, F>(data: &DataArgs, job: F) -> Result<R, CliError>
where
    R: Send + 'static,
    F: FnOnce(&crate::store::db::Connection, &mut crate::store::WriteCache) -> Result<R, StoreError> + Send + 'static,
{
    let store = open(data).await?;
    let result = store.write(job).await;
    store.shutdown();
    Ok(result?)
}

/// Opens the database the arguments name, off the async threads (PostgreSQL connects blocking).
pub(crate) async fn open(data: &DataArgs) -> Result<Store, CliError> {
    let database = data.database()?;
    let describe = data.describe();
    tokio::task::spawn_blocking(move || Store::connect(&database))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?
        .map_err(|e| CliError::Failed(format!("cannot open {describe}: {e}")))
}

fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Failed(format!("cannot read the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    secrets::check_password_rules("password (standard input, one line)", &password)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(password)
}

async fn serve(args: ServeArgs, demo: Option<DemoArgs>) -> Result<(), CliError> {
    let config = args.validate().map_err(CliError::Usage)?;
    let public_url = config.public_url.clone();
    let data = config.data.clone();
    let server = Server::bind(config)
        .await
        .map_err(|e| CliError::Failed(format!("cannot start: {e}")))?;
    if let Some(demo) = demo {
        let store = server.state.store.clone();
        match crate::demo::prepare(&store, &server.state.recordings, &data, demo.calls, demo.days).await? {
            Some(_) => {}
            None => tracing::info!("the demo data folder is already filled; reusing it"),
        }
        if let Ok(text) = std::fs::read_to_string(data.join("demo-logins.txt")) {
            println!("\n{text}");
        }
        if !demo.no_live {
            let account = store
                .read(|conn| auth::account_by_name(conn, auth::DEFAULT_ACCOUNT)?.ok_or(StoreError::NotFound))
                .await?
                .id;
            tokio::spawn(crate::demo::run_live(
                store,
                server.state.recordings.clone(),
                server.state.live.clone(),
                account,
            ));
        }
    }
    let bound = server
        .local_addr()
        .map_err(|e| CliError::Failed(format!("cannot start: {e}")))?;
    // The bound address, not the asked one: with port 0 the system picks the port.
    println!("calltrail listening on http://{bound}  (page: {public_url}/, API: {public_url}/api/v1/openapi.json)");
    server
        .run(shutdown_signal())
        .await
        .map_err(|e| CliError::Failed(e.to_string()))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
