//! Asterisk CDR rows. One call is many rows (one per Party A / Party B pairing): rows are grouped
//! by `linkedid` (Asterisk 12+), else by `uniqueid`, and each group becomes one call.
//!
//! Columns: a first row naming them (`src`, `dst`, `start`…) is the header; otherwise
//! `cdr_csv`'s order, whose length says which optional columns are on (16 to 21), or the columns
//! given (`--columns`, for `cdr_custom` layouts).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::endpoint;
use crate::domain::record::FlowStep;
use crate::domain::{CallKind, CallPatch};
use crate::ingest::pbx::{self, Party, PbxCall, PbxSettings};
use crate::ingest::{clip, csv_rows, Parsed, Rejected};

/// `cdr_csv`'s columns, always written.
const CDR_CSV: [&str; 16] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
];

/// The legacy `cdr_custom.conf` sample mapping.
pub const CDR_CUSTOM: [&str; 19] = [
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "sequence",
];

/// `cdr_csv`'s columns for a row of `n` values: `uniqueid` (`loguniqueid`), `userfield`
/// (`loguserfield`), then `peeraccount, linkedid, sequence` (`newcdrcolumns`).
fn cdr_csv_columns(n: usize) -> Option<Vec<String>> {
    let extra: &[&str] = match n {
        16 => &[],
        17 => &["uniqueid"],
        18 => &["uniqueid", "userfield"],
        19 => &["uniqueid", "peeraccount", "linkedid"],
        20 => &["uniqueid", "peeraccount", "linkedid", "sequence"],
        21 => &["uniqueid", "userfield", "peeraccount", "linkedid", "sequence"],
        _ => return None,
    };
    Some(CDR_CSV.iter().chain(extra).map(|s| s.to_string()).collect())
}

/// One row, by column name.
#[derive(Debug, Clone)]
struct Row {
    line: usize,
    values: HashMap<String, String>,
    start: DateTime<Utc>,
    answer: Option<DateTime<Utc>>,
    end: DateTime<Utc>,
}

impl Row {
    fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or_default().trim()
    }

    fn answered(&self) -> bool {
        self.get("disposition").eq_ignore_ascii_case("ANSWERED") && self.answer.is_some()
    }

    fn app(&self) -> &str {
        self.get("lastapp")
    }
}

/// Reads CDR rows into calls; rows that cannot be read are rejected with their line.
pub fn parse(text: &[u8], columns: Option<&[String]>, settings: &PbxSettings, zone: Tz) -> Parsed {
    let mut out = Parsed::default();
    let mut header: Option<Vec<String>> = columns.map(<[String]>::to_vec);
    let mut first = true;
    let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (line, record) in csv_rows(text) {
        let record = match record {
            Ok(r) => r,
            Err(why) => {
                out.rejected.push(Rejected::new(line, why));
                continue;
            }
        };
        if std::mem::take(&mut first) && header.is_none() {
            let names = ["src", "dst", "start"];
            if names
                .iter()
                .all(|n| record.iter().any(|v| v.trim().eq_ignore_ascii_case(n)))
            {
                header = Some(record.iter().map(|v| v.trim().to_ascii_lowercase()).collect());
                continue;
            }
        }
        let names = match &header {
            Some(h) => Some(h.clone()),
            None => cdr_csv_columns(record.len()),
        };
        let Some(names) = names.filter(|n| n.len() == record.len()) else {
            out.rejected.push(Rejected::new(
                line,
                format!(
                    "{} columns: not a cdr_csv row (16–21 columns); give the layout with --columns",
                    record.len()
                ),
            ));
            continue;
        };
        let values: HashMap<String, String> = names.into_iter().zip(record).collect();
        let row = match read_row(line, values, zone) {
            Ok(r) => r,
            Err(why) => {
                out.rejected.push(Rejected::new(line, why));
                continue;
            }
        };
        let key = [row.get("linkedid"), row.get("uniqueid")]
            .into_iter()
            .find(|k| !k.is_empty())
            .map(String::from)
            .unwrap_or_else(|| format!("{}-{}", row.get("channel"), row.start.timestamp()));
        match index.get(&key) {
            Some(&i) => groups[i].1.push(row),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![row]));
            }
        }
    }
    for (key, rows) in groups {
        let line = rows.last().map_or(1, |r| r.line);
        match call(&key, rows, settings) {
            Some(p) => out.patches.push((line, p)),
            None => out.skipped.push(Rejected::new(
                line,
                format!("call {key}: an internal call; internal_calls is skip"),
            )),
        }
    }
    out
}

