//! `calltrail import --format F FILE…`: call records from files, the way the HTTP ingest takes
//! them. Every file is read to the end: what cannot be read is printed as `FILE:LINE: reason`
//! and the rest is stored. Exit 2 when anything was rejected.

use std::path::PathBuf;

use clap::Args;

use super::{open, CliError, DataArgs};
use crate::ingest::import::{apply, record_problems, Format, Report};
use crate::store::auth;
use crate::store::pbx;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// native-json, native-ndjson, freeswitch-json, freeswitch-xml, freeswitch-csv, asterisk-csv,
    /// asterisk-cel, asterisk-queue-log.
    #[arg(long)]
    pub format: String,
    /// The account the calls belong to (created if new).
    #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
    pub account: String,
    /// CSV formats: the columns in order, comma-separated (a `cdr_custom` mapping, a
    /// `mod_cdr_csv` template), when the file has no header and is not the default layout.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
    /// Keep reading the file as it grows (a live log; one file), surviving rotation and
    /// remembering the position across restarts, until stopped (Ctrl-C, SIGTERM).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: how often the file is looked at, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub every_ms: u64,
    /// Bytes read at a time from a log file (tests use small steps to cross their borders).
    #[arg(long, hide = true, default_value_t = crate::ingest::follow::CHUNK)]
    pub chunk_bytes: usize,
    /// The files; each is one document for freeswitch-json and freeswitch-xml.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
}

pub async fn run(args: ImportArgs) -> Result<(), CliError> {
    let format = Format::parse(&args.format).ok_or_else(|| {
        CliError::Usage(format!(
            "--format: unknown format {:?}; use one of {}",
            args.format,
            Format::names()
        ))
    })?;
    if args.columns.is_some() && !format.has_columns() {
        return Err(CliError::Usage(format!(
            "--columns: {} has no column layout to give",
            args.format
        )));
    }
    if args.follow {
        return follow(args, format).await;
    }
    for file in &args.files {
        std::fs::metadata(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    }
    let store = open(&args.data).await?;
    let result = import(&store, &args, format).await;
    store.shutdown();
    let rejected = result?;
    if rejected > 0 {
        return Err(CliError::Usage(format!(
            "{rejected} record(s) rejected (listed above); the rest was imported"
        )));
    }
    Ok(())
}

/// Prints what one import or follow step did with one file.
fn print(file: &str, report: &Report) {
    for p in &report.problems {
        eprintln!("{file}:{}: {}: {}", p.line, p.kind, p.reason);
    }
    println!(
        "{file}: created {}, updated {}, unchanged {}, pending {}, skipped {}, rejected {}",
        report.created, report.updated, report.unchanged, report.pending, report.skipped, report.rejected
    );
}

async fn follow(args: ImportArgs, format: Format) -> Result<(), CliError> {
    let [path] = args.files.as_slice() else {
        return Err(CliError::Usage("--follow: give one file".into()));
    };
    let store = open(&args.data).await?;
    let name = args.account.clone();
    let setup = store
        .write(move |conn, _| {
            let account = auth::ensure_account(conn, &name)?;
            Ok((account.clone(), pbx::settings(conn, account.id)?))
        })
        .await;
    let (account, settings) = match setup {
        Ok(s) => s,
        Err(e) => {
            store.shutdown();
            return Err(e.into());
        }
    };
    let file = path.display().to_string();
    let f = crate::ingest::follow::Follow {
        store: &store,
        account: account.id,
        format,
        columns: args.columns.as_deref(),
        settings: &settings,
        zone: settings.zone(&account.timezone),
        path,
        every: std::time::Duration::from_millis(args.every_ms),
        chunk: args.chunk_bytes,
    };
    eprintln!("following {file} (stop with Ctrl-C)");
    let done = crate::ingest::follow::follow(f, |step| print(&file, step), super::shutdown_signal()).await;
    store.shutdown();
    done.map_err(|e| match e {
        crate::ingest::follow::FollowError::Usage(m) => CliError::Usage(m),
        other => CliError::Failed(other.to_string()),
    })
}

async fn import(store: &crate::store::Store, args: &ImportArgs, format: Format) -> Result<u32, CliError> {
    let name = args.account.clone();
    let (account, settings) = store
        .write(move |conn, _| {
            let account = auth::ensure_account(conn, &name)?;
            Ok((account.clone(), pbx::settings(conn, account.id)?))
        })
        .await?;
    let zone = settings.zone(&account.timezone);
    let mut rejected = 0;
    for path in &args.files {
        let file = path.display().to_string();
        let report = if format.is_line_based() {
            // Logs can be large: read a step at a time, in bounded memory.
            let f = crate::ingest::follow::Follow {
                store,
                account: account.id,
                format,
                columns: args.columns.as_deref(),
                settings: &settings,
                zone,
                path,
                every: std::time::Duration::ZERO,
                chunk: args.chunk_bytes,
            };
            crate::ingest::follow::import_file(f).await.map_err(|e| match e {
                crate::ingest::follow::FollowError::Usage(m) => CliError::Usage(m),
                other => CliError::Failed(other.to_string()),
            })?
        } else {
            let text = std::fs::read(path).map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
            let parsed = format.read(&text, args.columns.as_deref(), &settings, zone);
            let source = format!("import {} {file}", args.format);
            let report = apply(store, account.id, format.health_source(), &source, parsed).await?;
            record_problems(store, account.id, format.health_source(), &report).await?;
            report
        };
        print(&file, &report);
        rejected += report.rejected;
    }
    Ok(rejected)
}
