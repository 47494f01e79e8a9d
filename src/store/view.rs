//! A call as the API shows it: the list item, the details, and how rows become them. Redaction
//! for the restricted view (spec §1) happens here, once, for lists, details and live events.

use crate::store::db::{params_from_iter, Connection};
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::calllog::{self, CallLog};
use super::{recordings, StoreError};
use crate::domain::record::{FlowStep, Money};
use crate::domain::recording::RecordingState;
use crate::domain::{AttemptResult, CallKind, CallScope, Direction, ScenarioKind};

/// A reference to a directory entity, as shown in a call.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Ref {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OperatorRef {
    pub id: String,
    pub login: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScenarioView {
    pub id: String,
    pub name: String,
    pub kind: Option<ScenarioKind>,
    /// Absent in the restricted view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CompletionCodeView {
    pub id: String,
    pub name: String,
    pub callback_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NoteView {
    pub id: String,
    pub author: Option<String>,
    pub at: String,
    pub text: String,
}

/// A call as returned by the list, the detail and live events.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallView {
    pub id: String,
    pub external_id: String,
    pub started_at: String,
    pub direction: Direction,
    pub kind: CallKind,
    pub from: String,
    pub to: String,
    pub operator: Option<OperatorRef>,
    pub group: Option<Ref>,
    pub queue: Option<Ref>,
    pub ring_seconds: Option<u32>,
    pub talk_seconds: u32,
    /// Absent in the restricted view.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub price: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub currency: Option<Option<String>>,
    pub scenario: Option<ScenarioView>,
    pub campaign: Option<Ref>,
    pub result: Option<AttemptResult>,
    pub success: bool,
    pub completion_code: Option<CompletionCodeView>,
    pub attempts: Option<u32>,
    pub tags: Vec<Ref>,
    pub topics: Vec<Ref>,
    pub notes: Vec<NoteView>,
    pub has_recording: bool,
}

/// The instants and the path of one call, for its details.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallDetails {
    pub dial_started_at: Option<String>,
    pub answered_at: Option<String>,
    pub scenario_started_at: Option<String>,
    pub amd_detected_at: Option<String>,
    pub ended_at: Option<String>,
    pub flow: Vec<FlowStepView>,
    /// The URL the telephony named for the recording, as sent.
    pub recording_url: Option<String>,
    /// The recording as calltrail holds it (absent: none was sent).
    pub recording: Option<RecordingView>,
    pub log: CallLog,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowStepView {
    pub at: String,
    pub block: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub outcome: Option<String>,
}

/// Where a call's recording is and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecordingView {
    pub state: RecordingState,
    pub content_type: Option<String>,
    pub bytes: Option<i64>,
    pub stored_at: Option<String>,
    /// Why fetching it failed (the last attempt's error while it is retried).
    pub error: Option<String>,
    pub attempts: i64,
    /// Where to play or download it (present once stored).
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallDetailView {
    #[serde(flatten)]
    pub call: CallView,
    pub details: CallDetails,
}

/// The columns of a call as listed, with its directory names joined in.
const SELECT: &str = "SELECT c.id, c.external_id, c.started_at, c.kind, c.from_number, c.to_number, \
    c.operator_id, u.login, u.name, c.group_id, g.name, c.queue_id, q.name, c.ring_seconds, c.talk_seconds, \
    c.price_e4, c.currency, c.scenario_id, s.name, s.kind, s.url, c.campaign_id, cp.name, c.result, \
    c.completion_code_id, cc.name, c.callback_at, c.attempts, c.has_recording \
    FROM calls c LEFT JOIN users u ON u.id = c.operator_id LEFT JOIN groups g ON g.id = c.group_id \
    LEFT JOIN queues q ON q.id = c.queue_id LEFT JOIN scenarios s ON s.id = c.scenario_id \
    LEFT JOIN campaigns cp ON cp.id = c.campaign_id LEFT JOIN completion_codes cc ON cc.id = c.completion_code_id";

