//! An export written to a file (background jobs, the command line, XLSX over HTTP): every call
//! of a walk, stretch by stretch, with a say after each stretch on whether to go on.

use std::io::{BufWriter, Write};
use std::path::Path;

use chrono::NaiveDateTime;
use tokio::runtime::Handle;

use super::csv::CsvWriter;
use super::walk::Walk;
use super::xlsx::XlsxWriter;
use super::{Format, Layout};
use crate::domain::Lang;

/// How a file is written.
pub struct FileSpec {
    pub format: Format,
    pub layout: Layout,
    /// CSV only.
    pub delimiter: u8,
    /// XLSX only: rows per sheet before the next one.
    pub sheet_rows: u32,
    /// XLSX only: the "About" sheet's lines, the row count added at the end.
    pub about: Vec<(String, String)>,
}

fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Where the rows of a file go.
enum Sink {
    Csv(CsvWriter, BufWriter<std::fs::File>),
    Xlsx(Box<XlsxWriter>),
}

/// Writes every call of `walk` to `path`. After each stretch, `go_on(rows_written)` decides
/// whether to continue. Returns the rows written, or `None` if `go_on` stopped it (the partial
/// file is removed). Blocking: run it on a blocking thread.
pub fn write_file(
    handle: &Handle,
    walk: &mut Walk,
    spec: &FileSpec,
    path: &Path,
    mut go_on: impl FnMut(u64) -> bool,
) -> std::io::Result<Option<u64>> {
    let layout = &spec.layout;
    let mut sink = match spec.format {
        Format::Csv => {
            let writer = CsvWriter::new(layout, spec.delimiter);
            let mut out = BufWriter::with_capacity(256 * 1024, std::fs::File::create(path)?);
            out.write_all(&writer.head(layout).map_err(io_error)?)?;
            Sink::Csv(writer, out)
        }
        Format::Xlsx => {
            let dir = path.parent().unwrap_or(Path::new("."));
            Sink::Xlsx(Box::new(
                XlsxWriter::new(layout, dir, spec.sheet_rows).map_err(io_error)?,
            ))
        }
    };
    let mut rows = 0u64;
    let mut stopped = false;
    while let Some(calls) = handle.block_on(walk.next()).map_err(io_error)? {
        match &mut sink {
            Sink::Csv(writer, out) => out.write_all(&writer.rows(layout, &walk.names, &calls).map_err(io_error)?)?,
            Sink::Xlsx(book) => book.rows(layout, &walk.names, &calls).map_err(io_error)?,
        }
        rows += calls.len() as u64;
        if !go_on(rows) {
            stopped = true;
            break;
        }
    }
    match sink {
        Sink::Csv(_, out) => out.into_inner().map_err(io_error)?.sync_all()?,
        Sink::Xlsx(_) if stopped => {}
        Sink::Xlsx(mut book) => {
            let mut about = spec.about.clone();
            about.push((rows_label(layout.lang).to_string(), rows.to_string()));
            book.about(layout.lang, &about).map_err(io_error)?;
            book.save(path).map_err(io_error)?;
        }
    }
    if stopped {
        let _ = std::fs::remove_file(path);
        return Ok(None);
    }
    Ok(Some(rows))
}

fn rows_label(lang: Lang) -> &'static str {
    match lang {
        Lang::Ru => "Строк",
        Lang::En => "Rows",
    }
}

/// The lines of the "About" sheet: what was exported, for whom to read it, and when.
pub fn about(
    layout: &Layout,
    filters: &str,
    from: Option<NaiveDateTime>,
    to_exclusive: Option<NaiveDateTime>,
    generated: NaiveDateTime,
) -> Vec<(String, String)> {
    let ru = layout.lang == Lang::Ru;
    let t = |v: NaiveDateTime| {
        let mut text = String::new();
        super::write_datetime(&mut text, v);
        text
    };
    let period = match (from, to_exclusive) {
        (None, None) if ru => "всё время".to_string(),
        (None, None) => "all time".to_string(),
        (a, b) => format!(
            "{} — {}",
            a.map(t).unwrap_or_else(|| "…".into()),
            b.map(t).unwrap_or_else(|| "…".into())
        ),
    };
    let filters = if filters.is_empty() {
        "—".to_string()
    } else {
        filters.to_string()
    };
    let columns: Vec<&str> = layout.columns.iter().map(|c| c.label(layout.lang)).collect();
    let lines = [
        (
            if ru { "Выгрузка" } else { "Export" },
            if ru {
                "История звонков"
            } else {
                "Call history"
            }
            .to_string(),
        ),
        (if ru { "Период" } else { "Period" }, period),
        (if ru { "Фильтры" } else { "Filters" }, filters),
        (
            if ru { "Часовой пояс" } else { "Time zone" },
            layout.tz.name().to_string(),
        ),
        (if ru { "Сформировано" } else { "Generated at" }, t(generated)),
        (if ru { "Столбцы" } else { "Columns" }, columns.join(", ")),
    ];
    lines.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
