//! `calltrail import --follow FILE`: a live log (Asterisk's `Master.csv` or `queue_log`,
//! `mod_cdr_csv`, NDJSON) read as it grows. Complete lines are read, stored, and the position
//! saved (with the file's inode) after each step, so a restarted follower goes on where it
//! stopped; a rotated file (a new inode, or a file shorter than the position) is read to its end,
//! then the new one from its start.
//!
//! A call can be spread over lines written at different times (the CDR rows of one linkedid, a
//! caller's queue-log lines): the last lines read (`WINDOW`) stay as context, and each step
//! stores, for the calls its new lines name, what all the lines in the window say of them. After a
//! restart the window is filled again from the bytes before the saved position (`LOOKBACK`),
//! without storing them again.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;

use super::import::{apply, record_problems, Format, Report};
use super::pbx::PbxSettings;
use super::Parsed;
use crate::domain::AccountId;
use crate::store::positions::{self, Position};
use crate::store::{Store, StoreError};

/// Lines kept as context for the calls new lines continue.
const WINDOW: usize = 20_000;
/// Bytes before the saved position read again (not stored) to rebuild the context.
const LOOKBACK: u64 = 1 << 20;

/// What to follow and how to read it.
pub struct Follow<'a> {
    pub store: &'a Store,
    pub account: AccountId,
    pub format: Format,
    pub columns: Option<&'a [String]>,
    pub settings: &'a PbxSettings,
    pub zone: Tz,
    pub path: &'a Path,
    /// How often the file is looked at.
    pub every: Duration,
    /// Bytes read per step by `import_file`.
    pub chunk: usize,
}

/// A step's outcome, for the caller to report (`problems` carry file line numbers).
pub type Step = Report;

/// Whether `line` is a header row of the format (a CSV whose first row names its columns).
fn is_header(format: Format, line: &str) -> bool {
    let names: Vec<String> = line
        .split(',')
        .map(|v| v.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let has = |n: &str| names.iter().any(|v| v == n);
    match format {
        Format::AsteriskCsv => has("src") && has("dst") && has("start"),
        Format::FreeswitchCsv => has("uuid"),
        // A cel_custom header or a psql dump's (`eventtype | eventtime | …`).
        Format::AsteriskCel => line.to_ascii_lowercase().contains("eventtype"),
        _ => false,
    }
}

/// What a step reads its lines with: the file's header row, and the last lines as context.
#[derive(Default)]
struct Context {
    header: Option<String>,
    recent: VecDeque<String>,
}

struct Reader {
    file: File,
    inode: u64,
    /// Bytes of complete lines read.
    offset: u64,
    /// The file line the next complete line is.
    next_line: usize,
    partial: Vec<u8>,
}

fn open(path: &Path) -> std::io::Result<(File, u64, u64)> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta.ino(), meta.len()))
}

