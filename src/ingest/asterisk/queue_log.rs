//! Asterisk's queue log (`/var/log/asterisk/queue_log`): `epoch|callid|queue|agent|event|data…`.
//! The lines of one caller (`callid`, the caller channel's uniqueid) from ENTERQUEUE to its last
//! event make one patch: queue, the operator who took the call, when, and how it ended. The
//! callid is the external id the call's CDR rows (grouped by linkedid) carry too, so a queue log
//! and a CDR of the same call merge into one record.

use chrono::{DateTime, Utc};

use super::endpoint;
use crate::domain::record::FlowStep;
use crate::domain::{AttemptResult, CallKind, CallPatch};
use crate::ingest::pbx;
use crate::ingest::{clip, Parsed, Rejected};

/// Events that end a caller's stay in the queue.
const TERMINAL: [&str; 10] = [
    "COMPLETECALLER",
    "COMPLETEAGENT",
    "ABANDON",
    "EXITWITHTIMEOUT",
    "EXITEMPTY",
    "EXITWITHKEY",
    "TRANSFER",
    "BLINDTRANSFER",
    "ATTENDEDTRANSFER",
    "SYSCOMPAT",
];

/// Call ids of lines about the queue system rather than a caller.
const NOT_A_CALL: [&str; 4] = ["NONE", "MANAGER", "CLI", "REALTIME"];

/// What is known of one caller's stay in a queue.
#[derive(Debug, Default)]
struct Stay {
    callid: String,
    queue: Option<String>,
    entered: Option<(DateTime<Utc>, String)>,
    rang: bool,
    connected: Option<(DateTime<Utc>, String, String)>,
    ended: Option<(DateTime<Utc>, String)>,
    lines: Vec<String>,
    flow: Vec<FlowStep>,
    last_line: usize,
}

/// Reads a queue log. Lines of calls still waiting at the end are kept as they are (their call
/// gets what is known so far).
pub fn parse(text: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    // By callid: a busy queue log has many callers waiting at once.
    let mut open: std::collections::HashMap<String, Stay> = std::collections::HashMap::new();
    for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let Ok(raw) = std::str::from_utf8(raw) else {
            out.rejected.push(Rejected::new(line, "not UTF-8 text"));
            continue;
        };
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = raw.split('|').collect();
        if fields.len() < 5 {
            out.rejected.push(Rejected::new(
                line,
                format!(
                    "{} fields; a queue log line is epoch|callid|queue|agent|event|data…",
                    fields.len()
                ),
            ));
            continue;
        }
        let Some(at) = pbx::epoch_seconds(fields[0]) else {
            out.rejected.push(Rejected::new(
                line,
                format!("time: {:?} is not epoch seconds", fields[0]),
            ));
            continue;
        };
        let (callid, queue, agent, event) = (fields[1].trim(), fields[2].trim(), fields[3].trim(), fields[4].trim());
        let data = &fields[5..];
        if callid.is_empty() || NOT_A_CALL.contains(&callid) {
            continue;
        }
        let stay = open.entry(callid.to_string()).or_insert_with(|| Stay {
            callid: callid.to_string(),
            ..Stay::default()
        });
        stay.last_line = line;
        if !queue.is_empty() && queue != "NONE" {
            stay.queue.get_or_insert_with(|| queue.to_string());
        }
        let member = endpoint(agent).unwrap_or_else(|| agent.to_string());
        let arg = |i: usize| data.get(i).map(|d| d.trim()).unwrap_or_default();
        match event {
            "ENTERQUEUE" => stay.entered = Some((at, arg(1).to_string())),
            "RINGNOANSWER" | "RINGCANCELED" => stay.rang = true,
            "CONNECT" => stay.connected = Some((at, member.clone(), arg(0).to_string())),
            e if TERMINAL.contains(&e) => stay.ended = Some((at, e.to_string())),
            _ => {}
        }
        stay.lines.push(clip(raw, 8_000));
        stay.flow.push(FlowStep {
            at,
            block: clip(event, 256),
            kind: Some("queue".into()),
            outcome: Some(clip(format!("{queue} {member} {}", data.join(" ")).trim(), 256)),
        });
        if stay.ended.is_some() {
            if let Some(done) = open.remove(callid) {
                out.patches.push((done.last_line, done.patch()));
            }
        }
    }
    // Still waiting at the end, in the order of their last lines.
    let mut waiting: Vec<Stay> = open.into_values().collect();
    waiting.sort_by_key(|s| s.last_line);
    out.patches
        .extend(waiting.into_iter().map(|s| (s.last_line, s.patch())));
    out
}

