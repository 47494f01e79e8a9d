//! `GET /api/v1/calls/export`: the filtered calls as a CSV or XLSX file, streamed as it is
//! written. What the viewer may see decides what is written, exactly as for a search.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::extract::{ClientAddr, QueryPairs};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{CallScope, Column, Lang, Principal, SearchRequest};
use crate::error::AppError;
use crate::export::csv::CsvWriter;
use crate::export::file::{write_file, FileSpec};
use crate::export::walk::Walk;
use crate::export::{parse_delimiter, Format, Layout};
use crate::store::audit::{self, Actor};
use crate::store::preferences;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/calls/export", get(export_calls))
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// The export's own parameters, split from the search filters.
pub(super) struct Options {
    pub format: Format,
    pub lang: Option<Lang>,
    pub columns: Option<String>,
    pub delimiter: Option<u8>,
}

fn split(pairs: Vec<(String, String)>) -> Result<(Options, Vec<(String, String)>), AppError> {
    let (mut format, mut lang, mut columns, mut delimiter) = (None, None, None, None);
    let mut filters = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "format" => {
                format = Some(
                    Format::parse(&v)
                        .ok_or_else(|| AppError::invalid("format", format!("unknown format {v:?}; use csv or xlsx")))?,
                )
            }
            "lang" => {
                lang = Some(
                    Lang::parse(&v)
                        .ok_or_else(|| AppError::invalid("lang", format!("unknown language {v:?}; use ru or en")))?,
                )
            }
            "columns" => columns = Some(v),
            "delimiter" => {
                delimiter =
                    Some(parse_delimiter(&v).ok_or_else(|| AppError::invalid("delimiter", "the delimiter is ; or ,"))?)
            }
            "limit" | "cursor" => {
                return Err(AppError::invalid(
                    k,
                    "an export has every matching call; it takes no paging parameters",
                ))
            }
            _ => filters.push((k, v)),
        }
    }
    let format = format.ok_or_else(|| AppError::invalid("format", "format is required: csv or xlsx"))?;
    Ok((
        Options {
            format,
            lang,
            columns,
            delimiter,
        },
        filters,
    ))
}

/// An export as asked, checked: the file's options, how it reads, and the search behind it.
pub(super) struct Asked {
    pub options: Options,
    pub layout: Layout,
    pub delimiter: u8,
    pub scope: CallScope,
    pub req: SearchRequest,
    /// The search parameters alone (for a job to run later).
    pub filters: Vec<(String, String)>,
}

/// Checks an export request (the export's options and the search filters, as query pairs) as
/// the principal asks it: their scope, their preferred language and columns as defaults.
pub(super) async fn ask(
    state: &AppState,
    principal: &Principal,
    pairs: Vec<(String, String)>,
) -> Result<Asked, AppError> {
    let (options, filters) = split(pairs)?;
    let (scope, req, tz) = super::calls::prepare(&state.store, principal, filters.clone()).await?;
    let user = principal.user_id;
    let chosen = state.store.read(move |conn| preferences::get(conn, user)).await?;
    let lang = options.lang.or(chosen.lang).unwrap_or_default();
    let columns = match &options.columns {
        Some(text) => Column::parse_choice(&text.split(',').collect::<Vec<_>>(), principal.role, "columns")?,
        None => chosen.columns_for(principal.role),
    };
    let delimiter = options.delimiter.unwrap_or(match lang {
        Lang::Ru => b';',
        Lang::En => b',',
    });
    let layout = Layout {
        columns,
        lang,
        tz,
        base_url: state.config.public_url.clone(),
    };
    Ok(Asked {
        options,
        layout,
        delimiter,
        scope,
        req,
        filters,
    })
}

