//! `GET /api/v1/calls/export`: the filtered calls as a CSV or XLSX file, streamed as it is
//! written. What the viewer may see decides what is written, exactly as for a search.

use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::extract::{ClientAddr, QueryPairs};
use super::AppState;
use crate::domain::audit::AuditAction;
use crate::domain::{CallFilter, CallScope, Column, Lang, Principal};
use crate::error::AppError;
use crate::export::csv::CsvWriter;
use crate::export::xlsx::XlsxWriter;
use crate::export::{file_name, Format, Layout};
use crate::store::audit::{self, Actor};
use crate::store::search::{self, Position};
use crate::store::{preferences, Store, StoreError};

/// Calls read per step; each step is one short read, so writers are never held up.
const BATCH: u32 = 1000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/calls/export", get(export_calls))
}

type Chunk = Result<Vec<u8>, std::io::Error>;

/// The export's own parameters, split from the search filters.
struct Options {
    format: Format,
    lang: Option<Lang>,
    columns: Option<String>,
    delimiter: Option<u8>,
}

fn split(pairs: Vec<(String, String)>) -> Result<(Options, Vec<(String, String)>), AppError> {
    let mut o = Options {
        format: Format::Csv,
        lang: None,
        columns: None,
        delimiter: None,
    };
    let mut format = None;
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
                o.lang = Some(
                    Lang::parse(&v)
                        .ok_or_else(|| AppError::invalid("lang", format!("unknown language {v:?}; use ru or en")))?,
                )
            }
            "columns" => o.columns = Some(v),
            "delimiter" => {
                o.delimiter = Some(match v.as_str() {
                    ";" => b';',
                    "," => b',',
                    _ => return Err(AppError::invalid("delimiter", "the delimiter is ; or ,")),
                })
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
    o.format = format.ok_or_else(|| AppError::invalid("format", "format is required: csv or xlsx"))?;
    Ok((o, filters))
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
    let (options, filters) = split(pairs)?;
    let (scope, req, tz) = super::calls::prepare(&state.store, &principal, filters).await?;
    let user = principal.user_id;
    let chosen = state.store.read(move |conn| preferences::get(conn, user)).await?;
    let lang = options.lang.or(chosen.lang).unwrap_or_default();
    let columns = match &options.columns {
        Some(text) => Column::parse_choice(&text.split(',').collect::<Vec<_>>(), principal.role, "columns")?,
        None => chosen.columns_for(principal.role),
    };
    let layout = Layout {
        columns,
        lang,
        tz,
        base_url: state.config.public_url.clone(),
    };
    let filter = req.filter.clone();
    let (count_scope, count_filter) = (scope.clone(), filter.clone());
    let total = state
        .store
        .read(move |conn| search::count(conn, &count_scope, &count_filter))
        .await?;

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

    let local = |ms: i64| {
        Utc.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.with_timezone(&tz).naive_local())
    };
    let name = file_name(
        filter.from.and_then(local),
        filter.to.and_then(local),
        Utc::now().with_timezone(&tz).naive_local(),
        options.format,
    );
    let walk = Walk {
        store: state.store.clone(),
        scope,
        filter,
        total,
        tz,
    };
    let (tx, rx) = mpsc::channel::<Chunk>(4);
    match options.format {
        Format::Csv => {
            let writer = CsvWriter::new(
                &layout,
                options.delimiter.unwrap_or(match lang {
                    Lang::Ru => b';',
                    Lang::En => b',',
                }),
            );
            tokio::spawn(stream_csv(walk, layout, writer, tx));
        }
        Format::Xlsx => {
            let dir = state.config.data.join("exports");
            let rows = state.config.xlsx_sheet_rows;
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || build_xlsx(handle, walk, layout, dir, rows, tx));
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

/// A walk through every match, newest first, one batch at a time.
struct Walk {
    store: Store,
    scope: CallScope,
    filter: CallFilter,
    total: i64,
    tz: Tz,
}

impl Walk {
    async fn next(
        &self,
        after: Option<Position>,
    ) -> Result<(Vec<crate::store::view::CallView>, Option<Position>), StoreError> {
        let (scope, filter, total, tz) = (self.scope.clone(), self.filter.clone(), self.total, self.tz);
        self.store
            .read(move |conn| search::scan(conn, &scope, &filter, total, after, BATCH, Some(tz)))
            .await
    }
}

fn failed(e: impl std::fmt::Display) -> std::io::Error {
    tracing::warn!(error = %e, "export failed");
    std::io::Error::other(e.to_string())
}

async fn stream_csv(walk: Walk, layout: Layout, writer: CsvWriter, tx: mpsc::Sender<Chunk>) {
    let head = writer.head(&layout).map_err(failed);
    if tx.send(head).await.is_err() {
        return;
    }
    let mut after = None;
    loop {
        let (calls, next) = match walk.next(after).await {
            Ok(batch) => batch,
            Err(e) => {
                let _ = tx.send(Err(failed(e))).await;
                return;
            }
        };
        let chunk = writer.rows(&layout, &calls).map_err(failed);
        let stop = chunk.is_err();
        // A closed channel: the client went away; stop reading.
        if tx.send(chunk).await.is_err() || stop {
            return;
        }
        match next {
            Some(p) => after = Some(p),
            None => return,
        }
    }
}

/// Builds the workbook in temporary files (constant memory), then streams the finished file.
/// Runs on a blocking thread: the XLSX writer does file I/O and compression.
fn build_xlsx(
    handle: tokio::runtime::Handle,
    walk: Walk,
    layout: Layout,
    dir: std::path::PathBuf,
    sheet_rows: u32,
    tx: mpsc::Sender<Chunk>,
) {
    let built = (|| -> Result<Option<tempfile::NamedTempFile>, std::io::Error> {
        std::fs::create_dir_all(&dir)?;
        let mut book = XlsxWriter::new(&layout, &dir, sheet_rows).map_err(failed)?;
        let mut after = None;
        loop {
            if tx.is_closed() {
                return Ok(None);
            }
            let (calls, next) = handle.block_on(walk.next(after)).map_err(failed)?;
            book.rows(&layout, &calls).map_err(failed)?;
            match next {
                Some(p) => after = Some(p),
                None => break,
            }
        }
        let file = tempfile::Builder::new()
            .prefix("export-")
            .suffix(".xlsx")
            .tempfile_in(&dir)?;
        book.save(file.path()).map_err(failed)?;
        Ok(Some(file))
    })();
    let file = match built {
        Ok(Some(file)) => file,
        Ok(None) => return,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    // The temporary file is deleted when `file` drops, after the last chunk.
    let mut reader = match file.reopen() {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Err(e));
            return;
        }
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
}