/// Formats an instant for output: UTC, or the zone the viewer asked for.
pub fn format_time(ms: i64, tz: Option<Tz>) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    match tz {
        Some(tz) => t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, true),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

fn id_ref(id: Option<i64>, name: Option<String>) -> Option<Ref> {
    Some(Ref {
        id: id?.to_string(),
        name: name.unwrap_or_default(),
    })
}

fn map_row(
    r: &crate::store::db::Row<'_, '_>,
    scope: &CallScope,
    tz: Option<Tz>,
) -> crate::store::db::Result<(i64, CallView)> {
    let id: i64 = r.get(0)?;
    let kind = CallKind::parse(&r.get::<_, String>(3)?).unwrap_or(CallKind::Incoming);
    let result = r
        .get::<_, Option<String>>(23)?
        .as_deref()
        .and_then(AttemptResult::parse);
    let operator = match r.get::<_, Option<i64>>(6)? {
        Some(op) => Some(OperatorRef {
            id: op.to_string(),
            login: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            name: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
        }),
        None => None,
    };
    let scenario = match r.get::<_, Option<i64>>(17)? {
        Some(sid) => Some(ScenarioView {
            id: sid.to_string(),
            name: r.get::<_, Option<String>>(18)?.unwrap_or_default(),
            kind: r.get::<_, Option<String>>(19)?.as_deref().and_then(ScenarioKind::parse),
            url: if scope.redacted { None } else { Some(r.get(20)?) },
        }),
        None => None,
    };
    let completion_code = match r.get::<_, Option<i64>>(24)? {
        Some(cid) => Some(CompletionCodeView {
            id: cid.to_string(),
            name: r.get::<_, Option<String>>(25)?.unwrap_or_default(),
            callback_at: r.get::<_, Option<i64>>(26)?.map(|t| format_time(t, tz)),
        }),
        None => None,
    };
    let price: Option<i64> = r.get(15)?;
    let view = CallView {
        id: id.to_string(),
        external_id: r.get(1)?,
        started_at: format_time(r.get(2)?, tz),
        direction: kind.direction(),
        kind,
        from: r.get(4)?,
        to: r.get(5)?,
        operator,
        group: id_ref(r.get(9)?, r.get(10)?),
        queue: id_ref(r.get(11)?, r.get(12)?),
        ring_seconds: r.get(13)?,
        talk_seconds: r.get(14)?,
        price: (!scope.redacted).then(|| price.map(|p| String::from(Money(p)))),
        currency: (!scope.redacted).then(|| r.get::<_, Option<String>>(16)).transpose()?,
        scenario,
        campaign: id_ref(r.get(21)?, r.get(22)?),
        result,
        success: result.is_some_and(AttemptResult::is_success),
        completion_code,
        attempts: r.get(27)?,
        tags: vec![],
        topics: vec![],
        notes: vec![],
        has_recording: r.get(28)?,
    };
    Ok((id, view))
}

/// Fills tags, topics and notes of the listed calls with one query each.
fn attach_sets(conn: &Connection, calls: &mut [(i64, CallView)], tz: Option<Tz>) -> Result<(), StoreError> {
    if calls.is_empty() {
        return Ok(());
    }
    let marks = vec!["?"; calls.len()].join(", ");
    let ids: Vec<i64> = calls.iter().map(|(id, _)| *id).collect();
    let index: std::collections::HashMap<i64, usize> = calls.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
    let position = |id: i64| index.get(&id).copied();
    for (table, col, dim) in [("call_tags", "tag_id", "tags"), ("call_topics", "topic_id", "topics")] {
        let sql = format!(
            "SELECT x.call_id, d.id, d.name FROM {table} x JOIN {dim} d ON d.id = x.{col} WHERE x.call_id IN ({marks}) ORDER BY d.name"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params_from_iter(ids.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
        })?;
        for row in rows {
            let (call, id, name) = row?;
            if let Some(i) = position(call) {
                let item = Ref {
                    id: id.to_string(),
                    name,
                };
                if dim == "tags" {
                    calls[i].1.tags.push(item);
                } else {
                    calls[i].1.topics.push(item);
                }
            }
        }
    }
    let sql =
        format!("SELECT call_id, key, author, at, text FROM call_notes WHERE call_id IN ({marks}) ORDER BY at, id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(ids.iter()), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            NoteView {
                id: r.get(1)?,
                author: r.get(2)?,
                at: format_time(r.get(3)?, tz),
                text: r.get(4)?,
            },
        ))
    })?;
    for row in rows {
        let (call, note) = row?;
        if let Some(i) = position(call) {
            calls[i].1.notes.push(note);
        }
    }
    Ok(())
}

