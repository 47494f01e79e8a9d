//! Asterisk channel event logs (CEL): `cel_custom` CSV rows (the legacy 20-column mapping, or a
//! header row naming the columns) and dumps of the `cel` table as `psql` prints it (a header
//! row and `|`-separated rows; Wazo's call-log tests are such dumps). Events are grouped by
//! `linkedid` into calls, the way a call-log interpreter does: the channel that began the call
//! is the caller, the other channels were called, and who answered, when, and how it ended come
//! from their ANSWER, BRIDGE and HANGUP events (rules in docs/connect-your-pbx.md).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::endpoint;
use crate::domain::record::FlowStep;
use crate::domain::{CallKind, CallPatch};
use crate::ingest::pbx::{self, Failure, Party, PbxCall, PbxSettings};
use crate::ingest::{clip, csv_rows, Parsed, Rejected};

/// The legacy `cel_custom.conf` mapping (and Asterisk's test suite).
const CEL_CUSTOM: [&str; 20] = [
    "eventtype",
    "eventtime",
    "cid_name",
    "cid_num",
    "cid_ani",
    "cid_rdnis",
    "cid_dnid",
    "exten",
    "context",
    "channame",
    "appname",
    "appdata",
    "amaflags",
    "accountcode",
    "uniqueid",
    "linkedid",
    "peer",
    "userfield",
    "userdeftype",
    "extra",
];

/// The `cel_custom` names of the SQL table's columns.
fn column(name: &str) -> &str {
    match name {
        "cidname" => "cid_name",
        "cidnum" => "cid_num",
        "ani" => "cid_ani",
        "rdnis" => "cid_rdnis",
        "dnid" => "cid_dnid",
        "channel" => "channame",
        "app" => "appname",
        "bridgepeer" => "peer",
        "eventextra" => "extra",
        other => other,
    }
}

/// One event, by column name.
#[derive(Debug, Clone)]
struct Event {
    line: usize,
    at: DateTime<Utc>,
    values: HashMap<String, String>,
}

impl Event {
    fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or_default()
    }

    fn kind(&self) -> &str {
        self.get("eventtype")
    }

    fn channel(&self) -> &str {
        self.get("channame")
    }
}

