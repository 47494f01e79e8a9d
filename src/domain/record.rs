//! A call as the telephony tells it (`CallPatch`), and as calltrail keeps it (`CallRecord`).
//!
//! A patch carries only the fields its sender knew; `merge` lays it over what was stored. Fields
//! present replace, `null` clears, absent fields stay; tags and topics are sets; notes are added
//! by their own id. Directory entities are referred to by their keys (login, name, the sender's
//! id), so merging never needs the database.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::call::{AttemptResult, CallKind, ScenarioKind};
use super::duration::{self, Durations, Timeline};
use super::FieldError;

/// Longest accepted text values, so one bad sender cannot bloat the store.
const MAX_ID: usize = 128;
const MAX_NAME: usize = 256;
const MAX_NUMBER: usize = 64;
const MAX_NOTE: usize = 10_000;
const MAX_URL: usize = 2_000;
const MAX_FLOW_STEPS: usize = 1_000;
const MAX_LOG_LINES: usize = 10_000;
const MAX_LOG_LINE: usize = 8_192;

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// An amount with exactly four decimal places, held as an integer of ten-thousandths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "serde_json::Value", into = "String")]
#[schema(value_type = String, example = "1.2500")]
pub struct Money(pub i64);

impl Money {
    pub fn parse(s: &str) -> Option<Money> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let valid = |p: &str| p.chars().all(|c| c.is_ascii_digit());
        if int.is_empty() || int.len() > 12 || frac.len() > 4 || !valid(int) || !valid(frac) {
            return None;
        }
        let frac_e4: i64 = format!("{frac:0<4}").parse().ok()?;
        let value = int.parse::<i64>().ok()? * 10_000 + frac_e4;
        Some(Money(if neg { -value } else { value }))
    }
}

impl TryFrom<serde_json::Value> for Money {
    type Error = String;
    fn try_from(v: serde_json::Value) -> Result<Self, Self::Error> {
        let text = match &v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => return Err("price must be a decimal string such as \"1.2500\"".into()),
        };
        Money::parse(&text).ok_or_else(|| format!("price {text:?} is not a decimal with at most 4 places"))
    }
}

impl From<Money> for String {
    fn from(m: Money) -> String {
        let sign = if m.0 < 0 { "-" } else { "" };
        let a = m.0.unsigned_abs();
        format!("{sign}{}.{:04}", a / 10_000, a % 10_000)
    }
}

/// A directory entity named by the sender: its key (sender's id) and display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ScenarioKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompletionCodeRef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub at: DateTime<Utc>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowStep {
    pub at: DateTime<Utc>,
    pub block: String,
    /// The block's type in the scenario editor (`menu`, `queue`, `connect`, `hangup`…).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What came of the block (`pressed 2`, `answered`, `timeout`…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// One record of `POST /api/v1/ingest/calls`: everything but `external_id` is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallPatch {
    pub external_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CallKind>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub from: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub to: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub started_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub dial_started_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub answered_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub scenario_started_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub amd_detected_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub ended_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u32>)]
    pub ring_seconds: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u32>)]
    pub talk_seconds: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AttemptResult>)]
    pub result: Option<Option<AttemptResult>>,
    /// The operator's login.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub operator: Option<Option<String>>,
    /// The operator's display name, used when the operator is first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_name: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub queue: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ScenarioRef>)]
    pub scenario: Option<Option<ScenarioRef>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NamedRef>)]
    pub campaign: Option<Option<NamedRef>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Money>)]
    pub price: Option<Option<Money>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<CompletionCodeRef>)]
    pub completion_code: Option<Option<CompletionCodeRef>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u32>)]
    pub attempts: Option<Option<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<Vec<Note>>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub recording_url: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Vec<FlowStep>>,
    /// Raw log lines of the call as the telephony wrote them; replaces the lines sent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<String>>,
}

