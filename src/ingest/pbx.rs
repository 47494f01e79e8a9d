//! What a PBX's records mean in calltrail's model, whatever the PBX: which parties are the
//! contact center's own, the business direction and call kind that follow, and the attempt
//! result a hangup cause or disposition stands for. The per-source tables are in
//! `docs/connect-your-pbx.md`; the parsers (`freeswitch`, `asterisk`) only read their format and
//! ask this module what it means.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::clip;
use crate::domain::record::{FlowStep, ScenarioRef};
use crate::domain::{AttemptResult, CallKind, CallPatch, FieldError};

/// An account's answers to "which numbers are ours", as configured with
/// `PUT /api/v1/integrations/pbx`. The defaults suit a PBX whose extensions are short numbers
/// and whose trunks arrive in the usual inbound contexts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PbxSettings {
    /// A number of at most this many digits is an extension (1–9; default 5).
    pub extension_max_digits: u8,
    /// The contact center's own external numbers (DIDs): a call from one of them is outgoing.
    pub own_numbers: Vec<String>,
    /// Dialplan contexts that calls from outside enter (FreeSWITCH's `public`, FreePBX's
    /// `from-trunk`…): a call that began in one is incoming, whatever its caller's number.
    pub external_contexts: Vec<String>,
    /// What becomes of a call between two of the contact center's own parties.
    pub internal_calls: InternalCalls,
    /// Where recordings the PBX wrote can be downloaded: `{name}` is replaced by the file's name,
    /// `{path}` by its path as the PBX logged it (`https://pbx.example.com/recordings/{name}`).
    /// Without it a recording's path is only noted in the call's log.
    pub recording_url_template: Option<String>,
    /// The time zone of the PBX's local time stamps (Asterisk CDR, FreeSWITCH CSV); null: the
    /// account's time zone.
    pub timezone: Option<String>,
}

impl Default for PbxSettings {
    fn default() -> Self {
        PbxSettings {
            extension_max_digits: 5,
            own_numbers: Vec::new(),
            external_contexts: [
                "public",
                "from-trunk",
                "from-pstn",
                "from-external",
                "from-extern",
                "from-did",
            ]
            .map(String::from)
            .to_vec(),
            internal_calls: InternalCalls::Outgoing,
            recording_url_template: None,
            timezone: None,
        }
    }
}

/// Calls from one of the contact center's own parties to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InternalCalls {
    /// Kept as the caller's outgoing call (`softphone_outgoing`, the caller its operator): a
    /// consultation or a colleague's call is part of an operator's day.
    Outgoing,
    /// Not kept; counted as skipped.
    Skip,
}

/// One side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Own,
    External,
}