fn read_row(line: usize, values: HashMap<String, String>, zone: Tz) -> Result<Row, String> {
    let time = |name: &str| -> Result<Option<DateTime<Utc>>, String> {
        let v = values.get(name).map(|s| s.trim()).unwrap_or_default();
        if v.is_empty() {
            return Ok(None);
        }
        pbx::local_time(v, zone)
            .map(Some)
            .ok_or_else(|| format!("{name}: {v:?} is not a time (YYYY-MM-DD HH:MM:SS)"))
    };
    let start = time("start")?.ok_or("start: empty")?;
    let answer = time("answer")?;
    let end = time("end")?.unwrap_or(start);
    if end < start {
        return Err("end: before start".into());
    }
    Ok(Row {
        line,
        values,
        start,
        answer,
        end,
    })
}

/// Follows a Local channel to the phone it reached: the row whose channel is the Local
/// channel's other half (`;2`) names it as its destination.
fn reached(rows: &[Row], dstchannel: &str) -> Option<String> {
    if let Some(e) = endpoint(dstchannel) {
        return Some(e);
    }
    let half = dstchannel.strip_suffix(";1")?;
    let other = format!("{half};2");
    rows.iter()
        .filter(|r| r.get("channel") == other && r.answered())
        .find_map(|r| endpoint(r.get("dstchannel")))
}

