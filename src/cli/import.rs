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
    /// asterisk-queue-log.
    #[arg(long)]
    pub format: String,
    /// The account the calls belong to (created if new).
    #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
    pub account: String,
    /// CSV formats: the columns in order, comma-separated (a `cdr_custom` mapping, a
    /// `mod_cdr_csv` template), when the file has no header and is not the default layout.
    #[arg(long, value_delimiter = ',')]
    pub columns: Option<Vec<String>>,
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
    let mut inputs = Vec::new();
    for file in &args.files {
        let text = std::fs::read(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        inputs.push((file.display().to_string(), text));
    }
    let store = open(&args.data).await?;
    let result = import(&store, &args, format, inputs).await;
    store.shutdown();
    let rejected = result?;
    if rejected > 0 {
        return Err(CliError::Usage(format!(
            "{rejected} record(s) rejected (listed above); the rest was imported"
        )));
    }
    Ok(())
}

async fn import(
    store: &crate::store::Store,
    args: &ImportArgs,
    format: Format,
    inputs: Vec<(String, Vec<u8>)>,
) -> Result<u32, CliError> {
    let name = args.account.clone();
    let (account, settings) = store
        .write(move |conn, _| {
            let account = auth::ensure_account(conn, &name)?;
            Ok((account.clone(), pbx::settings(conn, account.id)?))
        })
        .await?;
    let zone = settings.zone(&account.timezone);
    let mut total = Report::default();
    for (file, text) in inputs {
        let parsed = format.read(&text, args.columns.as_deref(), &settings, zone);
        let source = format!("import {} {file}", args.format);
        let report = apply(store, account.id, format.health_source(), &source, parsed).await?;
        record_problems(store, account.id, format.health_source(), &report).await?;
        for p in &report.problems {
            eprintln!("{file}:{}: {}: {}", p.line, p.kind, p.reason);
        }
        println!(
            "{file}: created {}, updated {}, unchanged {}, pending {}, skipped {}, rejected {}",
            report.created, report.updated, report.unchanged, report.pending, report.skipped, report.rejected
        );
        total.rejected += report.rejected;
    }
    Ok(total.rejected)
}