/// A call as calltrail keeps it, with directory entities named by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub external_id: String,
    pub kind: Option<CallKind>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub started_at: Option<i64>,
    pub timeline: TimelineData,
    pub sent_ring: Option<u32>,
    pub sent_talk: Option<u32>,
    pub result: Option<AttemptResult>,
    pub operator: Option<String>,
    pub operator_name: Option<String>,
    pub group: Option<String>,
    pub queue: Option<String>,
    pub scenario: Option<ScenarioRef>,
    pub campaign: Option<NamedRef>,
    pub price: Option<Money>,
    pub currency: Option<String>,
    pub completion_code: Option<NamedRef>,
    pub callback_at: Option<i64>,
    pub attempts: Option<u32>,
    pub tags: BTreeSet<String>,
    pub topics: BTreeSet<String>,
    pub notes: Vec<Note>,
    pub recording_url: Option<String>,
    pub flow: Vec<FlowStep>,
    pub log: Vec<String>,
}

/// The stored instants (epoch ms), serialisable for the pending-update queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineData {
    pub dial_started_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub scenario_started_at: Option<i64>,
    pub amd_detected_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl From<TimelineData> for Timeline {
    fn from(t: TimelineData) -> Timeline {
        Timeline {
            dial_started_at: t.dial_started_at,
            answered_at: t.answered_at,
            scenario_started_at: t.scenario_started_at,
            amd_detected_at: t.amd_detected_at,
            ended_at: t.ended_at,
        }
    }
}

fn set<T>(slot: &mut Option<T>, patch: Option<Option<T>>) {
    if let Some(v) = patch {
        *slot = v;
    }
}

fn ms(t: Option<Option<DateTime<Utc>>>) -> Option<Option<i64>> {
    t.map(|v| v.map(|t| t.timestamp_millis()))
}

