//! The reference product's webhooks (reference-notes.md): `{"callbacks":[{"hash","type",
//! "<type>":{…}}]}` with `new_calls`, `wrap_up_code_set`, `finished_call` and
//! `call_finalized`. Each event carries part of a call session; all of them become patches of the
//! call whose external id is the session id, so they merge in any order and any repetition.

use chrono::{DateTime, NaiveDateTime, Utc};
use md5::{Digest, Md5};
use serde_json::{Map, Value};

use super::clip;
use crate::domain::record::{CompletionCodeRef, Money, NamedRef, Note, ScenarioRef};
use crate::domain::{AttemptResult, CallKind, CallPatch, FieldError, ScenarioKind};

/// The event types this endpoint takes.
pub const TYPES: [&str; 4] = ["new_calls", "wrap_up_code_set", "finished_call", "call_finalized"];

/// One callback of a post, checked and read.
#[derive(Debug)]
pub struct Callback {
    pub kind: &'static str,
    pub hash: String,
    /// Each with whether its kind is a guess (an outgoing call that names no campaign may be a
    /// campaign's all the same: another event of the session says).
    pub patches: Vec<(CallPatch, bool)>,
}

/// The hash the product sends with each callback: `md5(salt + domain + type)`, in hex.
pub fn expected_hash(salt: &str, domain: &str, kind: &str) -> String {
    let digest = Md5::digest(format!("{salt}{domain}{kind}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads a post; the first thing wrong is named by its path (`callbacks[0].new_calls.calls[1].session_id`).
pub fn parse(body: &[u8]) -> Result<Vec<Callback>, FieldError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| FieldError::new("body", format!("malformed JSON: {e}")))?;
    let callbacks = root
        .get("callbacks")
        .and_then(Value::as_array)
        .ok_or_else(|| FieldError::new("callbacks", "expected {\"callbacks\": [ … ]}"))?;
    if callbacks.is_empty() {
        return Err(FieldError::new("callbacks", "no callbacks"));
    }
    callbacks
        .iter()
        .enumerate()
        .map(|(i, cb)| callback(&format!("callbacks[{i}]"), cb))
        .collect()
}

fn callback(path: &str, cb: &Value) -> Result<Callback, FieldError> {
    let type_text = cb.get("type").and_then(Value::as_str).unwrap_or_default();
    let kind = TYPES.iter().copied().find(|t| *t == type_text).ok_or_else(|| {
        FieldError::new(
            format!("{path}.type"),
            format!(
                "unknown callback type {type_text:?}; expected one of {}",
                TYPES.join(", ")
            ),
        )
    })?;
    let hash = cb
        .get("hash")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldError::new(format!("{path}.hash"), "missing"))?
        .to_ascii_lowercase();
    let mut data = cb
        .get(kind)
        .ok_or_else(|| FieldError::new(format!("{path}.{kind}"), "missing"))?;
    let mut data_path = format!("{path}.{kind}");
    // Public integrations show the event one level deeper (`call_finalized.call_finalized`).
    if let Some(inner) = data.get(kind) {
        data = inner;
        data_path = format!("{data_path}.{kind}");
    }
    let records: Vec<(String, &Value)> = match (kind, data) {
        ("new_calls", Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(j, v)| (format!("{data_path}[{j}]"), v))
            .collect(),
        ("new_calls", v) if v.get("calls").is_some() => {
            let items = v["calls"]
                .as_array()
                .ok_or_else(|| FieldError::new(format!("{data_path}.calls"), "expected an array"))?;
            items
                .iter()
                .enumerate()
                .map(|(j, v)| (format!("{data_path}.calls[{j}]"), v))
                .collect()
        }
        (_, v) => vec![(data_path.clone(), v)],
    };
    let patches = records
        .into_iter()
        .map(|(p, v)| match v {
            Value::Object(o) if kind == "wrap_up_code_set" => wrap_up(&p, o),
            Value::Object(o) => record(&p, o),
            _ => Err(FieldError::new(p, "expected an object")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Callback { kind, hash, patches })
}

/// A field as text, whether sent as a string or a number; empty is absent.
fn text(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn session_id(path: &str, o: &Map<String, Value>, keys: &[&str]) -> Result<String, FieldError> {
    let id = keys
        .iter()
        .find_map(|k| text(o, k))
        .ok_or_else(|| FieldError::new(format!("{path}.{}", keys[0]), "missing"))?;
    if id.len() > 128 {
        return Err(FieldError::new(
            format!("{path}.{}", keys[0]),
            "longer than 128 characters",
        ));
    }
    Ok(id)
}

/// `YYYY-MM-DD HH:mm:ss` in UTC, or RFC 3339.
fn time(path: &str, o: &Map<String, Value>, key: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(t) = text(o, key) else { return Ok(None) };
    if let Ok(naive) = NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S") {
        return Ok(Some(naive.and_utc()));
    }
    DateTime::parse_from_rfc3339(&t)
        .map(|d| Some(d.with_timezone(&Utc)))
        .map_err(|_| {
            FieldError::new(
                format!("{path}.{key}"),
                format!("{t:?} is not YYYY-MM-DD HH:mm:ss (UTC)"),
            )
        })
}

fn seconds(path: &str, o: &Map<String, Value>, key: &str) -> Result<Option<u32>, FieldError> {
    let Some(t) = text(o, key) else { return Ok(None) };
    let secs: f64 = t
        .parse()
        .ok()
        .filter(|s: &f64| (0.0..=86_400.0).contains(s))
        .ok_or_else(|| {
            FieldError::new(
                format!("{path}.{key}"),
                format!("{t:?} is not a number of seconds (0 … 86400)"),
            )
        })?;
    Ok(Some(secs.round() as u32))
}

fn flag(o: &Map<String, Value>, key: &str) -> Option<bool> {
    match o.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        Value::String(s) => Some(matches!(s.as_str(), "1" | "true")),
        _ => None,
    }
}

/// A nested `{id, title|name}` object as a directory reference.
fn named(o: &Map<String, Value>, key: &str) -> Option<NamedRef> {
    let v = o.get(key)?.as_object()?;
    let name = text(v, "title").or_else(|| text(v, "name"));
    let id = text(v, "id").or_else(|| name.clone())?;
    Some(NamedRef {
        id: clip(&id, 128),
        name: name.map(|n| clip(&n, 256)),
    })
}

/// Tags and topics: strings, or objects naming them (`tag_name`, `name`, `title`).
fn labels(path: &str, o: &Map<String, Value>, key: &str, name_key: &str) -> Result<Option<Vec<String>>, FieldError> {
    let Some(v) = o.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let items = v
        .as_array()
        .ok_or_else(|| FieldError::new(format!("{path}.{key}"), "expected an array"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let name = match item {
                Value::String(s) => Some(s.trim().to_string()),
                Value::Object(m) => [name_key, "name", "title"].iter().find_map(|k| text(m, k)),
                _ => None,
            };
            name.filter(|n| !n.is_empty()).map(|n| clip(&n, 128)).ok_or_else(|| {
                FieldError::new(
                    format!("{path}.{key}[{i}]"),
                    format!("expected a name or an object with {name_key}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn completion(path: &str, o: &Map<String, Value>) -> Result<Option<Option<CompletionCodeRef>>, FieldError> {
    let Some(v) = o.get("wrap_up_code") else {
        return Ok(None);
    };
    let Some(w) = v.as_object() else { return Ok(Some(None)) };
    let name = text(w, "title").or_else(|| text(w, "name"));
    let Some(id) = text(w, "id").or_else(|| name.clone()) else {
        return Err(FieldError::new(format!("{path}.wrap_up_code.id"), "missing"));
    };
    Ok(Some(Some(CompletionCodeRef {
        id: clip(&id, 128),
        name: name.map(|n| clip(&n, 256)),
        callback_at: time(&format!("{path}.wrap_up_code"), w, "callback_at")?,
    })))
}

/// A call session's record (`new_calls` item, `finished_call`, `call_finalized`): what it says.
fn record(path: &str, o: &Map<String, Value>) -> Result<(CallPatch, bool), FieldError> {
    let mut p = CallPatch {
        external_id: session_id(path, o, &["session_id", "call_session_history_id", "id"])?,
        ..CallPatch::default()
    };
    let incoming = flag(o, "is_incoming");
    let campaign =
        named(o, "agent_campaign").or_else(|| text(o, "agent_campaign_id").map(|id| NamedRef { id, name: None }));
    let names_campaign = ["agent_campaign", "agent_campaign_id", "campaign_id"]
        .iter()
        .any(|k| o.contains_key(*k));
    let guessed_kind = incoming == Some(false) && !names_campaign;
    if let Some(incoming) = incoming {
        p.kind = Some(match (incoming, &campaign, text(o, "campaign_id")) {
            (true, _, _) => CallKind::Incoming,
            (false, Some(_), _) => CallKind::OperatorCampaign,
            (false, None, Some(_)) => CallKind::AutoCampaign,
            (false, None, None) => CallKind::SoftphoneOutgoing,
        });
    }
    if let Some(start) = time(path, o, "datetime_start")? {
        match incoming {
            Some(true) => p.scenario_started_at = Some(Some(start)),
            _ => p.dial_started_at = Some(Some(start)),
        }
        // The record also says when it began as sent; kept for the record's own start.
        p.started_at = Some(Some(start));
    }
    p.from = text(o, "phone_a").map(|n| Some(clip(&n, 64)));
    p.to = text(o, "phone_b").map(|n| Some(clip(&n, 64)));
    // Only totals are sent, no answer or end time: they stand as sent.
    p.ring_seconds = seconds(path, o, "dialing_time")?.map(Some);
    p.talk_seconds = seconds(path, o, "duration")?.map(Some);
    let result_code = [text(o, "call_result_code"), text(o, "completion_code")]
        .into_iter()
        .flatten()
        .find_map(|c| AttemptResult::from_reference(&c));
    p.result = result_code.map(Some);
    if let Some(url) = text(o, "record_url").filter(|u| u.starts_with("http://") || u.starts_with("https://")) {
        p.recording_url = Some(Some(clip(&url, 2_000)));
    }
    if let Some(cost) = text(o, "call_cost") {
        let price = Money::parse(&cost)
            .ok_or_else(|| FieldError::new(format!("{path}.call_cost"), format!("{cost:?} is not a decimal")))?;
        p.price = Some(Some(price));
    }
    p.attempts = text(o, "attempt_num").and_then(|a| a.parse().ok()).map(Some);
    p.campaign = campaign.map(Some);
    p.queue = named(o, "queue").map(|q| Some(q.name.unwrap_or(q.id)));
    let scenario = o.get("scenario").and_then(Value::as_object).and_then(|s| {
        let id = text(s, "id")?;
        Some(ScenarioRef {
            id: clip(&id, 128),
            name: text(s, "title").or_else(|| text(s, "name")).map(|n| clip(&n, 256)),
            kind: text(s, "scenario_type").map(|t| {
                if t.to_ascii_lowercase().contains("agent") || t.to_ascii_lowercase().contains("operator") {
                    ScenarioKind::Operator
                } else {
                    ScenarioKind::Automated
                }
            }),
            url: None,
        })
    });
    p.scenario = scenario
        .or_else(|| {
            text(o, "scenario_id").map(|id| ScenarioRef {
                id,
                name: None,
                kind: None,
                url: None,
            })
        })
        .map(Some);
    if let Some(user) = text(o, "user_id") {
        p.operator = Some(Some(clip(&user, 128)));
        p.operator_name = text(o, "user_name").map(|n| clip(&n, 256));
    }
    p.completion_code = completion(path, o)?;
    p.tags = labels(path, o, "tags", "tag_name")?;
    p.topics = labels(path, o, "topics", "topic_name")?;
    if let Some(comments) = o.get("comments").and_then(Value::as_array) {
        // A comment without its own time is dated by the call (the same every time it is sent,
        // so a repeated event changes nothing).
        let at = p.started_at.flatten().unwrap_or(DateTime::UNIX_EPOCH);
        let notes = comments
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let c = c.as_object()?;
                let text_of = text(c, "comment")?;
                let when = time(&format!("{path}.comments[{i}]"), c, "created_at").ok().flatten();
                Some(Note {
                    id: text(c, "id").unwrap_or_else(|| format!("comment-{}", expected_hash("", "", &text_of))),
                    author: text(c, "user_name")
                        .or_else(|| text(c, "user_id"))
                        .map(|a| clip(&a, 128)),
                    at: when.unwrap_or(at),
                    text: clip(&text_of, 10_000),
                })
            })
            .collect();
        p.notes = Some(notes);
    }
    if let Some(log_path) = text(o, "log_path") {
        p.log = Some(vec![clip(&format!("log: {log_path}"), 8_000)]);
    }
    Ok((p, guessed_kind))
}

/// `wrap_up_code_set`: the completion code an operator set on a call.
fn wrap_up(path: &str, o: &Map<String, Value>) -> Result<(CallPatch, bool), FieldError> {
    let mut p = CallPatch {
        external_id: session_id(path, o, &["session_id", "call_id"])?,
        ..CallPatch::default()
    };
    p.completion_code = completion(path, o)?;
    if p.completion_code.is_none() {
        return Err(FieldError::new(format!("{path}.wrap_up_code"), "missing"));
    }
    // Its user and campaign are the call's own, which the call's records name (with names).
    Ok((p, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_md5_of_salt_domain_type() {
        // md5("s3cretacmenew_calls")
        assert_eq!(
            expected_hash("s3cret", "acme", "new_calls"),
            format!("{:x}", Md5::digest(b"s3cretacmenew_calls"))
        );
        assert_eq!(expected_hash("", "", "").len(), 32);
    }

    #[test]
    fn errors_name_the_path() {
        let e = parse(br#"{"callbacks":[{"hash":"x","type":"nope"}]}"#).unwrap_err();
        assert_eq!(e.field, "callbacks[0].type");
        let e = parse(br#"{"callbacks":[{"hash":"x","type":"new_calls","new_calls":{"calls":[{"session_id":1,"datetime_start":"yesterday"}]}}]}"#).unwrap_err();
        assert_eq!(e.field, "callbacks[0].new_calls.calls[0].datetime_start");
        let e = parse(br#"{"callbacks":[{"hash":"x","type":"call_finalized","call_finalized":{"call_finalized":{"phone_a":"1"}}}]}"#).unwrap_err();
        assert_eq!(e.field, "callbacks[0].call_finalized.call_finalized.session_id");
        assert_eq!(parse(b"{}").unwrap_err().field, "callbacks");
        assert_eq!(parse(b"{").unwrap_err().field, "body");
    }
}