/// `1335310195.513823` (epoch), or `2015-06-18 14:12:05.935283`, with an optional offset
/// (`+00`, `-04`, `+05:30`); without one, the PBX's zone.
fn event_time(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if !text.contains('-') {
        return pbx::epoch_seconds(text);
    }
    // An offset is the last sign after the time of day.
    let time_part = text.get(11..).unwrap_or_default();
    if let Some(i) = time_part.rfind(['+', '-']) {
        let (local, offset) = text.split_at(11 + i);
        let naive = NaiveDateTime::parse_from_str(local.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
        let (sign, digits) = offset.split_at(1);
        let (h, m) = digits.split_once(':').unwrap_or((digits, "0"));
        let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        let seconds = if sign == "-" { -seconds } else { seconds };
        let offset = chrono::FixedOffset::east_opt(seconds)?;
        return offset
            .from_local_datetime(&naive)
            .single()
            .map(|t| t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The rows of a `psql` dump: a header naming the columns, `---+---` rules, `|`-separated rows.
fn psql_rows(text: &str) -> Vec<(usize, Vec<String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains('|') && !l.trim_start().starts_with("--"))
        .map(|(i, l)| (i + 1, l.split('|').map(|v| v.trim().to_string()).collect()))
        .collect()
}

/// Reads CEL events into calls; rows that cannot be read are rejected with their line.
pub fn parse(text: &[u8], columns: Option<&[String]>, settings: &PbxSettings, zone: Tz) -> Parsed {
    let mut out = Parsed::default();
    let text = String::from_utf8_lossy(text);
    let psql = text.lines().any(|l| l.contains('|') && l.contains("eventtype"));
    let rows: Vec<(usize, Result<Vec<String>, String>)> = if psql {
        psql_rows(&text).into_iter().map(|(l, r)| (l, Ok(r))).collect()
    } else {
        csv_rows(text.as_bytes())
    };
    let mut header: Option<Vec<String>> = columns.map(|c| c.iter().map(|n| column(n).to_string()).collect());
    let mut events = Vec::new();
    for (line, row) in rows {
        let row = match row {
            Ok(r) => r,
            Err(why) => {
                out.rejected.push(Rejected::new(line, why));
                continue;
            }
        };
        if row.iter().any(|v| v.eq_ignore_ascii_case("eventtype")) {
            header = Some(
                row.iter()
                    .map(|v| column(&v.to_ascii_lowercase()).to_string())
                    .collect(),
            );
            continue;
        }
        let names = header.clone().unwrap_or_else(|| CEL_CUSTOM.map(String::from).to_vec());
        if row.len() != names.len() {
            out.rejected.push(Rejected::new(
                line,
                format!(
                    "{} columns where the layout has {} ({})",
                    row.len(),
                    names.len(),
                    names.join(",")
                ),
            ));
            continue;
        }
        let values: HashMap<String, String> = names.into_iter().zip(row).collect();
        let raw_time = values.get("eventtime").cloned().unwrap_or_default();
        let Some(at) = event_time(&raw_time, zone) else {
            out.rejected
                .push(Rejected::new(line, format!("eventtime: {raw_time:?} is not a time")));
            continue;
        };
        let e = Event { line, at, values };
        if e.get("linkedid").is_empty() || e.kind().is_empty() {
            out.rejected
                .push(Rejected::new(line, "an event without eventtype or linkedid"));
            continue;
        }
        events.push(e);
    }
    // Calls in the order they began; events in time order (dumps are not always sorted).
    let mut calls: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        calls.entry(e.get("linkedid").to_string()).or_default().push(e);
    }
    let mut calls: Vec<(String, Vec<Event>)> = calls.into_iter().collect();
    for (_, events) in &mut calls {
        events.sort_by_key(|e| (e.at, e.line));
    }
    calls.sort_by_key(|(_, events)| events[0].at);
    for (linkedid, events) in calls {
        let line = events.iter().map(|e| e.line).max().unwrap_or(1);
        match call(&linkedid, &events, settings) {
            Some(p) => out.patches.push((line, p)),
            None => out.skipped.push(Rejected::new(
                line,
                format!("call {linkedid}: an internal call; internal_calls is skip"),
            )),
        }
    }
    out
}

fn is_local(channel: &str) -> bool {
    channel.to_ascii_lowercase().starts_with("local/")
}

/// The hangup's cause: Asterisk 12+ JSON (`{"hangupcause":17,"dialstatus":"BUSY"}`) or the
/// older `cause,source,dialstatus`.
fn hangup(extra: &str) -> Failure {
    let (cause, dialstatus) = match serde_json::from_str::<serde_json::Value>(extra) {
        Ok(v) => (
            v["hangupcause"].as_i64().unwrap_or(0),
            v["dialstatus"].as_str().unwrap_or("").to_string(),
        ),
        Err(_) => {
            let mut parts = extra.split(',');
            let cause = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
            (cause, parts.nth(1).unwrap_or("").trim().to_string())
        }
    };
    match dialstatus.as_str() {
        "BUSY" => return Failure::Busy,
        "NOANSWER" => return Failure::NoAnswer,
        "CANCEL" => return Failure::Cancelled,
        "CONGESTION" | "CHANUNAVAIL" => return Failure::Unavailable,
        _ => {}
    }
    match cause {
        17 => Failure::Busy,
        18 | 19 => Failure::NoAnswer,
        21 => Failure::Rejected,
        1 | 3 | 22 | 28 => Failure::InvalidNumber,
        20 | 27 | 38 => Failure::Unavailable,
        0 | 16 | 26 | 31 => Failure::Cleared,
        _ => Failure::Other,
    }
}

/// One call from its events (in time order).
fn call(linkedid: &str, events: &[Event], settings: &PbxSettings) -> Option<CallPatch> {
    let starts: Vec<&Event> = events.iter().filter(|e| e.kind() == "CHAN_START").collect();
    // The caller's channel: the one whose uniqueid is the linkedid, else the first one started.
    let origin = events
        .iter()
        .find(|e| e.get("uniqueid") == linkedid)
        .or(starts.first().copied())
        .unwrap_or(&events[0])
        .channel()
        .to_string();
    fn of<'a>(events: &'a [Event], channel: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
        events.iter().filter(move |e| e.channel() == channel)
    }
    let first_of = |channel: &str, name: &str| {
        of(events, channel)
            .map(|e| e.get(name))
            .find(|v| !v.is_empty())
            .unwrap_or_default()
            .to_string()
    };
    let origin_start = of(events, &origin).find(|e| e.kind() == "CHAN_START");
    let caller = first_of(&origin, "cid_num");
    let caller_name = first_of(&origin, "cid_name");
    let context = origin_start.map(|e| e.get("context")).unwrap_or_default().to_string();
    let dialled = |e: &Event| Some(e.get("exten").to_string()).filter(|x| !x.is_empty() && x != "s");
    let mut callees: Vec<String> = Vec::new();
    for e in &starts {
        if e.channel() != origin && !callees.iter().any(|c| c == e.channel()) {
            callees.push(e.channel().to_string());
        }
    }
    // Answered: a called channel answered and a bridge was made.
    let bridged = events
        .iter()
        .any(|e| matches!(e.kind(), "BRIDGE_ENTER" | "BRIDGE_START"));
    let answer = |channel: &str| of(events, channel).find(|e| e.kind() == "ANSWER").map(|e| e.at);
    let answering = callees
        .iter()
        .filter_map(|c| answer(c).map(|at| (at, c.clone())))
        .filter(|_| bridged)
        .min();
    let answering_phone = callees
        .iter()
        .filter(|c| !is_local(c))
        .filter_map(|c| answer(c).map(|at| (at, c.clone())))
        .filter(|_| bridged)
        .min()
        .map(|(_, c)| c);
    let callee = origin_start
        .and_then(dialled)
        .or_else(|| {
            callees
                .iter()
                .filter(|c| !is_local(c))
                .find_map(|c| Some(first_of(c, "cid_num")).filter(|n| !n.is_empty()))
        })
        .unwrap_or_default();
    let kinds: Vec<&str> = events.iter().map(Event::kind).collect();
    let caller_party = if settings.is_external_context(&context) || kinds.contains(&"XIVO_INCALL") {
        Party::External
    } else if caller.is_empty() {
        Party::Own
    } else {
        settings.party(&caller)
    };
    let callee_party = if kinds.contains(&"XIVO_OUTCALL") {
        Party::External
    } else if callee.is_empty() {
        Party::Own
    } else {
        settings.party(&callee)
    };
    let kind = settings.kind(caller_party, callee_party)?;
    let answered = match kind {
        CallKind::Incoming => answering_phone.is_some(),
        _ => answering.is_some(),
    };
    let answered_at = match kind {
        CallKind::Incoming => answering_phone.as_deref().and_then(answer),
        _ => answering.as_ref().map(|(at, _)| *at),
    };
    let offered = !callees.is_empty()
        || events
            .iter()
            .any(|e| e.kind() == "APP_START" && matches!(e.get("appname"), "Dial" | "Queue"));
    let failure = of(events, &origin)
        .find(|e| e.kind() == "HANGUP")
        .map_or(Failure::Cleared, |e| hangup(e.get("extra")));
    let result = pbx::result(kind, answered, offered, failure);
    let (operator, operator_name) = match kind {
        CallKind::Incoming => match &answering_phone {
            Some(c) => {
                let number = first_of(c, "cid_num");
                let name = first_of(c, "cid_name");
                let id = Some(number)
                    .filter(|n| !n.is_empty() && settings.party(n) == Party::Own)
                    .or_else(|| endpoint(c));
                (id, Some(name).filter(|n| !n.is_empty()))
            }
            None => (None, None),
        },
        _ => {
            let id = Some(caller.clone())
                .filter(|c| !c.is_empty())
                .or_else(|| endpoint(&origin));
            (id, Some(caller_name).filter(|n| !n.is_empty()))
        }
    };
    let queue = events
        .iter()
        .find(|e| e.kind() == "APP_START" && e.get("appname") == "Queue")
        .and_then(|e| e.get("appdata").split(',').next().map(str::to_string))
        .filter(|q| !q.is_empty());
    let started = starts.first().map_or(events[0].at, |e| e.at);
    let ended = events
        .iter()
        .find(|e| e.kind() == "LINKEDID_END")
        .map_or_else(|| events[events.len() - 1].at, |e| e.at);
    let recording = events.iter().filter(|e| e.kind() == "MIXMONITOR_START").find_map(|e| {
        serde_json::from_str::<serde_json::Value>(e.get("extra"))
            .ok()
            .and_then(|v| v["filename"].as_str().map(String::from))
    });
    let log: Vec<String> = events
        .iter()
        .map(|e| {
            let app = match (e.get("appname"), e.get("appdata")) {
                ("", _) => String::new(),
                (a, d) => format!(" {a}({d})"),
            };
            clip(
                format!(
                    "{} {} {} {} {} {}{app} {}",
                    e.get("eventtime"),
                    e.kind(),
                    e.channel(),
                    e.get("cid_num"),
                    e.get("exten"),
                    e.get("context"),
                    e.get("extra")
                )
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_str(),
                8_000,
            )
        })
        .collect();
    let flow = events
        .iter()
        .filter(|e| {
            !matches!(
                e.kind(),
                "CHAN_START" | "CHAN_END" | "LINKEDID_END" | "APP_END" | "BRIDGE_EXIT" | "BRIDGE_END"
            )
        })
        .map(|e| FlowStep {
            at: e.at,
            block: clip(
                if e.kind() == "APP_START" && !e.get("appname").is_empty() {
                    e.get("appname")
                } else {
                    e.kind()
                },
                256,
            ),
            kind: Some("event".into()),
            outcome: Some(clip(e.channel(), 256)).filter(|c| !c.is_empty()),
        })
        .collect();
    let call = PbxCall {
        external_id: linkedid.to_string(),
        kind,
        from: caller,
        to: callee,
        started,
        answered_at,
        ended: Some(ended),
        result,
        operator,
        operator_name,
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

    #[test]
    fn times_with_and_without_offsets() {
        let utc = Tz::UTC;
        let t = |s: &str| event_time(s, utc).map(|t| t.to_rfc3339());
        assert_eq!(
            t("1335310195.513823").as_deref(),
            Some("2012-04-24T23:29:55.513823+00:00")
        );
        assert_eq!(
            t("2021-07-19 11:12:54.764512-04").as_deref(),
            Some("2021-07-19T15:12:54.764512+00:00")
        );
        assert_eq!(
            t("2021-02-10 15:39:11.425631+00").as_deref(),
            Some("2021-02-10T15:39:11.425631+00:00")
        );
        assert_eq!(t("2013-01-01 11:02:38.0").as_deref(), Some("2013-01-01T11:02:38+00:00"));
        assert_eq!(t("2015-06-18 14:12:05").as_deref(), Some("2015-06-18T14:12:05+00:00"));
        assert_eq!(t("yesterday"), None);
    }

    #[test]
    fn hangup_causes() {
        assert_eq!(
            hangup(r#"{"hangupcause":17,"hangupsource":"","dialstatus":""}"#),
            Failure::Busy
        );
        assert_eq!(
            hangup(r#"{"hangupcause":0,"hangupsource":"","dialstatus":"CANCEL"}"#),
            Failure::Cancelled
        );
        assert_eq!(hangup("16,dialplan/builtin,ANSWER"), Failure::Cleared);
        assert_eq!(hangup("19,,NOANSWER"), Failure::NoAnswer);
        assert_eq!(hangup(""), Failure::Cleared);
    }
}