/// Follows the file until `stop` resolves, calling `report` after every step that stored
/// something or refused a line.
pub async fn follow(
    f: Follow<'_>,
    mut report: impl FnMut(&Step),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), FollowError> {
    if !f.format.is_line_based() {
        return Err(FollowError::Usage(format!(
            "--follow reads logs written line by line (asterisk-csv, asterisk-cel, asterisk-queue-log, freeswitch-csv, native-ndjson), not {}",
            f.format.name()
        )));
    }
    let key = std::fs::canonicalize(f.path)
        .unwrap_or_else(|_| f.path.to_path_buf())
        .display()
        .to_string();
    let account = f.account;
    let saved = {
        let key = key.clone();
        f.store.read(move |conn| positions::get(conn, account, &key)).await?
    };
    let (mut file, inode, len) = open(f.path).map_err(|e| FollowError::Usage(format!("{}: {e}", f.path.display())))?;
    let mut cx = Context {
        header: first_line(f.path).filter(|l| is_header(f.format, l)),
        ..Context::default()
    };
    let offset = match saved {
        Some(p) if p.inode == inode && p.offset <= len => p.offset,
        _ => 0,
    };
    let mut next_line = 1;
    if offset > 0 {
        // Lines before the position: counted for line numbers, the last ones kept as context.
        let mut prefix = Vec::new();
        (&file).take(offset).read_to_end(&mut prefix)?;
        next_line += prefix.iter().filter(|&&b| b == b'\n').count();
        let from = prefix.len().saturating_sub(LOOKBACK as usize);
        let context = &prefix[from..];
        let context = match (from, context.iter().position(|&b| b == b'\n')) {
            (0, _) => context,
            (_, Some(nl)) => &context[nl + 1..],
            (_, None) => &[],
        };
        for line in String::from_utf8_lossy(context).lines() {
            cx.push(line);
        }
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut r = Reader {
        file,
        inode,
        offset,
        next_line,
        partial: Vec::new(),
    };
    tokio::pin!(stop);
    loop {
        step(&f, Some(&key), &mut r, &mut cx, &mut report).await?;
        // Rotated (a new file under the name) or truncated (copytruncate): the old one was
        // read to its end above; the new one is read from its start.
        if let Ok(meta) = std::fs::metadata(f.path) {
            if meta.ino() != r.inode || meta.len() < r.offset {
                if !r.partial.is_empty() {
                    // The old file's last line had no newline: it is complete now.
                    r.partial.push(b'\n');
                    let last = std::mem::take(&mut r.partial);
                    store_lines(&f, Some(&key), &mut r, &mut cx, &last, &HashSet::new(), &mut report).await?;
                }
                let (file, inode, _) = open(f.path)?;
                r = Reader {
                    file,
                    inode,
                    offset: 0,
                    next_line: 1,
                    partial: Vec::new(),
                };
                continue;
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(f.every) => {}
        }
    }
}

fn first_line(path: &Path) -> Option<String> {
    let mut buf = vec![0u8; 8192];
    let n = File::open(path).and_then(|mut f| f.read(&mut buf)).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.lines().next().map(str::to_string)
}

impl Context {
    /// Keeps a line as context (not the header, not a blank line), the window's oldest going.
    fn push(&mut self, line: &str) {
        if Some(line) == self.header.as_deref() || line.trim().is_empty() {
            return;
        }
        self.recent.push_back(line.to_string());
        while self.recent.len() > WINDOW {
            self.recent.pop_front();
        }
    }
}

/// Reads what was appended since the last step and stores its complete lines.
async fn step(
    f: &Follow<'_>,
    key: Option<&str>,
    r: &mut Reader,
    cx: &mut Context,
    report: &mut impl FnMut(&Step),
) -> Result<(), FollowError> {
    let mut buf = Vec::new();
    r.file.read_to_end(&mut buf)?;
    if buf.is_empty() {
        return Ok(());
    }
    r.partial.extend_from_slice(&buf);
    let Some(last_newline) = r.partial.iter().rposition(|&b| b == b'\n') else {
        return Ok(());
    };
    let rest = r.partial.split_off(last_newline + 1);
    let complete = std::mem::replace(&mut r.partial, rest);
    store_lines(f, key, r, cx, &complete, &HashSet::new(), report).await
}

/// Stores complete lines (ending in a newline) and saves the position after them.
async fn store_lines(
    f: &Follow<'_>,
    key: Option<&str>,
    r: &mut Reader,
    cx: &mut Context,
    complete: &[u8],
    defer: &HashSet<String>,
    report: &mut impl FnMut(&Step),
) -> Result<(), FollowError> {
    let header = cx.header.clone();
    let header = header.as_deref();
    let text = String::from_utf8_lossy(complete).into_owned();
    let first = r.next_line;
    let lines: Vec<&str> = text.lines().collect();
    let body: Vec<&str> = lines.iter().copied().filter(|l| Some(*l) != header).collect();
    let lead = usize::from(header.is_some());
    let with_header = |body: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        if let Some(h) = header {
            out.push_str(h);
            out.push('\n');
        }
        for l in body {
            out.push_str(l);
            out.push('\n');
        }
        out
    };
    let alone = f.format.read(
        with_header(&mut body.iter().copied()).as_bytes(),
        f.columns,
        f.settings,
        f.zone,
    );
    // The calls the new lines name (but those held for the next step), with the line each ends on.
    let ids: std::collections::HashMap<String, usize> = alone
        .patches
        .iter()
        .map(|(line, p)| (p.external_id.clone(), *line))
        .filter(|(id, _)| !defer.contains(id))
        .collect();
    // Refused lines are not context: a broken quote would take the lines after it along.
    let refused: HashSet<usize> = alone.rejected.iter().map(|x| x.line.saturating_sub(1 + lead)).collect();
    let new: Vec<&str> = body
        .iter()
        .enumerate()
        .filter(|(i, l)| !refused.contains(i) && !l.trim().is_empty())
        .map(|(_, l)| *l)
        .collect();
    // A call spread over lines is read from the context and the new lines together; a record
    // of a line (an NDJSON record, a mod_cdr_csv leg) alone, and only once.
    let patches = if f.format.spreads_calls_over_lines() {
        let context = with_header(&mut cx.recent.iter().map(String::as_str).chain(new.iter().copied()));
        let whole = f.format.read(context.as_bytes(), f.columns, f.settings, f.zone);
        whole.patches
    } else {
        alone.patches
    };
    // Line numbers of the file: the header (if any) took the parsed text's first line, and a
    // header line in this step (the file's first) was left out.
    let skipped_header = usize::from(lines.first().is_some_and(|l| Some(*l) == header));
    let at = |line: usize| first + skipped_header + line.saturating_sub(1 + lead);
    let parsed = Parsed {
        patches: patches
            .into_iter()
            .filter_map(|(_, p)| ids.get(&p.external_id).map(|&line| (at(line), p)))
            .collect(),
        rejected: alone
            .rejected
            .into_iter()
            .map(|x| super::Rejected { line: at(x.line), ..x })
            .collect(),
        skipped: alone
            .skipped
            .into_iter()
            .map(|x| super::Rejected { line: at(x.line), ..x })
            .collect(),
    };
    let source = format!("import {} {}", f.format.name(), f.path.display());
    let step = apply(f.store, f.account, f.format.health_source(), &source, parsed).await?;
    record_problems(f.store, f.account, f.format.health_source(), &step).await?;
    for l in &new {
        cx.push(l);
    }
    r.offset += complete.len() as u64;
    r.next_line += lines.len();
    if let Some(key) = key {
        let (account, key, name, position) = (
            f.account,
            key.to_string(),
            f.format.name(),
            Position {
                inode: r.inode,
                offset: r.offset,
            },
        );
        f.store
            .write(move |conn, _| positions::set(conn, account, &key, name, position, crate::store::auth::now_ms()))
            .await?;
    }
    if step.created + step.updated + step.unchanged + step.pending + step.rejected + step.skipped > 0 {
        report(&step);
    }
    Ok(())
}

/// Lines at the end of a step that `import_file` keeps for the next one.
const HOLD_LINES: usize = 500;

/// Where a step ends: after the last complete line but `hold` (`None`: not enough lines yet).
fn held_back(text: &[u8], hold: usize) -> Option<usize> {
    let mut newlines = text
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, &b)| b == b'\n')
        .map(|(i, _)| i);
    newlines.nth(hold).map(|i| i + 1)
}