impl PbxSettings {
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(1..=9).contains(&self.extension_max_digits) {
            return Err(FieldError::new("extension_max_digits", "must be from 1 to 9"));
        }
        for (i, n) in self.own_numbers.iter().enumerate() {
            if digits(n).len() < 3 {
                return Err(FieldError::new(
                    format!("own_numbers[{i}]"),
                    format!("{n:?} is not a phone number (at least 3 digits)"),
                ));
            }
        }
        if let Some(t) = &self.recording_url_template {
            let lower = t.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(FieldError::new(
                    "recording_url_template",
                    "must start with http:// or https://",
                ));
            }
            if !t.contains("{name}") && !t.contains("{path}") {
                return Err(FieldError::new(
                    "recording_url_template",
                    "must contain {name} or {path}",
                ));
            }
        }
        if let Some(tz) = &self.timezone {
            tz.parse::<Tz>()
                .map_err(|_| FieldError::new("timezone", format!("unknown time zone {tz:?}")))?;
        }
        Ok(())
    }

    /// Whether `number` is one of ours: an extension (all digits and short, or a SIP user name
    /// such as `alice`) or an own number.
    pub fn party(&self, number: &str) -> Party {
        let number = number.trim();
        let d = digits(number);
        let all_digits = !number.is_empty() && number.chars().all(|c| c.is_ascii_digit());
        if all_digits && number.len() <= usize::from(self.extension_max_digits) {
            return Party::Own;
        }
        let user_name = !number.is_empty()
            && d.is_empty()
            && !number.starts_with('+')
            && !ANONYMOUS.iter().any(|a| a.eq_ignore_ascii_case(number));
        if user_name {
            return Party::Own;
        }
        let own = !d.is_empty() && self.own_numbers.iter().any(|n| digits(n) == d);
        if own {
            Party::Own
        } else {
            Party::External
        }
    }

    pub fn is_external_context(&self, context: &str) -> bool {
        self.external_contexts.iter().any(|c| c.eq_ignore_ascii_case(context))
    }

    /// The call kind for a caller and callee; `None` for an internal call that is skipped.
    pub fn kind(&self, caller: Party, callee: Party) -> Option<CallKind> {
        match (caller, callee) {
            (Party::External, _) => Some(CallKind::Incoming),
            (Party::Own, Party::External) => Some(CallKind::SoftphoneOutgoing),
            (Party::Own, Party::Own) => match self.internal_calls {
                InternalCalls::Outgoing => Some(CallKind::SoftphoneOutgoing),
                InternalCalls::Skip => None,
            },
        }
    }

    /// The address a recording the PBX wrote at `path` is downloaded from, when configured.
    pub fn recording_url(&self, path: &str) -> Option<String> {
        let template = self.recording_url_template.as_deref()?;
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let encode = |s: &str| percent_encoding::utf8_percent_encode(s, PATH_PART).to_string();
        let path_part = path.split('/').map(encode).collect::<Vec<_>>().join("/");
        Some(template.replace("{name}", &encode(name)).replace("{path}", &path_part))
    }

    /// The zone of the PBX's local time stamps.
    pub fn zone(&self, account_zone: &str) -> Tz {
        self.timezone
            .as_deref()
            .unwrap_or(account_zone)
            .parse()
            .unwrap_or(Tz::UTC)
    }
}

/// What a withheld caller ID is written as.
const ANONYMOUS: [&str; 6] = ["anonymous", "unknown", "restricted", "private", "unavailable", "s"];

/// A PBX call as a source's reader understood it: what every source says of a call, in one
/// place becoming the patch that is stored.
#[derive(Debug, Clone)]
pub struct PbxCall {
    pub external_id: String,
    pub kind: CallKind,
    /// Empty when the source has no number.
    pub from: String,
    pub to: String,
    /// Dialling (outgoing) or the scenario (incoming) began.
    pub started: DateTime<Utc>,
    /// When somebody picked up (nobody: `None`).
    pub answered_at: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    pub result: AttemptResult,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub queue: Option<String>,
    pub scenario: Option<ScenarioRef>,
    /// The recording's path as the PBX logged it.
    pub recording: Option<String>,
    pub flow: Vec<FlowStep>,
    pub log: Vec<String>,
}

impl PbxCall {
    /// The patch: values cut to the stored limits, the recording's path made a URL through the
    /// account's template (or named in the log without one), the start by kind.
    pub fn into_patch(self, settings: &PbxSettings) -> CallPatch {
        let recording_url = self
            .recording
            .as_deref()
            .and_then(|p| settings.recording_url(p))
            .filter(|u| u.len() <= 2_000);
        let mut log = self.log;
        if let (Some(path), None) = (&self.recording, &recording_url) {
            log.push(clip(&format!("recording on the PBX: {path}"), 8_000));
        }
        log.truncate(10_000);
        let mut flow = self.flow;
        flow.truncate(1_000);
        let number = |n: &str| Some(Some(clip(n, 64)).filter(|n| !n.is_empty()));
        let mut patch = CallPatch {
            external_id: clip(&self.external_id, 128),
            kind: Some(self.kind),
            from: number(&self.from),
            to: number(&self.to),
            answered_at: Some(self.answered_at),
            ended_at: Some(self.ended),
            result: Some(Some(self.result)),
            operator: Some(self.operator.map(|o| clip(&o, 128))),
            operator_name: self.operator_name.map(|n| clip(&n, 256)),
            queue: Some(self.queue.map(|q| clip(&q, 128))),
            scenario: self.scenario.map(Some),
            recording_url: recording_url.map(Some),
            flow: Some(flow),
            log: Some(log),
            ..CallPatch::default()
        };
        match self.kind {
            CallKind::Incoming => patch.scenario_started_at = Some(Some(self.started)),
            _ => patch.dial_started_at = Some(Some(self.started)),
        }
        patch
    }
}

