//! `calltrail export`: the same file the page and the API give, written by the command line to
//! a file, from the data folder (beside a running server, if any).

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;

use super::{open, CliError, DataArgs};
use crate::domain::audit::AuditAction;
use crate::domain::{CallScope, Column, Credential, FieldError, Lang, Principal};
use crate::export::file::{write_file, FileSpec};
use crate::export::walk::{Walk, STRETCH};
use crate::export::{parse_delimiter, Format, Layout};
use crate::store::audit::{self, Actor};
use crate::store::{access, auth, people, preferences, StoreError};

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// csv or xlsx.
    #[arg(long)]
    pub format: String,
    /// The file to write.
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    #[arg(long, default_value = auth::DEFAULT_ACCOUNT)]
    pub account: String,
    /// Export what this user sees (their scope; their columns, language and zone as defaults).
    /// Without it: every call of the account.
    #[arg(long)]
    pub login: Option<String>,
    /// ru or en (default: the user's, then ru).
    #[arg(long)]
    pub lang: Option<String>,
    /// Comma-separated column ids (default: the user's, then every column).
    #[arg(long)]
    pub columns: Option<String>,
    /// CSV only: ; or , (default by language: ru ;, en ,).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// How people reach the server, for the links to recordings in the file.
    #[arg(long, env = "CALLTRAIL_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    #[command(flatten)]
    pub filters: FilterArgs,
}

/// The search filters of `GET /api/v1/calls`, as flags (`--result answered --result busy`).
#[derive(Debug, Args, Default)]
pub struct FilterArgs {
    /// today, yesterday, last_7_days, last_30_days, this_week, this_month, last_month.
    #[arg(long)]
    pub preset: Option<String>,
    /// RFC 3339 instant or YYYY-MM-DD (in --tz).
    #[arg(long)]
    pub from: Option<String>,
    /// Exclusive end, like --from.
    #[arg(long)]
    pub to: Option<String>,
    /// IANA time zone for dates, presets and the file's times.
    #[arg(long)]
    pub tz: Option<String>,
    #[arg(long)]
    pub number: Option<String>,
    #[arg(long = "talk-min")]
    pub talk_min: Option<String>,
    #[arg(long = "talk-max")]
    pub talk_max: Option<String>,
    #[arg(long)]
    pub direction: Vec<String>,
    #[arg(long)]
    pub kind: Vec<String>,
    #[arg(long)]
    pub group: Vec<String>,
    #[arg(long)]
    pub operator: Vec<String>,
    #[arg(long)]
    pub queue: Vec<String>,
    #[arg(long)]
    pub campaign: Vec<String>,
    #[arg(long)]
    pub scenario: Vec<String>,
    #[arg(long = "completion-code")]
    pub completion_code: Vec<String>,
    #[arg(long)]
    pub tag: Vec<String>,
    #[arg(long)]
    pub topic: Vec<String>,
    #[arg(long = "scenario-kind")]
    pub scenario_kind: Vec<String>,
    #[arg(long)]
    pub result: Vec<String>,
}

impl FilterArgs {
    /// The flags as the API's query pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![];
        let singles = [
            ("preset", &self.preset),
            ("from", &self.from),
            ("to", &self.to),
            ("tz", &self.tz),
            ("number", &self.number),
            ("talk_min", &self.talk_min),
            ("talk_max", &self.talk_max),
        ];
        for (key, value) in singles {
            if let Some(v) = value {
                pairs.push((key.to_string(), v.clone()));
            }
        }
        let lists = [
            ("direction", &self.direction),
            ("kind", &self.kind),
            ("group", &self.group),
            ("operator", &self.operator),
            ("queue", &self.queue),
            ("campaign", &self.campaign),
            ("scenario", &self.scenario),
            ("completion_code", &self.completion_code),
            ("tag", &self.tag),
            ("topic", &self.topic),
            ("scenario_kind", &self.scenario_kind),
            ("result", &self.result),
        ];
        for (key, values) in lists {
            pairs.extend(values.iter().map(|v| (key.to_string(), v.clone())));
        }
        pairs
    }
}

/// A flag's error, in the flag's own spelling (`talk_min` → `--talk-min`).
fn flag_error(f: FieldError) -> CliError {
    CliError::Usage(format!("--{}: {}", f.field.replace('_', "-"), f.message))
}