/// The calls some lines name.
fn ids_in(f: &Follow<'_>, header: Option<&str>, lines: &[u8]) -> HashSet<String> {
    let mut text = header.map(|h| format!("{h}\n")).unwrap_or_default().into_bytes();
    text.extend_from_slice(lines);
    let parsed = f.format.read(&text, f.columns, f.settings, f.zone);
    parsed.patches.into_iter().map(|(_, p)| p.external_id).collect()
}

/// Bytes read per step by `import_file`, unless told otherwise.
pub const CHUNK: usize = 4 << 20;

/// Imports a whole log file the way `follow` reads what is appended: a few megabytes at a time,
/// with the last lines as context, so that a file of any size is imported in bounded memory
/// (read whole, a 50 MB `Master.csv` of 200,000 rows took 800 MB). Nothing is remembered: an
/// import of the same file again changes nothing anyway.
pub async fn import_file(f: Follow<'_>) -> Result<Report, FollowError> {
    let (file, inode, _) = open(f.path).map_err(|e| FollowError::Usage(format!("{}: {e}", f.path.display())))?;
    let mut cx = Context {
        header: first_line(f.path).filter(|l| is_header(f.format, l)),
        ..Context::default()
    };
    let mut r = Reader {
        file,
        inode,
        offset: 0,
        next_line: 1,
        partial: Vec::new(),
    };
    let mut total = Report::default();
    let mut add = |s: &Step| {
        total.created += s.created;
        total.updated += s.updated;
        total.unchanged += s.unchanged;
        total.pending += s.pending;
        total.skipped += s.skipped;
        total.rejected += s.rejected;
        total.problems.extend(s.problems.iter().cloned());
    };
    let mut buf = vec![0u8; f.chunk.max(1)];
    loop {
        let n = r.file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        r.partial.extend_from_slice(&buf[..n]);
        // The last lines wait for the next step: the rows of a call cut by the step's end are
        // then stored together, once (not first half, then whole).
        let Some(cut) = held_back(&r.partial, HOLD_LINES) else {
            continue;
        };
        let rest = r.partial.split_off(cut);
        let complete = std::mem::replace(&mut r.partial, rest);
        // Calls the held lines continue are stored with them, next step.
        let defer = ids_in(&f, cx.header.as_deref(), &r.partial);
        store_lines(&f, None, &mut r, &mut cx, &complete, &defer, &mut add).await?;
    }
    if !r.partial.is_empty() {
        // The last line, without a newline.
        let mut last = std::mem::take(&mut r.partial);
        last.push(b'\n');
        store_lines(&f, None, &mut r, &mut cx, &last, &HashSet::new(), &mut add).await?;
    }
    Ok(total)
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}