/// Streams the calls matching the filters as CSV or XLSX, in the viewer's columns, language and
/// time zone. Every export is written to the audit log.
#[utoipa::path(
    get, path = "/api/v1/calls/export", tag = "calls",
    params(
        ("format" = String, Query, description = "csv or xlsx"),
        ("lang" = Option<Lang>, Query, description = "header and label language (default: the user's, then ru)"),
        ("columns" = Option<String>, Query, description = "comma-separated column ids (default: the user's visible columns)"),
        ("delimiter" = Option<String>, Query, description = "CSV only: ; (default for ru) or , (default for en)"),
        ("filters" = Option<String>, Query, description = "the same filters as GET /api/v1/calls (and tz)"),
    ),
    responses((status = 200, description = "the file", content_type = "text/csv"),
              (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)),
    security(("bearer" = []))
)]
pub async fn export_calls(
    principal: Principal,
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, AppError> {
    let Asked {
        options,
        layout,
        delimiter,
        scope,
        req,
        ..
    } = ask(&state, &principal, pairs).await?;
    let filter = req.filter.clone();
    let walk = Walk::start(
        &state.store,
        scope,
        filter.clone(),
        &layout,
        state.config.export_stretch,
    )
    .await?;
    let total = walk.total;

    let actor = Actor::of(&principal, address);
    let detail = serde_json::json!({
        "format": options.format.code(),
        "rows": total,
        "filters": req.fingerprint,
        "columns": layout.columns.iter().map(|c| c.code()).collect::<Vec<_>>(),
    });
    state
        .store
        .write(move |conn, _| audit::record(conn, &actor, AuditAction::Export, None, Some(detail)))
        .await?;

    let (name, about) = layout.describe(&filter, &req.fingerprint, options.format, Utc::now());
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    match options.format {
        Format::Csv => {
            let writer = CsvWriter::new(&layout, delimiter);
            tokio::spawn(stream_csv(walk, layout, writer, tx));
        }
        Format::Xlsx => {
            let spec = FileSpec {
                format: Format::Xlsx,
                delimiter,
                sheet_rows: state.config.xlsx_sheet_rows,
                about,
                layout,
            };
            tokio::spawn(stream_xlsx(walk, spec, state.config.data.join("exports"), tx));
        }
    }
    let disposition = format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}",);
    let mut response = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(options.format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn failed(e: impl std::fmt::Display) -> std::io::Error {
    tracing::warn!(error = %e, "export failed");
    std::io::Error::other(e.to_string())
}

async fn stream_csv(mut walk: Walk, layout: Layout, writer: CsvWriter, tx: mpsc::Sender<Chunk>) {
    let head = writer.head(&layout).map_err(failed);
    if tx.send(head).await.is_err() {
        return;
    }
    loop {
        let calls = match walk.next().await {
            Ok(Some(calls)) => calls,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Err(failed(e))).await;
                return;
            }
        };
        let chunk = writer.rows(&layout, &walk.names, &calls).map_err(failed);
        let stop = chunk.is_err();
        // A closed channel: the client went away; stop reading.
        if tx.send(chunk).await.is_err() || stop {
            return;
        }
    }
}

/// Builds the workbook in temporary files (constant memory) on a blocking thread — the XLSX
/// writer does file I/O and compression —, then streams the finished file.
async fn stream_xlsx(mut walk: Walk, spec: FileSpec, dir: std::path::PathBuf, tx: mpsc::Sender<Chunk>) {
    let handle = tokio::runtime::Handle::current();
    let closed = tx.clone();
    let built = tokio::task::spawn_blocking(move || -> std::io::Result<Option<tempfile::NamedTempFile>> {
        std::fs::create_dir_all(&dir)?;
        let file = tempfile::Builder::new()
            .prefix("export-")
            .suffix(".xlsx")
            .tempfile_in(&dir)?;
        // A closed channel: the client went away; stop building.
        let written = write_file(&handle, &mut walk, &spec, file.path(), |_| !closed.is_closed())?;
        Ok(written.map(|_| file))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match built {
        // The temporary file is deleted when `file` drops, after the last chunk.
        Ok(Some(file)) => match file.reopen() {
            Ok(f) => send_file(tokio::fs::File::from_std(f), tx).await,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
            }
        },
        Ok(None) => {}
        Err(e) => {
            let _ = tx.send(Err(failed(e))).await;
        }
    }
}

/// Sends a file in chunks as the receiver takes them.
pub(super) async fn send_file(mut file: tokio::fs::File, tx: mpsc::Sender<Chunk>) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match file.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                if tx.send(Ok(buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}