/// What is escaped in one segment of a recording's path.
const PATH_PART: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// How an attempt that was not picked up ended, as every source can say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Busy,
    NoAnswer,
    Rejected,
    InvalidNumber,
    Unavailable,
    /// The caller gave up (SIP CANCEL) before anybody picked up.
    Cancelled,
    /// The call ended normally, without anybody picking up.
    Cleared,
    Other,
}

/// A FreeSWITCH hangup cause (the Q.850 names it writes in `hangup_cause`).
pub fn freeswitch_cause(cause: &str) -> Failure {
    match cause {
        "USER_BUSY" | "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" => Failure::Busy,
        "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" | "PROGRESS_TIMEOUT" => Failure::NoAnswer,
        "CALL_REJECTED" | "USER_CHALLENGE" | "OUTGOING_CALL_BARRED" | "INCOMING_CALL_BARRED" => Failure::Rejected,
        "UNALLOCATED_NUMBER"
        | "NO_ROUTE_DESTINATION"
        | "NO_ROUTE_TRANSIT_NET"
        | "INVALID_NUMBER_FORMAT"
        | "NUMBER_CHANGED"
        | "REDIRECTION_TO_NEW_DESTINATION" => Failure::InvalidNumber,
        "SUBSCRIBER_ABSENT"
        | "USER_NOT_REGISTERED"
        | "DESTINATION_OUT_OF_ORDER"
        | "NETWORK_OUT_OF_ORDER"
        | "GATEWAY_DOWN"
        | "MEDIA_TIMEOUT" => Failure::Unavailable,
        "ORIGINATOR_CANCEL" | "LOSE_RACE" | "PICKED_OFF" => Failure::Cancelled,
        "NORMAL_CLEARING" | "NORMAL_UNSPECIFIED" | "" => Failure::Cleared,
        _ => Failure::Other,
    }
}

/// An Asterisk CDR `disposition`.
pub fn asterisk_disposition(disposition: &str) -> Failure {
    match disposition.trim().to_ascii_uppercase().as_str() {
        "BUSY" => Failure::Busy,
        "NO ANSWER" | "NOANSWER" => Failure::NoAnswer,
        "CONGESTION" | "CHANUNAVAIL" => Failure::Unavailable,
        "CANCEL" => Failure::Cancelled,
        _ => Failure::Other,
    }
}

/// The attempt result of a call. `answered`: somebody (an operator, the callee) picked up;
/// `offered`: an incoming call was put through to an operator, a queue or a group (not just
/// played a menu); `failure`: how it ended otherwise.
pub fn result(kind: CallKind, answered: bool, offered: bool, failure: Failure) -> AttemptResult {
    if answered {
        return AttemptResult::Answered;
    }
    if kind == CallKind::Incoming {
        // Incoming calls are judged by whether an operator took them (spec §2.2).
        return if offered {
            AttemptResult::LostByOperator
        } else {
            AttemptResult::EndedInIvr
        };
    }
    match failure {
        Failure::Busy => AttemptResult::Busy,
        Failure::NoAnswer => AttemptResult::NoAnswer,
        Failure::Rejected => AttemptResult::Rejected,
        Failure::InvalidNumber => AttemptResult::InvalidNumber,
        Failure::Unavailable => AttemptResult::Unavailable,
        Failure::Cancelled | Failure::Cleared => AttemptResult::RequestCancelled,
        Failure::Other => AttemptResult::OtherError,
    }
}

/// A local time stamp (`YYYY-MM-DD HH:MM:SS`) in `zone`; a time skipped by a clock change is
/// refused, a repeated one is read as the earlier.
pub fn local_time(text: &str, zone: Tz) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Microseconds since the epoch, as FreeSWITCH writes them; 0 and blanks are "never".
pub fn micros(text: &str) -> Option<DateTime<Utc>> {
    let us: i64 = text.trim().parse().ok().filter(|&v| v > 0)?;
    DateTime::from_timestamp_micros(us)
}