/// One call from its rows (in the order Asterisk wrote them).
fn call(key: &str, mut rows: Vec<Row>, settings: &PbxSettings) -> Option<CallPatch> {
    let by_sequence = rows.iter().all(|r| r.get("sequence").parse::<u64>().is_ok());
    if by_sequence {
        rows.sort_by_key(|r| r.get("sequence").parse::<u64>().unwrap_or(0));
    }
    let first = &rows[0];
    let caller = first.get("src").to_string();
    let callee = first.get("dst").to_string();
    let caller_party = if settings.is_external_context(first.get("dcontext")) {
        Party::External
    } else if caller.is_empty() {
        // Call files and originates: the PBX itself placed the call.
        Party::Own
    } else {
        settings.party(&caller)
    };
    let kind = settings.kind(caller_party, settings.party(&callee))?;
    // The caller's own rows: the channel that began the call, through transfers.
    let own_channel = first.get("channel").to_string();
    let answering: Vec<&Row> = rows
        .iter()
        .filter(|r| r.answered())
        .filter(|r| {
            let bridged = !r.get("dstchannel").is_empty();
            match kind {
                CallKind::Incoming => bridged,
                _ => bridged || !matches!(r.app(), "Dial" | "Queue"),
            }
        })
        .collect();
    let answered = !answering.is_empty();
    let answered_at = answering.iter().filter_map(|r| r.answer).min();
    let offered = rows.iter().any(|r| matches!(r.app(), "Dial" | "Queue"));
    let failure = pbx::asterisk_disposition(first.get("disposition"));
    let result = pbx::result(kind, answered, offered, failure);
    let operator = match kind {
        CallKind::Incoming => answering
            .iter()
            .filter(|r| r.get("channel") == own_channel)
            .find_map(|r| reached(&rows, r.get("dstchannel"))),
        _ => endpoint(&own_channel).or_else(|| Some(caller.clone()).filter(|c| !c.is_empty())),
    };
    let queue = rows
        .iter()
        .find(|r| r.app() == "Queue")
        .and_then(|r| r.get("lastdata").split(',').next().map(str::to_string))
        .filter(|q| !q.is_empty());
    let started = rows.iter().map(|r| r.start).min().unwrap_or(first.start);
    let ended = rows.iter().map(|r| r.end).max().unwrap_or(first.end);
    let recording = rows
        .iter()
        .map(|r| r.get("recordingfile"))
        .find(|f| !f.is_empty())
        .map(String::from);
    let log: Vec<String> = rows
        .iter()
        .map(|r| {
            clip(
                &format!(
                    "{} {} → {} {}({}) {} billsec={}",
                    r.get("start"),
                    r.get("channel"),
                    Some(r.get("dstchannel")).filter(|d| !d.is_empty()).unwrap_or("-"),
                    r.app(),
                    r.get("lastdata"),
                    r.get("disposition"),
                    r.get("billsec"),
                ),
                8_000,
            )
        })
        .collect();
    let flow = rows
        .iter()
        .map(|r| FlowStep {
            at: r.start,
            block: clip(if r.app().is_empty() { "?" } else { r.app() }, 256),
            kind: Some("application".into()),
            outcome: Some(clip(
                format!("{} {}", r.get("disposition"), r.get("dstchannel")).trim(),
                256,
            )),
        })
        .collect();
    let call = PbxCall {
        external_id: key.to_string(),
        kind,
        from: caller,
        to: callee,
        started,
        answered_at,
        ended: Some(ended),
        result,
        operator,
        operator_name: None,
        queue,
        scenario: None,
        recording,
        flow,
        log,
    };
    Some(call.into_patch(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AttemptResult;

    #[test]
    fn cdr_custom_rows_are_read_with_their_column_map() {
        // The legacy cdr_custom mapping: clid first, empty answer quoted, numbers quoted.
        let row = b"\"\"\"Alice\"\" <100>\",\"100\",\"79161234567\",\"from-internal\",\"SIP/alice-00000001\",\"SIP/trunk-00000002\",\"Dial\",\"SIP/trunk/79161234567\",\"2026-11-25 10:00:00\",\"\",\"2026-11-25 10:00:20\",\"20\",\"0\",\"BUSY\",\"DOCUMENTATION\",\"\",\"1764064800.1\",\"\",1\n";
        let columns: Vec<String> = CDR_CUSTOM.map(String::from).to_vec();
        let parsed = parse(row, Some(&columns), &PbxSettings::default(), Tz::UTC);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        let p = &parsed.patches[0].1;
        assert_eq!(p.external_id, "1764064800.1");
        assert_eq!(
            (p.kind, p.from.clone(), p.to.clone()),
            (
                Some(CallKind::SoftphoneOutgoing),
                Some(Some("100".into())),
                Some(Some("79161234567".into()))
            )
        );
        assert_eq!(p.result, Some(Some(AttemptResult::Busy)));
        assert_eq!(p.operator, Some(Some("alice".into())));
        assert_eq!(p.answered_at, Some(None));
        // The same row read as cdr_csv (no map): its 10th column (cdr_csv's start) is the empty
        // answer, so the row is refused, not misread.
        let misread = parse(row, None, &PbxSettings::default(), Tz::UTC);
        assert!(misread.patches.is_empty());
        assert_eq!(misread.rejected, [Rejected::new(1, "start: empty")]);
    }

    #[test]
    fn busy_and_no_answer_rows_with_billsec_are_not_answered() {
        // Busy() answered the channel (billsec 5) before the bridge failed.
        let row = b"\"\",\"100\",\"79161234567\",\"default\",\"\",\"SIP/alice-1\",\"\",\"Busy\",\"\",\"2026-11-25 10:00:00\",\"2026-11-25 10:00:01\",\"2026-11-25 10:00:06\",6,5,\"BUSY\",\"DOCUMENTATION\",\"1.1\",\"\"\n";
        let p = &parse(row, None, &PbxSettings::default(), Tz::UTC).patches[0].1;
        assert_eq!((p.result, p.answered_at), (Some(Some(AttemptResult::Busy)), Some(None)));
    }
}