fn check_len(field: &str, v: Option<&str>, max: usize) -> Result<(), FieldError> {
    match v {
        Some(s) if s.chars().count() > max => Err(FieldError::new(
            field,
            format!("{field} is longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

fn check_key(field: &str, v: Option<&str>) -> Result<(), FieldError> {
    if v.is_some_and(|s| s.trim().is_empty()) {
        return Err(FieldError::new(field, format!("{field} must not be empty")));
    }
    check_len(field, v, MAX_ID)
}

impl CallPatch {
    /// Checks what can be checked on the patch alone (lengths, empty keys, shapes).
    pub fn validate(&self) -> Result<(), FieldError> {
        check_key("external_id", Some(&self.external_id))?;
        check_len("from", self.from.as_ref().and_then(|v| v.as_deref()), MAX_NUMBER)?;
        check_len("to", self.to.as_ref().and_then(|v| v.as_deref()), MAX_NUMBER)?;
        check_key("operator", self.operator.as_ref().and_then(|v| v.as_deref()))?;
        check_len("operator_name", self.operator_name.as_deref(), MAX_NAME)?;
        check_key("group", self.group.as_ref().and_then(|v| v.as_deref()))?;
        check_key("queue", self.queue.as_ref().and_then(|v| v.as_deref()))?;
        if let Some(Some(s)) = &self.scenario {
            check_key("scenario.id", Some(&s.id))?;
            check_len("scenario.name", s.name.as_deref(), MAX_NAME)?;
            check_len("scenario.url", s.url.as_deref(), MAX_URL)?;
        }
        if let Some(Some(c)) = &self.campaign {
            check_key("campaign.id", Some(&c.id))?;
            check_len("campaign.name", c.name.as_deref(), MAX_NAME)?;
        }
        if let Some(Some(c)) = &self.completion_code {
            check_key("completion_code.id", Some(&c.id))?;
            check_len("completion_code.name", c.name.as_deref(), MAX_NAME)?;
        }
        if let Some(Some(c)) = &self.currency {
            if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(FieldError::new(
                    "currency",
                    "currency must be a 3-letter ISO 4217 code such as RUB",
                ));
            }
        }
        if let Some(Some(a)) = self.attempts {
            if a > 1000 {
                return Err(FieldError::new("attempts", "attempts must be at most 1000"));
            }
        }
        for (field, secs) in [("ring_seconds", self.ring_seconds), ("talk_seconds", self.talk_seconds)] {
            if let Some(Some(s)) = secs {
                if s > super::filter::MAX_TALK_SECONDS {
                    return Err(FieldError::new(field, format!("{field} must be at most 86400")));
                }
            }
        }
        for (i, t) in self.tags.iter().flatten().enumerate() {
            check_key(&format!("tags[{i}]"), Some(t))?;
        }
        for (i, t) in self.topics.iter().flatten().enumerate() {
            check_key(&format!("topics[{i}]"), Some(t))?;
        }
        for (i, n) in self.notes.iter().flatten().enumerate() {
            check_key(&format!("notes[{i}].id"), Some(&n.id))?;
            check_len(&format!("notes[{i}].text"), Some(&n.text), MAX_NOTE)?;
        }
        check_len(
            "recording_url",
            self.recording_url.as_ref().and_then(|v| v.as_deref()),
            MAX_URL,
        )?;
        if let Some(Some(url)) = &self.recording_url {
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(FieldError::new(
                    "recording_url",
                    "a recording URL starts with http:// or https://",
                ));
            }
        }
        let flow = self.flow.as_deref().unwrap_or_default();
        if flow.len() > MAX_FLOW_STEPS {
            return Err(FieldError::new("flow", format!("at most {MAX_FLOW_STEPS} blocks")));
        }
        for (i, step) in flow.iter().enumerate() {
            check_len(&format!("flow[{i}].block"), Some(&step.block), MAX_NAME)?;
            check_len(&format!("flow[{i}].type"), step.kind.as_deref(), MAX_NAME)?;
            check_len(&format!("flow[{i}].outcome"), step.outcome.as_deref(), MAX_NAME)?;
        }
        let log = self.log.as_deref().unwrap_or_default();
        if log.len() > MAX_LOG_LINES {
            return Err(FieldError::new("log", format!("at most {MAX_LOG_LINES} lines")));
        }
        for (i, line) in log.iter().enumerate() {
            check_len(&format!("log[{i}]"), Some(line), MAX_LOG_LINE)?;
        }
        Ok(())
    }

    /// Whether this patch alone says enough for a call to exist: what kind it is and when it began.
    pub fn starts_a_call(&self) -> bool {
        let some = |t: &Option<Option<DateTime<Utc>>>| matches!(t, Some(Some(_)));
        self.kind.is_some()
            && (some(&self.started_at) || some(&self.dial_started_at) || some(&self.scenario_started_at))
    }
}

impl CallRecord {
    /// Lays `p` over this record.
    pub fn merge(&mut self, p: CallPatch) {
        self.external_id = p.external_id;
        if p.kind.is_some() {
            self.kind = p.kind;
        }
        set(&mut self.from, p.from);
        set(&mut self.to, p.to);
        set(&mut self.started_at, ms(p.started_at));
        let t = &mut self.timeline;
        set(&mut t.dial_started_at, ms(p.dial_started_at));
        set(&mut t.answered_at, ms(p.answered_at));
        set(&mut t.scenario_started_at, ms(p.scenario_started_at));
        set(&mut t.amd_detected_at, ms(p.amd_detected_at));
        set(&mut t.ended_at, ms(p.ended_at));
        set(&mut self.sent_ring, p.ring_seconds);
        set(&mut self.sent_talk, p.talk_seconds);
        set(&mut self.result, p.result);
        set(&mut self.operator, p.operator);
        if p.operator_name.is_some() {
            self.operator_name = p.operator_name;
        }
        set(&mut self.group, p.group);
        set(&mut self.queue, p.queue);
        set(&mut self.scenario, p.scenario);
        set(&mut self.campaign, p.campaign);
        set(&mut self.price, p.price);
        set(&mut self.currency, p.currency);
        if let Some(code) = p.completion_code {
            self.callback_at = code.as_ref().and_then(|c| c.callback_at).map(|t| t.timestamp_millis());
            self.completion_code = code.map(|c| NamedRef { id: c.id, name: c.name });
        }
        set(&mut self.attempts, p.attempts);
        if let Some(tags) = p.tags {
            self.tags = tags.into_iter().map(|t| t.trim().to_string()).collect();
        }
        if let Some(topics) = p.topics {
            self.topics = topics.into_iter().map(|t| normalise_topic(&t)).collect();
        }
        for note in p.notes.into_iter().flatten() {
            match self.notes.iter_mut().find(|n| n.id == note.id) {
                Some(existing) => *existing = note,
                None => self.notes.push(note),
            }
        }
        set(&mut self.recording_url, p.recording_url);
        if let Some(flow) = p.flow {
            self.flow = flow;
        }
        if let Some(log) = p.log {
            self.log = log;
        }
    }

    /// The call's timeline as the duration rules see it.
    pub fn timeline(&self) -> Timeline {
        self.timeline.into()
    }

    /// When the call began: as sent, else from the timeline by kind.
    pub fn start(&self) -> Option<i64> {
        self.started_at.or_else(|| self.timeline().start(self.kind?))
    }

    /// A record becomes a call once its kind and start are known.
    pub fn is_complete(&self) -> bool {
        self.kind.is_some() && self.start().is_some()
    }

    /// Checks the merged record: the timeline must be possible.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.timeline()
            .validate()
            .map_err(|e| FieldError::new(e.field, e.message))?;
        if let (Some(start), Some(end)) = (self.started_at, self.timeline.ended_at) {
            if end < start {
                return Err(FieldError::new("ended_at", "ended_at is before started_at"));
            }
        }
        Ok(())
    }

    /// Ring and talk seconds by the rules of spec §2.1.
    pub fn durations(&self) -> Durations {
        let sent = Durations {
            ring: self.sent_ring,
            talk: self.sent_talk.unwrap_or(0),
        };
        match self.kind {
            Some(kind) => duration::compute(kind, &self.timeline(), sent),
            None => sent,
        }
    }
}

/// Topics nest with `/`; spaces around the separators are not part of the names.
pub fn normalise_topic(t: &str) -> String {
    t.split('/')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> CallPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn absent_keeps_null_clears_value_replaces() {
        let mut r = CallRecord::default();
        r.merge(patch(r#"{"external_id":"a","kind":"incoming","queue":"q1","tags":["x","y"],"scenario_started_at":"2026-01-01T00:00:00Z"}"#));
        r.merge(patch(r#"{"external_id":"a","tags":["y","z"]}"#));
        assert_eq!(r.queue.as_deref(), Some("q1"));
        assert_eq!(r.tags.iter().map(String::as_str).collect::<Vec<_>>(), ["y", "z"]);
        r.merge(patch(r#"{"external_id":"a","queue":null}"#));
        assert_eq!(r.queue, None);
        assert!(r.is_complete());
    }

    #[test]
    fn patches_serialise_back_to_what_was_sent() {
        let json = r#"{"external_id":"a","queue":null,"price":"1.5000","tags":["x"]}"#;
        let p = patch(json);
        assert_eq!(serde_json::to_string(&p).unwrap(), json);
        assert_eq!(patch(&serde_json::to_string(&p).unwrap()), p);
    }

    #[test]
    fn notes_are_kept_by_id() {
        let mut r = CallRecord::default();
        let n =
            r#"{"external_id":"a","notes":[{"id":"n1","author":"ivanova","at":"2026-01-01T00:00:00Z","text":"hi"}]}"#;
        r.merge(patch(n));
        r.merge(patch(n));
        r.merge(patch(&n.replace("n1", "n2")));
        assert_eq!(r.notes.len(), 2);
    }

    #[test]
    fn money_has_four_places() {
        assert_eq!(Money::parse("1.25"), Some(Money(12_500)));
        assert_eq!(String::from(Money(12_500)), "1.2500");
        assert_eq!(String::from(Money(-5)), "-0.0005");
        assert_eq!(Money::parse("1.23456"), None);
        assert_eq!(Money::parse("abc"), None);
        assert!(serde_json::from_str::<CallPatch>(r#"{"external_id":"a","price":"x"}"#).is_err());
        let p = patch(r#"{"external_id":"a","price":2}"#);
        assert_eq!(p.price, Some(Some(Money(20_000))));
    }

    #[test]
    fn unknown_fields_and_values_are_rejected() {
        assert!(serde_json::from_str::<CallPatch>(r#"{"external_id":"a","opertor":"x"}"#).is_err());
        assert!(serde_json::from_str::<CallPatch>(r#"{"external_id":"a","result":"won"}"#).is_err());
        assert!(serde_json::from_str::<CallPatch>(r#"{"external_id":"a","answered_at":"yesterday"}"#).is_err());
        assert_eq!(
            patch(r#"{"external_id":" "}"#).validate().unwrap_err().field,
            "external_id"
        );
        assert_eq!(
            patch(r#"{"external_id":"a","currency":"rub"}"#)
                .validate()
                .unwrap_err()
                .field,
            "currency"
        );
    }

    #[test]
    fn topics_nest_with_slashes() {
        assert_eq!(normalise_topic(" billing / refund /"), "billing/refund");
    }
}