/// Seconds since the epoch, with an optional fraction (`1335310195.513823`).
pub fn epoch_seconds(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = whole.parse().ok().filter(|&v| v > 0)?;
    let frac = format!("{:0<6}", frac.get(..frac.len().min(6))?);
    let us: i64 = frac.parse().ok()?;
    DateTime::from_timestamp_micros(secs * 1_000_000 + us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parties_by_number() {
        let s = PbxSettings {
            own_numbers: vec!["+7 (495) 111-22-33".into()],
            ..PbxSettings::default()
        };
        assert_eq!(s.party("1001"), Party::Own);
        assert_eq!(s.party("12345"), Party::Own);
        assert_eq!(s.party("123456"), Party::External);
        assert_eq!(s.party("74951112233"), Party::Own);
        assert_eq!(s.party("anonymous"), Party::External);
        assert_eq!(s.party("alice"), Party::Own);
        assert_eq!(s.party(""), Party::External);
        assert_eq!(s.kind(Party::Own, Party::Own), Some(CallKind::SoftphoneOutgoing));
        let skip = PbxSettings {
            internal_calls: InternalCalls::Skip,
            ..PbxSettings::default()
        };
        assert_eq!(skip.kind(Party::Own, Party::Own), None);
        assert_eq!(skip.kind(Party::External, Party::Own), Some(CallKind::Incoming));
    }

    #[test]
    fn results_by_kind() {
        use AttemptResult as R;
        let out = CallKind::SoftphoneOutgoing;
        assert_eq!(result(out, false, false, freeswitch_cause("USER_BUSY")), R::Busy);
        assert_eq!(
            result(out, false, false, freeswitch_cause("ORIGINATOR_CANCEL")),
            R::RequestCancelled
        );
        assert_eq!(
            result(out, false, false, freeswitch_cause("UNALLOCATED_NUMBER")),
            R::InvalidNumber
        );
        assert_eq!(
            result(out, false, false, freeswitch_cause("SUBSCRIBER_ABSENT")),
            R::Unavailable
        );
        assert_eq!(
            result(out, false, false, freeswitch_cause("CALL_REJECTED")),
            R::Rejected
        );
        assert_eq!(
            result(out, false, false, freeswitch_cause("RECOVERY_ON_TIMER_EXPIRE")),
            R::OtherError
        );
        assert_eq!(
            result(out, true, false, freeswitch_cause("NORMAL_CLEARING")),
            R::Answered
        );
        assert_eq!(
            result(out, false, false, asterisk_disposition("NO ANSWER")),
            R::NoAnswer
        );
        let inc = CallKind::Incoming;
        assert_eq!(result(inc, false, true, Failure::Cancelled), R::LostByOperator);
        assert_eq!(result(inc, false, false, Failure::Cleared), R::EndedInIvr);
    }

    #[test]
    fn settings_are_checked() {
        let bad = |s: PbxSettings| s.validate().unwrap_err().field;
        assert_eq!(
            bad(PbxSettings {
                extension_max_digits: 0,
                ..Default::default()
            }),
            "extension_max_digits"
        );
        assert_eq!(
            bad(PbxSettings {
                own_numbers: vec!["12".into()],
                ..Default::default()
            }),
            "own_numbers[0]"
        );
        let t = |t: &str| PbxSettings {
            recording_url_template: Some(t.into()),
            ..Default::default()
        };
        assert_eq!(bad(t("ftp://x/{name}")), "recording_url_template");
        assert_eq!(bad(t("https://x/rec")), "recording_url_template");
        assert_eq!(
            bad(PbxSettings {
                timezone: Some("Mars/Olympus".into()),
                ..Default::default()
            }),
            "timezone"
        );
        let s = t("https://pbx/rec/{name}?p={path}");
        assert_eq!(
            s.recording_url("/var/rec/a b.wav").as_deref(),
            Some("https://pbx/rec/a%20b.wav?p=/var/rec/a%20b.wav")
        );
    }

    #[test]
    fn times() {
        let moscow: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            local_time("2013-03-04 13:11:18", moscow).unwrap().to_rfc3339(),
            "2013-03-04T09:11:18+00:00"
        );
        assert_eq!(local_time("2013-04-13:12:08", moscow), None);
        assert_eq!(
            micros("1368707608847154").unwrap().timestamp_micros(),
            1_368_707_608_847_154
        );
        assert_eq!(micros("0"), None);
        assert_eq!(
            epoch_seconds("1335310195.513823").unwrap().timestamp_micros(),
            1_335_310_195_513_823
        );
        assert_eq!(epoch_seconds("1366720340").unwrap().timestamp(), 1_366_720_340);
    }
}