impl Stay {
    fn patch(self) -> CallPatch {
        let mut p = CallPatch {
            external_id: clip(&self.callid, 128),
            queue: self.queue.map(|q| Some(clip(&q, 128))),
            log: Some(self.lines),
            flow: Some(self.flow),
            ..CallPatch::default()
        };
        if let Some((at, caller)) = &self.entered {
            p.kind = Some(CallKind::Incoming);
            p.scenario_started_at = Some(Some(*at));
            let caller = caller.trim();
            if !caller.is_empty() && !caller.eq_ignore_ascii_case("unknown") {
                p.from = Some(Some(clip(caller, 64)));
            }
        }
        if let Some((at, agent, _wait)) = &self.connected {
            p.answered_at = Some(Some(*at));
            p.operator = Some(Some(clip(agent, 128)));
            p.result = Some(Some(AttemptResult::Answered));
        }
        if let Some((at, event)) = &self.ended {
            p.ended_at = Some(Some(*at));
            if self.connected.is_none() {
                let unanswered = match event.as_str() {
                    // Rang an operator who did not pick up, then the caller left or timed out.
                    _ if self.rang => AttemptResult::LostByOperator,
                    "SYSCOMPAT" => AttemptResult::OtherError,
                    _ => AttemptResult::Abandoned,
                };
                p.result = Some(Some(unanswered));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_from_entry_to_the_end() {
        let log = b"1366720300|1366720300.1|sales|NONE|ENTERQUEUE||+74951112233|1\n\
            1366720310|1366720300.1|sales|SIP/8007|RINGNOANSWER|10000\n\
            1366720320|1366720300.1|sales|SIP/8008|CONNECT|20|1366720311.2|4000\n\
            1366720400|1366720300.1|sales|SIP/8008|COMPLETECALLER|20|80|1\n\
            1366720500|NONE|sales|SIP/8008|PAUSE|\n\
            1366720600|1366720600.3|sales|NONE|ENTERQUEUE||79161234567|1\n\
            1366720605|1366720600.3|sales|SIP/8007|RINGNOANSWER|5000\n\
            1366720630|1366720600.3|sales|NONE|ABANDON|1|1|30\n\
            1366720700|1366720700.4|sales|NONE|ENTERQUEUE||79161234568|1\n\
            1366720760|1366720700.4|sales|NONE|EXITWITHTIMEOUT|1|1|60\n\
            garbage\n";
        let parsed = parse(log);
        assert_eq!(
            parsed.rejected,
            [Rejected::new(
                11,
                "1 fields; a queue log line is epoch|callid|queue|agent|event|data…"
            )]
        );
        let p: Vec<_> = parsed.patches.iter().map(|(_, p)| p).collect();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].operator, Some(Some("8008".into())));
        assert_eq!(p[0].from, Some(Some("+74951112233".into())));
        assert_eq!(p[0].result, Some(Some(AttemptResult::Answered)));
        assert_eq!(p[0].answered_at.unwrap().unwrap().timestamp(), 1_366_720_320);
        assert_eq!(p[0].ended_at.unwrap().unwrap().timestamp(), 1_366_720_400);
        assert_eq!(p[1].result, Some(Some(AttemptResult::LostByOperator)));
        assert_eq!(p[2].result, Some(Some(AttemptResult::Abandoned)));
        assert_eq!(p[2].queue, Some(Some("sales".into())));
    }
}
