//! `mod_json_cdr` documents. Older FreeSWITCH wrote one `"callflow"` key per caller profile in
//! the same object, so the document is read key by key, keeping every repeat.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{decode, App, Leg, Profile};
use crate::ingest::{line_at, Rejected};

/// An object's members in order, repeats included.
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (one call leg)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads one leg; a syntax error names its line.
pub fn parse(text: &[u8]) -> Result<Leg, Rejected> {
    let members: Members = serde_json::from_slice(text).map_err(|e| {
        let line = if e.line() > 0 {
            e.line()
        } else {
            line_at(text, text.len())
        };
        Rejected::new(line, format!("not a mod_json_cdr document: {e}"))
    })?;
    let mut leg = Leg::default();
    for (key, value) in members.0 {
        match key.as_str() {
            "channel_data" => leg.direction = text_of(&value["direction"]).map(|d| d.trim().to_string()),
            "variables" => {
                if let Value::Object(vars) = value {
                    for (k, v) in vars {
                        if let Some(v) = text_of(&v) {
                            leg.variables.insert(k, decode(&v));
                        }
                    }
                }
            }
            "app_log" => leg.apps.extend(apps(&value["applications"])),
            "callflow" => match value {
                Value::Array(items) => leg.profiles.extend(items.iter().map(profile)),
                other => leg.profiles.push(profile(&other)),
            },
            _ => {}
        }
    }
    leg.profiles.sort_by_key(|p| p.index);
    if leg.variables.is_empty() && leg.profiles.is_empty() {
        return Err(Rejected::new(
            1,
            "not a mod_json_cdr document: no variables and no callflow",
        ));
    }
    Ok(leg)
}

/// Strings as they are, numbers as their text (`callStats` and newer `times` use numbers).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn field(v: &Value, key: &str) -> Option<String> {
    text_of(&v[key]).map(|s| decode(&s)).filter(|s| !s.is_empty())
}

fn apps(v: &Value) -> Vec<App> {
    let Value::Array(items) = v else { return Vec::new() };
    items
        .iter()
        .filter_map(|a| {
            Some(App {
                name: field(a, "app_name")?,
                data: field(a, "app_data").unwrap_or_default(),
                stamp: field(a, "app_stamp")
                    .and_then(|s| s.parse().ok())
                    .filter(|&s: &i64| s > 0),
            })
        })
        .collect()
}

fn profile(v: &Value) -> Profile {
    let cp = &v["caller_profile"];
    let mut times = std::collections::BTreeMap::new();
    if let Value::Object(t) = &v["times"] {
        for (k, value) in t {
            if let Some(us) = text_of(value).and_then(|s| s.parse::<i64>().ok()).filter(|&us| us > 0) {
                times.insert(k.clone(), us);
            }
        }
    }
    Profile {
        index: field(v, "profile_index").and_then(|i| i.parse().ok()).unwrap_or(0),
        extension: field(&v["extension"], "name"),
        caller_id_name: field(cp, "caller_id_name"),
        caller_id_number: field(cp, "caller_id_number"),
        destination_number: field(cp, "destination_number"),
        context: field(cp, "context"),
        uuid: field(cp, "uuid"),
        times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_callflow_keys_are_all_kept() {
        let doc = br#"{"variables":{"uuid":"u1","caller_id":"%22A%22%20%3C1%3E"},
            "callflow":{"profile_index":"2","caller_profile":{"destination_number":"b"},"times":{"created_time":"5"}},
            "callflow":{"profile_index":"1","caller_profile":{"destination_number":"a"},"times":{"created_time":"0"}}}"#;
        let leg = parse(doc).unwrap();
        let dest: Vec<_> = leg
            .profiles
            .iter()
            .map(|p| p.destination_number.clone().unwrap())
            .collect();
        assert_eq!(dest, ["a", "b"]);
        assert_eq!(leg.variables["caller_id"], "\"A\" <1>");
        assert!(leg.profiles[0].times.is_empty());
    }

    #[test]
    fn truncated_documents_name_the_line() {
        let e = parse(b"{\"variables\":{\n\"uuid\":\"u1\",\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.starts_with("not a mod_json_cdr document"), "{}", e.reason);
        assert_eq!(parse(b"[1]").unwrap_err().line, 1);
    }
}
