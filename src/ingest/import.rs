//! Files and posted documents of any supported format in: read, then stored in batches. What
//! cannot be read or stored is reported by line and the rest goes on.

use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::pbx::PbxSettings;
use super::{asterisk, freeswitch, native, Parsed, Rejected};
use crate::domain::{AccountId, CallPatch};
use crate::store::auth::now_ms;
use crate::store::health;
use crate::store::ingest::apply_batch;
use crate::store::{Store, StoreError};

/// Records stored per transaction.
const BATCH: usize = 500;

/// The formats `calltrail import --format` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    NativeJson,
    NativeNdjson,
    FreeswitchJson,
    FreeswitchXml,
    FreeswitchCsv,
    AsteriskCsv,
    AsteriskCel,
    AsteriskQueueLog,
}

impl Format {
    pub const ALL: [(&'static str, Format); 8] = [
        ("native-json", Format::NativeJson),
        ("native-ndjson", Format::NativeNdjson),
        ("freeswitch-json", Format::FreeswitchJson),
        ("freeswitch-xml", Format::FreeswitchXml),
        ("freeswitch-csv", Format::FreeswitchCsv),
        ("asterisk-csv", Format::AsteriskCsv),
        ("asterisk-cel", Format::AsteriskCel),
        ("asterisk-queue-log", Format::AsteriskQueueLog),
    ];

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn names() -> String {
        Format::ALL.map(|(n, _)| n).join(", ")
    }

    pub fn name(self) -> &'static str {
        Format::ALL.iter().find(|(_, f)| *f == self).map_or("", |(n, _)| n)
    }

    /// Formats written a line at a time, which `--follow` can read as they grow.
    pub fn is_line_based(self) -> bool {
        matches!(
            self,
            Format::NativeNdjson
                | Format::FreeswitchCsv
                | Format::AsteriskCsv
                | Format::AsteriskCel
                | Format::AsteriskQueueLog
        )
    }

    /// Formats whose calls can take several lines (a CDR row per party pairing, CEL events, a
    /// caller's queue-log lines), so that a step reads new lines with the ones before.
    pub fn spreads_calls_over_lines(self) -> bool {
        matches!(
            self,
            Format::AsteriskCsv | Format::AsteriskCel | Format::AsteriskQueueLog
        )
    }

    /// How imports of this format are named in the ingestion health.
    pub fn health_source(self) -> &'static str {
        match self {
            Format::NativeJson => "import:native-json",
            Format::NativeNdjson => "import:native-ndjson",
            Format::FreeswitchJson => "import:freeswitch-json",
            Format::FreeswitchXml => "import:freeswitch-xml",
            Format::FreeswitchCsv => "import:freeswitch-csv",
            Format::AsteriskCsv => "import:asterisk-csv",
            Format::AsteriskCel => "import:asterisk-cel",
            Format::AsteriskQueueLog => "import:asterisk-queue-log",
        }
    }

    /// Whether `--columns` means anything for this format.
    pub fn has_columns(self) -> bool {
        matches!(self, Format::FreeswitchCsv | Format::AsteriskCsv | Format::AsteriskCel)
    }

    /// Reads one input. `columns`: the CSV layout, when not the format's default.
    pub fn read(self, text: &[u8], columns: Option<&[String]>, settings: &PbxSettings, zone: Tz) -> Parsed {
        match self {
            Format::NativeJson => match native::parse_json(text) {
                Ok(patches) => Parsed {
                    patches: patches.into_iter().map(|p| (1, p)).collect(),
                    ..Parsed::default()
                },
                Err(e) => Parsed {
                    rejected: vec![Rejected::new(1, e.error.to_string())],
                    ..Parsed::default()
                },
            },
            Format::NativeNdjson => native_lines(text),
            Format::FreeswitchJson => freeswitch::patches(vec![(1, freeswitch::json::parse(text))], settings, zone),
            Format::FreeswitchXml => freeswitch::patches(vec![(1, freeswitch::xml::parse(text))], settings, zone),
            Format::FreeswitchCsv => freeswitch::patches(freeswitch::csv::parse(text, columns), settings, zone),
            Format::AsteriskCsv => asterisk::cdr::parse(text, columns, settings, zone),
            Format::AsteriskCel => asterisk::cel::parse(text, columns, settings, zone),
            Format::AsteriskQueueLog => asterisk::queue_log::parse(text),
        }
    }
}