pub async fn run(args: ExportArgs) -> Result<(), CliError> {
    let format = Format::parse(&args.format)
        .ok_or_else(|| CliError::Usage(format!("--format: unknown format {:?}; use csv or xlsx", args.format)))?;
    let lang = match &args.lang {
        Some(l) => Some(
            Lang::parse(l).ok_or_else(|| CliError::Usage(format!("--lang: unknown language {l:?}; use ru or en")))?,
        ),
        None => None,
    };
    let delimiter = match args.delimiter.as_deref() {
        None => None,
        Some(d) => {
            Some(parse_delimiter(d).ok_or_else(|| CliError::Usage("--delimiter: the delimiter is ; or ,".into()))?)
        }
    };
    let store = open(&args.data).await?;
    let (account, login, columns_arg, pairs) = (
        args.account.clone(),
        args.login.clone(),
        args.columns.clone(),
        args.filters.pairs(),
    );
    let now = Utc::now();
    let prepared = store
        .read(move |conn| {
            let account = auth::account_by_name(conn, &account)?
                .ok_or_else(|| StoreError::Invalid(FieldError::new("account", format!("no account {account:?}"))))?;
            // Who the export is for: a user's scope and choices, or the whole account.
            let (scope, zone, chosen, role) = match &login {
                Some(login) => {
                    let user = auth::user_by_login(conn, account.id, login)?.ok_or_else(|| {
                        StoreError::Invalid(FieldError::new("login", format!("no user {login:?} in this account")))
                    })?;
                    let item = people::user(conn, account.id, user.0)?;
                    let principal = Principal {
                        account_id: account.id,
                        user_id: user,
                        login: item.login,
                        role: item.role,
                        credential: Credential::Job { id: 0 },
                    };
                    let chosen = preferences::get(conn, user)?;
                    (
                        access::scope_for(conn, &principal)?,
                        chosen.timezone.clone(),
                        Some(chosen),
                        item.role,
                    )
                }
                None => (
                    CallScope::whole_account(account.id),
                    None,
                    None,
                    crate::domain::Role::Owner,
                ),
            };
            let (req, tz) = access::parse_in(conn, &scope, zone, &pairs, now)?;
            let columns = match &columns_arg {
                Some(text) => Column::parse_choice(&text.split(',').collect::<Vec<_>>(), role, "columns")
                    .map_err(StoreError::Invalid)?,
                None => chosen
                    .as_ref()
                    .map_or_else(|| Column::all_for(role), |c| c.columns_for(role)),
            };
            Ok((account.id, scope, req, tz, columns, chosen.and_then(|c| c.lang)))
        })
        .await
        .map_err(|e| match e {
            StoreError::Invalid(f) => flag_error(f),
            other => CliError::from(other),
        })?;
    let (account, scope, req, tz, columns, chosen_lang) = prepared;
    let lang = lang.or(chosen_lang).unwrap_or_default();
    let layout = Layout {
        columns,
        lang,
        tz,
        base_url: args.public_url.trim_end_matches('/').to_string(),
    };
    let (_, about) = layout.describe(&req.filter, &req.fingerprint, format, now);
    let spec = FileSpec {
        format,
        delimiter: delimiter.unwrap_or(if lang == Lang::Ru { b';' } else { b',' }),
        sheet_rows: crate::export::xlsx::SHEET_ROWS,
        about,
        layout,
    };
    let mut walk = Walk::start(&store, scope, req.filter.clone(), &spec.layout, STRETCH).await?;
    let total = walk.total;
    let output = args.output.clone();
    let handle = tokio::runtime::Handle::current();
    let written = tokio::task::spawn_blocking(move || write_file(&handle, &mut walk, &spec, &output, |_| true))
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?
        .map_err(|e| CliError::Failed(format!("-o {}: {e}", args.output.display())))?
        .unwrap_or(0);
    let detail = serde_json::json!({
        "format": format.code(), "rows": written, "filters": req.fingerprint,
        "file": args.output.display().to_string(),
    });
    store
        .write(move |conn, _| {
            audit::record(
                conn,
                &Actor::command_line(account),
                AuditAction::Export,
                None,
                Some(detail),
            )
        })
        .await?;
    store.shutdown();
    eprintln!("exported {written} of {total} calls to {}", args.output.display());
    Ok(())
}
