//! FreeSWITCH call detail records: `mod_json_cdr` / `mod_xml_cdr` documents (one per call leg)
//! and `mod_cdr_csv` rows. Each format is read into a `Leg`; `Leg::patch` says what the leg means
//! for its call. The legs of one call share the a-leg's uuid as external id: the a-leg makes the
//! call, a b-leg adds the operator who answered it, in either order.

pub mod csv;
pub mod json;
pub mod xml;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::pbx::{self, Party, PbxCall, PbxSettings};
use super::{clip, Parsed, Rejected};
use crate::domain::record::{FlowStep, ScenarioRef};
use crate::domain::{CallKind, CallPatch, ScenarioKind};

/// One call leg as FreeSWITCH reported it, whatever the format.
#[derive(Debug, Default, Clone)]
pub struct Leg {
    /// `channel_data.direction`: `inbound` when FreeSWITCH received the leg.
    pub direction: Option<String>,
    /// Channel variables at hangup, URL-decoded.
    pub variables: BTreeMap<String, String>,
    /// Caller profiles in the order they were created (`profile_index`).
    pub profiles: Vec<Profile>,
    pub apps: Vec<App>,
    /// A `mod_conference` summary rather than a call leg.
    pub conference: bool,
}

#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub index: u32,
    /// The dialplan extension that matched.
    pub extension: Option<String>,
    pub caller_id_name: Option<String>,
    pub caller_id_number: Option<String>,
    pub destination_number: Option<String>,
    pub context: Option<String>,
    pub uuid: Option<String>,
    /// `times`, in microseconds since the epoch (0 left out).
    pub times: BTreeMap<String, i64>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub data: String,
    /// When it ran (newer versions only).
    pub stamp: Option<i64>,
}

/// Values are URL-encoded by default (`encode-values`); a value that is not stays as it is.
pub fn decode(value: &str) -> String {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map_or_else(|_| value.to_string(), |v| v.into_owned())
}

/// Reads legs (already parsed, with the line each starts on) into patches.
pub fn patches(legs: Vec<(usize, Result<Leg, Rejected>)>, settings: &PbxSettings, zone: Tz) -> Parsed {
    let mut out = Parsed::default();
    for (line, leg) in legs {
        // A document that could not be read names the line where reading stopped.
        match leg.and_then(|l| l.patch(settings, zone).map_err(|r| Rejected::new(line, r))) {
            Ok(Meaning::Call(p)) => out.patches.push((line, *p)),
            Ok(Meaning::Skipped(reason)) => out.skipped.push(Rejected::new(line, reason)),
            Err(r) => out.rejected.push(r),
        }
    }
    out
}

/// What one leg means for its call.
#[derive(Debug)]
pub enum Meaning {
    Call(Box<CallPatch>),
    Skipped(String),
}

/// Gateways, trunks and the PSTN in a dial string: the far end is outside.
const OUTSIDE: [&str; 5] = ["sofia/gateway/", "sofia/external/", "openzap/", "freetdm/", "gateway/"];