/// The calls with these ids, in the given order, as listed. Callers pass only ids that the
/// scope's where clause let through (`search`); this checks the account again, nothing more.
pub(super) fn load_views(
    conn: &Connection,
    scope: &CallScope,
    ids: &[i64],
    tz: Option<Tz>,
) -> Result<Vec<CallView>, StoreError> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let marks = vec!["?"; ids.len()].join(", ");
    // `+` keeps the account test a check on each row: the ids lead, not the account index.
    let text = format!("{SELECT} WHERE +c.account_id = ? AND c.id IN ({marks})");
    let args = std::iter::once(scope.account.0).chain(ids.iter().copied());
    let mut rows: Vec<(i64, CallView)> = conn
        .prepare_cached(&text)?
        .query_map(params_from_iter(args), |r| map_row(r, scope, tz))?
        .collect::<Result<_, _>>()?;
    let order: std::collections::HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    rows.sort_by_key(|(id, _)| order.get(id).copied().unwrap_or(usize::MAX));
    attach_sets(conn, &mut rows, tz)?;
    Ok(rows.into_iter().map(|(_, v)| v).collect())
}

/// One call with its details, if it is in scope.
pub fn get(conn: &Connection, scope: &CallScope, id: i64, tz: Option<Tz>) -> Result<CallDetailView, StoreError> {
    if !super::search::in_scope(conn, scope, id)? {
        return Err(StoreError::NotFound);
    }
    let call = load_views(conn, scope, &[id], tz)?.pop().ok_or(StoreError::NotFound)?;
    let recording = recordings::of_call(conn, scope.account, id)?.map(|rec| RecordingView {
        state: rec.state,
        content_type: rec.content_type,
        bytes: rec.bytes,
        stored_at: rec.stored_at.map(|t| format_time(t, tz)),
        error: rec.error,
        attempts: rec.attempts,
        url: rec.object_key.map(|_| format!("/api/v1/calls/{id}/recording")),
    });
    let log = calllog::log(conn, id, tz)?;
    let details = conn.query_row(
        "SELECT dial_started_at, answered_at, scenario_started_at, amd_detected_at, ended_at, flow, recording_url FROM calls WHERE id = ?",
        [id],
        move |r| {
            let t = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.map(|ms| format_time(ms, tz)));
            let flow: Option<String> = r.get(5)?;
            let steps: Vec<FlowStep> = flow.as_deref().and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
            Ok(CallDetails {
                dial_started_at: t(0)?,
                answered_at: t(1)?,
                scenario_started_at: t(2)?,
                amd_detected_at: t(3)?,
                ended_at: t(4)?,
                flow: steps
                    .into_iter()
                    .map(|s| FlowStepView {
                        at: format_time(s.at.timestamp_millis(), tz),
                        block: s.block,
                        kind: s.kind,
                        outcome: s.outcome,
                    })
                    .collect(),
                recording_url: r.get(6)?,
                recording,
                log,
            })
        },
    )?;
    Ok(CallDetailView { call, details })
}