/// NDJSON line by line: a bad line is rejected, the others are read.
fn native_lines(text: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let Ok(line) = std::str::from_utf8(line) else {
            out.rejected.push(Rejected::new(i + 1, "not UTF-8 text"));
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match native::parse_record(i, line) {
            Ok(p) => out.patches.push((i + 1, p)),
            Err(e) => out
                .rejected
                .push(Rejected::new(i + 1, format!("{}: {}", e.error.field, e.error.message))),
        }
    }
    out
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Report {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    /// Updates kept until their call arrives (a b-leg before its a-leg).
    pub pending: u32,
    pub skipped: u32,
    pub rejected: u32,
    /// Why each rejected or skipped part was not taken, with its line.
    pub problems: Vec<Problem>,
    #[serde(skip)]
    pub changed: Vec<i64>,
    #[serde(skip)]
    pub fetches: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    pub line: usize,
    /// `rejected` (could not be read or stored) or `skipped` (read, not kept by design).
    pub kind: &'static str,
    pub reason: String,
}

/// Stores what was read. A record the store refuses (a timeline that cannot be, once merged
/// with what was stored) is rejected alone; the rest of its batch is stored. `health` names the
/// source in the ingestion health, where everything is counted and the refusals recorded;
/// `source` names the sender in each call's log.
pub async fn apply(
    store: &Store,
    account: AccountId,
    health: &'static str,
    source: &str,
    parsed: Parsed,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for r in parsed.rejected {
        report.rejected += 1;
        report.problems.push(Problem {
            line: r.line,
            kind: "rejected",
            reason: r.reason,
        });
    }
    for s in parsed.skipped {
        report.skipped += 1;
        report.problems.push(Problem {
            line: s.line,
            kind: "skipped",
            reason: s.reason,
        });
    }
    let mut valid: Vec<(usize, CallPatch)> = Vec::new();
    for (line, p) in parsed.patches {
        match p.validate() {
            Ok(()) => valid.push((line, p)),
            Err(e) => {
                report.rejected += 1;
                report.problems.push(Problem {
                    line,
                    kind: "rejected",
                    reason: format!("{}: {}", e.field, e.message),
                });
            }
        }
    }
    while !valid.is_empty() {
        let rest = valid.split_off(valid.len().min(BATCH));
        let mut batch = std::mem::replace(&mut valid, rest);
        loop {
            let patches: Vec<CallPatch> = batch.iter().map(|(_, p)| p.clone()).collect();
            let source = source.to_string();
            let stored = store
                .ingest(move |conn, cache| {
                    let o = apply_batch(conn, cache, account, patches, &source)?;
                    health::count(conn, account, health, o.counts(), now_ms())?;
                    Ok(o)
                })
                .await;
            match stored {
                Ok(o) => {
                    report.created += o.created;
                    report.updated += o.updated;
                    report.unchanged += o.unchanged;
                    report.pending += o.pending;
                    report.changed.extend(o.changed);
                    report.fetches += o.fetches;
                    break;
                }
                Err(StoreError::InvalidRecord { index, error }) if index < batch.len() => {
                    let (line, _) = batch.remove(index);
                    report.rejected += 1;
                    report.problems.push(Problem {
                        line,
                        kind: "rejected",
                        reason: format!("{}: {}", error.field, error.message),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }
    report.problems.sort_by_key(|p| p.line);
    Ok(report)
}

/// Records what an import did not take in the ingestion health: the skipped are counted, the
/// rejected counted and (the first `KEPT`) listed with their lines.
pub async fn record_problems(
    store: &Store,
    account: AccountId,
    health: &'static str,
    report: &Report,
) -> Result<(), StoreError> {
    if report.rejected + report.skipped > 0 {
        let problems = report.problems.clone();
        let skipped = report.skipped;
        store
            .write(move |conn, _| {
                let now = now_ms();
                let rejected = problems.iter().filter(|p| p.kind == "rejected");
                // The first ones name their lines; a file full of bad lines is counted, not listed.
                for p in rejected.clone().take(health::KEPT as usize) {
                    let reason = format!("line {}: {}", p.line, p.reason);
                    let r = health::NewRejection {
                        source: health,
                        reason: &reason,
                        field: None,
                        content_type: None,
                        payload: None,
                    };
                    health::reject(conn, account, &r, now)?;
                }
                let rest = health::Counts {
                    rejected: u32::try_from(rejected.count().saturating_sub(health::KEPT as usize)).unwrap_or(u32::MAX),
                    skipped,
                    ..health::Counts::default()
                };
                health::count(conn, account, health, rest, now)
            })
            .await?;
    }
    Ok(())
}