impl Leg {
    fn var(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn first(&self) -> Option<&Profile> {
        self.profiles.first()
    }

    /// A time from the profiles' `times` (`earliest` or latest of them), else from the
    /// variables (`*_uepoch`, `*_epoch`, then the local `*_stamp`).
    fn time(&self, times_key: &str, var: &str, earliest: bool, zone: Tz) -> Option<DateTime<Utc>> {
        let from_times = self.profiles.iter().filter_map(|p| p.times.get(times_key).copied());
        let us = if earliest { from_times.min() } else { from_times.max() };
        us.and_then(DateTime::from_timestamp_micros)
            .or_else(|| self.var(&format!("{var}_uepoch")).and_then(pbx::micros))
            .or_else(|| self.var(&format!("{var}_epoch")).and_then(pbx::epoch_seconds))
            .or_else(|| self.var(&format!("{var}_stamp")).and_then(|s| pbx::local_time(s, zone)))
    }

    fn uuid(&self) -> Option<&str> {
        self.var("uuid")
            .or_else(|| self.first().and_then(|p| p.uuid.as_deref()))
    }

    /// The a-leg this leg was originated for, when it is a b-leg.
    fn originator(&self) -> Option<&str> {
        if self.direction.as_deref() != Some("outbound") {
            return None;
        }
        self.var("originating_leg_uuid")
            .or_else(|| self.var("originator"))
            .or_else(|| self.var("call_uuid").filter(|c| Some(*c) != self.uuid()))
    }

    fn bridge_targets(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().filter(|a| a.name == "bridge").map(|a| a.data.as_str())
    }

    /// Where the session was recorded (`record_session`), as FreeSWITCH wrote the path.
    fn recording_path(&self) -> Option<String> {
        let data = self.apps.iter().rev().find(|a| a.name == "record_session")?.data.trim();
        // `http://(file=…,name=…)host/upload`: mod_http_cache uploads the file under `name`.
        let path = match data.split_once('(').zip(data.split_once(')')) {
            Some(((scheme, _), (options, rest))) if scheme.ends_with("://") => {
                let options = &options[options.find('(')? + 1..];
                let named = options
                    .split(',')
                    .filter_map(|o| o.split_once('='))
                    .find(|(k, _)| *k == "name" || *k == "file")
                    .map(|(_, v)| v.to_string());
                named.unwrap_or_else(|| format!("{scheme}{rest}"))
            }
            _ => data.to_string(),
        };
        (!path.is_empty() && !path.contains("${")).then_some(path)
    }

    /// The number of the leg the a-leg was bridged to, from `originated_legs`
    /// (`ARRAY::uuid;name;number|:…`) or `dialed_user`.
    fn bridged_number(&self) -> Option<String> {
        let to = self.var("bridge_uuid").or_else(|| self.var("last_bridge_to"))?;
        let legs = self.var("originated_legs").unwrap_or_default();
        let legs = legs.strip_prefix("ARRAY::").unwrap_or(legs);
        legs.split("|:")
            .filter_map(|l| {
                let mut parts = l.split(';');
                Some((parts.next()?, parts.nth(1)?))
            })
            .find(|(uuid, _)| *uuid == to)
            .map(|(_, number)| number.to_string())
            .or_else(|| self.var("dialed_user").map(str::to_string))
    }

    /// The leg's meaning: the whole call for an a-leg, the answering operator for a b-leg.
    pub fn patch(&self, settings: &PbxSettings, zone: Tz) -> Result<Meaning, String> {
        if self.conference {
            return Ok(Meaning::Skipped(
                "a mod_conference summary, not a call leg (its members' legs are logged as calls)".into(),
            ));
        }
        let uuid = self
            .uuid()
            .ok_or("no uuid (variables.uuid or callflow caller_profile.uuid)")?
            .to_string();
        if let Some(a_leg) = self.originator() {
            return Ok(self.b_leg(a_leg, settings));
        }
        let first = self.first();
        let caller = first
            .and_then(|p| p.caller_id_number.clone())
            .or_else(|| self.var("caller_id_number").map(String::from))
            .or_else(|| self.var("sip_from_user").map(String::from))
            .unwrap_or_default();
        let callee = first
            .and_then(|p| p.destination_number.clone())
            .or_else(|| self.var("destination_number").map(String::from))
            .or_else(|| self.var("sip_req_user").map(String::from))
            .unwrap_or_default();
        let context = first.and_then(|p| p.context.as_deref()).unwrap_or_default();

        let caller_party =
            if settings.is_external_context(context) || self.var("sofia_profile_name") == Some("external") {
                Party::External
            } else if self.var("sip_authorized") == Some("true") {
                Party::Own
            } else {
                settings.party(&caller)
            };
        let through_gateway = self.bridge_targets().any(|t| OUTSIDE.iter().any(|o| t.contains(o)));
        let callee_party = if through_gateway {
            Party::External
        } else {
            settings.party(&callee)
        };
        let Some(kind) = settings.kind(caller_party, callee_party) else {
            return Ok(Meaning::Skipped(format!(
                "an internal call ({caller} to {callee}); internal_calls is skip"
            )));
        };

        let started = self
            .time("created_time", "start", true, zone)
            .ok_or("no start time (callflow times.created_time or start_uepoch/start_epoch/start_stamp)")?;
        let ended = self.time("hangup_time", "end", false, zone);
        let answered_at = self.time("answered_time", "answer", true, zone);
        let bridged = self.time("bridged_time", "bridge", true, zone).is_some()
            || self.var("bridge_uuid").is_some() && answered_at.is_some();
        let bridge_tried = self.bridge_targets().next().is_some();
        let queue = self
            .var("cc_queue")
            .map(String::from)
            .or_else(|| {
                self.apps
                    .iter()
                    .find(|a| a.name == "callcenter")
                    .map(|a| a.data.clone())
            })
            .map(|q| q.split('@').next().unwrap_or_default().trim().to_string())
            .filter(|q| !q.is_empty());
        // An incoming call answered by FreeSWITCH itself (a menu, voicemail) reached nobody.
        let answered = answered_at.is_some()
            && match kind {
                CallKind::Incoming => bridged,
                _ => bridged || !bridge_tried,
            };
        let offered = bridge_tried
            || queue.is_some()
            || self.var("originated_legs").is_some()
            || self.var("bridge_uuid").is_some();
        let cause = self
            .var("originate_disposition")
            .filter(|d| !matches!(*d, "SUCCESS" | "ANSWER"))
            .or_else(|| self.var("hangup_cause"))
            .unwrap_or_default();
        let result = pbx::result(kind, answered, offered, pbx::freeswitch_cause(cause));

        let operator = match kind {
            CallKind::Incoming => self
                .var("cc_agent")
                .map(|a| a.split('@').next().unwrap_or(a).to_string())
                .or_else(|| self.bridged_number())
                .filter(|n| answered && settings.party(n) == Party::Own),
            _ => (caller_party == Party::Own && !caller.is_empty()).then(|| caller.clone()),
        };
        let operator_name = match kind {
            CallKind::Incoming => None,
            _ => first
                .and_then(|p| p.caller_id_name.clone())
                .filter(|n| !n.is_empty() && *n != caller),
        };
        let scenario = self.apps.iter().find(|a| a.name == "ivr").map(|a| ScenarioRef {
            id: clip(a.data.trim(), 128),
            name: Some(clip(a.data.trim(), 256)),
            kind: Some(ScenarioKind::Automated),
            url: None,
        });
        let call = PbxCall {
            external_id: uuid,
            kind,
            from: caller,
            to: callee,
            started,
            answered_at: answered_at.filter(|_| answered),
            ended,
            result,
            operator,
            operator_name,
            queue,
            scenario,
            recording: self.recording_path(),
            flow: self.flow(),
            log: self.log(),
        };
        Ok(Meaning::Call(Box::new(call.into_patch(settings))))
    }

    /// A b-leg: the operator who answered it, when it rang one of ours for a caller from outside.
    fn b_leg(&self, a_leg: &str, settings: &PbxSettings) -> Meaning {
        let profile = self.first();
        let dialled = profile
            .and_then(|p| p.destination_number.clone())
            .or_else(|| self.var("dialed_user").map(String::from))
            .unwrap_or_default();
        let caller = profile.and_then(|p| p.caller_id_number.clone()).unwrap_or_default();
        let answered = self.profiles.iter().any(|p| p.times.contains_key("answered_time"))
            || self.var("answer_uepoch").and_then(pbx::micros).is_some();
        let mut patch = CallPatch {
            external_id: clip(a_leg, 128),
            ..CallPatch::default()
        };
        if answered && settings.party(&caller) == Party::External && settings.party(&dialled) == Party::Own {
            patch.operator = Some(Some(clip(&dialled, 128)));
        }
        Meaning::Call(Box::new(patch))
    }

    /// The dialplan extensions the call passed, and the applications that ran with their times.
    fn flow(&self) -> Vec<FlowStep> {
        let mut steps = Vec::new();
        for p in &self.profiles {
            let at = p
                .times
                .get("profile_created_time")
                .or_else(|| p.times.get("created_time"))
                .and_then(|&us| DateTime::from_timestamp_micros(us));
            let Some(at) = at else { continue };
            let block = p
                .extension
                .clone()
                .or_else(|| p.destination_number.clone())
                .unwrap_or_else(|| format!("profile {}", p.index));
            let outcome = format!(
                "{} → {}",
                p.context.as_deref().unwrap_or("?"),
                p.destination_number.as_deref().unwrap_or("?")
            );
            steps.push(FlowStep {
                at,
                block: clip(&block, 256),
                kind: Some("dialplan".into()),
                outcome: Some(clip(&outcome, 256)),
            });
        }
        for a in &self.apps {
            if let Some(at) = a.stamp.and_then(DateTime::from_timestamp_micros) {
                steps.push(FlowStep {
                    at,
                    block: clip(&a.name, 256),
                    kind: Some("application".into()),
                    outcome: Some(clip(&a.data, 256)).filter(|d| !d.is_empty()),
                });
            }
        }
        steps.sort_by_key(|s| s.at);
        steps
    }

    /// The application log and how the leg ended, as lines of the call's log.
    fn log(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .apps
            .iter()
            .map(|a| clip(format!("{} {}", a.name, a.data).trim_end(), 8_000))
            .collect();
        let ended: Vec<String> = [
            "hangup_cause",
            "hangup_cause_q850",
            "sip_hangup_disposition",
            "sip_term_status",
            "originate_disposition",
            "endpoint_disposition",
        ]
        .iter()
        .filter_map(|k| self.var(k).map(|v| format!("{k}={v}")))
        .collect();
        if !ended.is_empty() {
            lines.push(ended.join(" "));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AttemptResult;

    /// A mod_callcenter call from outside: a menu, then the queue, answered by an agent.
    fn queued_leg(agent_answered: bool) -> Leg {
        let mut leg = json::parse(
            br#"{"channel_data":{"direction":"inbound"},
            "variables":{"uuid":"q1","cc_queue":"support@default","start_uepoch":"1700000000000000",
                "end_uepoch":"1700000090000000","record_session":"x"},
            "app_log":{"applications":[
                {"app_name":"answer","app_data":"","app_stamp":"1700000000100000"},
                {"app_name":"ivr","app_data":"main_menu","app_stamp":"1700000000200000"},
                {"app_name":"callcenter","app_data":"support@default","app_stamp":"1700000010000000"},
                {"app_name":"record_session","app_data":"/var/lib/freeswitch/recordings/2023/q1.wav"}]},
            "callflow":[{"profile_index":"1","extension":{"name":"public_did"},
                "caller_profile":{"caller_id_number":"+74951112233","destination_number":"74957654321","context":"public"},
                "times":{"created_time":"1700000000000000","answered_time":"1700000000100000","hangup_time":"1700000090000000"}}]}"#,
        )
        .unwrap();
        if agent_answered {
            leg.variables.insert("cc_agent".into(), "1007@default".into());
            leg.variables.insert("bridge_uuid".into(), "b1".into());
            leg.variables.insert("bridge_uepoch".into(), "1700000020000000".into());
        }
        leg
    }

    fn patch(leg: &Leg, settings: &PbxSettings) -> CallPatch {
        match leg.patch(settings, Tz::UTC).unwrap() {
            Meaning::Call(p) => *p,
            Meaning::Skipped(why) => panic!("skipped: {why}"),
        }
    }

    #[test]
    fn queue_agent_menu_and_recording_come_from_variables_and_the_app_log() {
        let settings = PbxSettings {
            recording_url_template: Some("https://pbx.example.com/rec/{name}".into()),
            ..PbxSettings::default()
        };
        let p = patch(&queued_leg(true), &settings);
        assert_eq!(p.kind, Some(CallKind::Incoming));
        assert_eq!(p.queue, Some(Some("support".into())));
        assert_eq!(p.operator, Some(Some("1007".into())));
        assert_eq!(p.result, Some(Some(AttemptResult::Answered)));
        let scenario = p.scenario.flatten().unwrap();
        assert_eq!(
            (scenario.id.as_str(), scenario.kind),
            ("main_menu", Some(ScenarioKind::Automated))
        );
        assert_eq!(p.recording_url, Some(Some("https://pbx.example.com/rec/q1.wav".into())));
        let blocks: Vec<&str> = p.flow.as_ref().unwrap().iter().map(|s| s.block.as_str()).collect();
        assert_eq!(blocks, ["public_did", "answer", "ivr", "callcenter"]);

        // Nobody took it from the queue: lost by the operators it was offered to.
        let p = patch(&queued_leg(false), &PbxSettings::default());
        assert_eq!(
            (p.operator.clone(), p.result),
            (Some(None), Some(Some(AttemptResult::LostByOperator)))
        );
        assert_eq!(p.recording_url, None, "no template: the path is in the log");
        assert!(p
            .log
            .unwrap()
            .contains(&"recording on the PBX: /var/lib/freeswitch/recordings/2023/q1.wav".to_string()));
    }
}
