//! Writing call records: upsert by external id, partial updates, and updates that arrive before
//! their call (kept in `pending_updates` and applied when the call arrives).
//!
//! A record is merged in the domain (`CallRecord::merge`), then resolved into the row that is
//! stored (directory keys become ids, durations are computed). A call whose resolved row equals
//! the stored one is counted as unchanged and not written.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::store::db::{params, Connection, ToValue};
use serde::Serialize;
use utoipa::ToSchema;

use super::batch_rows::Insert;
use super::deferred::Deferred;
use super::directory::{self, Dim};
use super::labels::Label;
use super::{calllog, dialect, labels, recordings, StoreError, WriteCache};
use crate::domain::record::{NamedRef, Note, ScenarioRef, TimelineData};
use crate::domain::recording::CallEvent;
use crate::domain::{AccountId, AttemptResult, CallKind, CallPatch, CallRecord, FieldError};

/// Bounds the writer's memory of numbers already in the dictionary.
const MAX_CACHED_NUMBERS: usize = 1_000_000;

/// What a batch did, as answered to the sender.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct IngestOutcome {
    pub created: u32,
    pub updated: u32,
    pub unchanged: u32,
    /// Updates kept until their call arrives.
    pub pending: u32,
    /// Ids of the calls created or changed, for live updates.
    #[serde(skip)]
    pub changed: Vec<i64>,
    /// Recording fetches this batch scheduled (the fetcher is woken only for these).
    #[serde(skip)]
    pub fetches: u32,
}

impl IngestOutcome {
    /// The batch's outcome for the ingestion health.
    pub fn counts(&self) -> super::health::Counts {
        super::health::Counts {
            accepted: self.created,
            updated: self.updated,
            duplicates: self.unchanged,
            pending: self.pending,
            ..Default::default()
        }
    }
}

/// The stored form of a call, as compared to decide whether anything changed.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    started_at: i64,
    kind: CallKind,
    from: String,
    to: String,
    operator_id: Option<i64>,
    group_id: Option<i64>,
    queue_id: Option<i64>,
    scenario_id: Option<i64>,
    campaign_id: Option<i64>,
    completion_code_id: Option<i64>,
    callback_at: Option<i64>,
    ring_seconds: Option<u32>,
    talk_seconds: u32,
    price_e4: Option<i64>,
    currency: Option<String>,
    result: Option<AttemptResult>,
    attempts: Option<u32>,
    explicit_started_at: Option<i64>,
    timeline: TimelineData,
    sent_ring: Option<u32>,
    sent_talk: Option<u32>,
    recording_url: Option<String>,
    flow: Option<String>,
    /// The raw log lines as JSON, kept in `call_log_lines`.
    log: Option<String>,
    tags: Vec<i64>,
    topics: Vec<i64>,
    notes: BTreeMap<String, (Option<String>, i64, String)>,
}

/// Applies a batch in order. Any invalid record fails the whole batch (the caller's savepoint
/// rolls everything back), naming the record's index and field. `source` names the sender in
/// each call's log.
pub fn apply_batch(
    conn: &Connection,
    cache: &mut WriteCache,
    account: AccountId,
    patches: Vec<CallPatch>,
    source: &str,
) -> Result<IngestOutcome, StoreError> {
    let mut out = IngestOutcome::default();
    let now = super::auth::now_ms();
    for (index, patch) in patches.into_iter().enumerate() {
        let invalid = |error: FieldError| StoreError::InvalidRecord { index, error };
        let external_id = patch.external_id.clone();
        // Log events, log lines, tags, topics, notes and counts wait (`Deferred`), unless this
        // call is among what waits.
        cache.deferred.before_load(conn, &external_id)?;
        match load(conn, account, &external_id)? {
            Loaded::Call(id, mut record, old) => {
                record.merge(patch);
                record.validate().map_err(invalid)?;
                let row = resolve(conn, cache, account, &record).map_err(|e| with_index(e, index))?;
                if row == *old {
                    out.unchanged += 1;
                } else {
                    let old = Some((id, &*old));
                    let fetch = write_row(conn, cache, account, &external_id, &row, old, source, now)?.1;
                    out.fetches += u32::from(fetch);
                    out.updated += 1;
                    out.changed.push(id);
                }
            }
            Loaded::Missing { pending, file_stored } if patch.starts_a_call() => {
                let mut record = CallRecord::default();
                record.merge(patch);
                if pending {
                    for waiting in take_pending(conn, account, &external_id)? {
                        record.merge(waiting);
                    }
                }
                record.validate().map_err(invalid)?;
                let row = resolve(conn, cache, account, &record).map_err(|e| with_index(e, index))?;
                let (id, fetch) = write_row(conn, cache, account, &external_id, &row, None, source, now)?;
                if file_stored {
                    recordings::set_has_recording(conn, id, true)?;
                    let detail = serde_json::json!({ "from": "stored before the call arrived" });
                    calllog::event_later(
                        &mut cache.deferred,
                        id,
                        CallEvent::RecordingStored,
                        source,
                        Some(detail),
                        now,
                    );
                }
                out.fetches += u32::from(fetch);
                out.created += 1;
                out.changed.push(id);
            }
            Loaded::Missing { .. } => {
                if keep_pending(conn, account, &patch, now)? {
                    out.pending += 1;
                } else {
                    out.unchanged += 1;
                }
            }
        }
    }
    cache.deferred.end_of_job(conn)?;
    Ok(out)
}

/// Lays events that each carry part of a call, in any order (the reference product's webhooks),
/// over what is stored: their tags and topics add to the stored ones (such a sender never removes
/// a label), and a kind the event only guessed (`.1`) does not replace a stored one.
pub fn complete_partial(
    conn: &Connection,
    account: AccountId,
    patches: &mut [(CallPatch, bool)],
) -> Result<(), StoreError> {
    for (p, guessed_kind) in patches.iter_mut() {
        if p.tags.is_none() && p.topics.is_none() && !*guessed_kind {
            continue;
        }
        if let Loaded::Call(_, stored, _) = load(conn, account, &p.external_id)? {
            if *guessed_kind && stored.kind.is_some() {
                p.kind = None;
            }
            if let Some(tags) = &mut p.tags {
                tags.extend(
                    stored
                        .tags
                        .iter()
                        .filter(|t| !tags.contains(t))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
            if let Some(topics) = &mut p.topics {
                topics.extend(
                    stored
                        .topics
                        .iter()
                        .filter(|t| !topics.contains(t))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    Ok(())
}

fn with_index(e: StoreError, index: usize) -> StoreError {
    match e {
        StoreError::Invalid(error) => StoreError::InvalidRecord { index, error },
        other => other,
    }
}

/// Keeps an update for a call not seen yet; the same update sent again is kept once.
fn keep_pending(conn: &Connection, account: AccountId, patch: &CallPatch, now: i64) -> Result<bool, StoreError> {
    // Serialisation is deterministic, so the same update compares equal as text.
    let json = serde_json::to_string(patch).map_err(|e| StoreError::Conflict(e.to_string()))?;
    let dup = conn
        .prepare_cached("SELECT 1 FROM pending_updates WHERE account_id = ? AND external_id = ? AND patch = ?")?
        .exists(params![account.0, patch.external_id, json])?;
    if !dup {
        conn.prepare_cached(
            "INSERT INTO pending_updates (account_id, external_id, patch, received_at) VALUES (?, ?, ?, ?)",
        )?
        .execute(params![account.0, patch.external_id, json, now])?;
    }
    Ok(!dup)
}

/// Removes and returns the updates that waited for this call, oldest first.
fn take_pending(conn: &Connection, account: AccountId, external_id: &str) -> Result<Vec<CallPatch>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT patch FROM pending_updates WHERE account_id = ? AND external_id = ? ORDER BY id")?;
    let raws: Vec<String> = stmt
        .query_map(params![account.0, external_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if raws.is_empty() {
        return Ok(Vec::new());
    }
    conn.prepare_cached("DELETE FROM pending_updates WHERE account_id = ? AND external_id = ?")?
        .execute(params![account.0, external_id])?;
    // These were validated when they arrived; one that no longer parses is a bug worth a log line,
    // not a reason to refuse the call.
    Ok(raws
        .iter()
        .filter_map(|raw| match serde_json::from_str::<CallPatch>(raw) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "dropping an unreadable pending update");
                None
            }
        })
        .collect())
}

/// Turns a merged record into the stored row: resolves directory keys, computes durations.
fn resolve(conn: &Connection, cache: &mut WriteCache, account: AccountId, r: &CallRecord) -> Result<Row, StoreError> {
    let kind = r
        .kind
        .ok_or_else(|| StoreError::Invalid(FieldError::new("kind", "kind is required")))?;
    let started_at = r
        .start()
        .ok_or_else(|| StoreError::Invalid(FieldError::new("started_at", "the call has no start instant")))?;
    let durations = r.durations();
    let mut dim = |d: Dim, key: &Option<String>| -> Result<Option<i64>, StoreError> {
        key.as_deref()
            .map(|k| directory::ensure(conn, cache, d, account, k, None, None))
            .transpose()
    };
    let group_id = dim(Dim::Group, &r.group)?;
    let queue_id = dim(Dim::Queue, &r.queue)?;
    let named = |cache: &mut WriteCache, d: Dim, n: &Option<NamedRef>| -> Result<Option<i64>, StoreError> {
        n.as_ref()
            .map(|n| directory::ensure(conn, cache, d, account, &n.id, n.name.as_deref(), None))
            .transpose()
    };
    let campaign_id = named(cache, Dim::Campaign, &r.campaign)?;
    let completion_code_id = named(cache, Dim::CompletionCode, &r.completion_code)?;
    let scenario_id = match &r.scenario {
        Some(s) => Some(directory::ensure(
            conn,
            cache,
            Dim::Scenario,
            account,
            &s.id,
            s.name.as_deref(),
            Some((s.kind, s.url.as_deref())),
        )?),
        None => None,
    };
    let operator_id = match &r.operator {
        Some(login) => Some(directory::ensure_operator(
            conn,
            cache,
            account,
            login,
            r.operator_name.as_deref(),
        )?),
        None => None,
    };
    let mut tags = r
        .tags
        .iter()
        .map(|t| directory::ensure(conn, cache, Dim::Tag, account, t, None, None))
        .collect::<Result<Vec<_>, _>>()?;
    tags.sort_unstable();
    let mut topics = r
        .topics
        .iter()
        .map(|t| directory::ensure(conn, cache, Dim::Topic, account, t, None, None))
        .collect::<Result<Vec<_>, _>>()?;
    topics.sort_unstable();
    let flow = if r.flow.is_empty() {
        None
    } else {
        serde_json::to_string(&r.flow).ok()
    };
    let log = if r.log.is_empty() {
        None
    } else {
        serde_json::to_string(&r.log).ok()
    };
    Ok(Row {
        started_at,
        kind,
        from: r.from.clone().unwrap_or_default(),
        to: r.to.clone().unwrap_or_default(),
        operator_id,
        group_id,
        queue_id,
        scenario_id,
        campaign_id,
        completion_code_id,
        callback_at: r.callback_at,
        ring_seconds: durations.ring,
        talk_seconds: durations.talk,
        price_e4: r.price.map(|p| p.0),
        currency: r.currency.clone(),
        result: r.result,
        attempts: r.attempts,
        explicit_started_at: r.started_at,
        timeline: r.timeline,
        sent_ring: r.sent_ring,
        sent_talk: r.sent_talk,
        recording_url: r.recording_url.clone(),
        flow,
        log,
        tags,
        topics,
        notes: r
            .notes
            .iter()
            .map(|n| {
                (
                    n.id.clone(),
                    (n.author.clone(), n.at.timestamp_millis(), n.text.clone()),
                )
            })
            .collect(),
    })
}

const COLUMNS: &str = "started_at, kind, from_number, to_number, operator_id, group_id, queue_id, scenario_id, \
    campaign_id, completion_code_id, callback_at, ring_seconds, talk_seconds, price_e4, currency, result, attempts, \
    explicit_started_at, dial_started_at, answered_at, scenario_started_at, amd_detected_at, ended_at, \
    sent_ring_seconds, sent_talk_seconds, recording_url, flow";

/// The statements over every column, built once.
static INSERT_SQL: LazyLock<String> = LazyLock::new(|| {
    let marks = vec!["?"; COLUMNS.split(", ").count() + 4].join(", ");
    // Run through `insert_id`: on PostgreSQL the id comes back in the same round trip.
    format!("INSERT INTO calls ({COLUMNS}, label_bits, updated_at, account_id, external_id) VALUES ({marks})")
});
static UPDATE_SQL: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = COLUMNS.split(", ").map(|c| format!("{} = ?", c.trim())).collect();
    format!(
        "UPDATE calls SET {}, label_bits = ?, updated_at = ? WHERE id = ?",
        sets.join(", ")
    )
});
static LOAD_SQL: LazyLock<String> = LazyLock::new(|| {
    let cols: Vec<String> = COLUMNS.split(", ").map(|c| format!("c.{}", c.trim())).collect();
    format!(
        "SELECT c.id, {}, u.login, g.key, q.key, s.key, cp.key, cc.key, l.lines, \
         EXISTS (SELECT 1 FROM pending_updates p WHERE p.account_id = ?1 AND p.external_id = ?2), \
         EXISTS (SELECT 1 FROM recordings r WHERE r.account_id = ?1 AND r.external_id = ?2 AND r.object_key IS NOT NULL) \
         FROM (SELECT 1 AS one) probe LEFT JOIN calls c ON c.account_id = ?1 AND c.external_id = ?2 \
         LEFT JOIN users u ON u.id = c.operator_id LEFT JOIN groups g ON g.id = c.group_id \
         LEFT JOIN queues q ON q.id = c.queue_id LEFT JOIN scenarios s ON s.id = c.scenario_id \
         LEFT JOIN campaigns cp ON cp.id = c.campaign_id LEFT JOIN completion_codes cc ON cc.id = c.completion_code_id \
         LEFT JOIN call_log_lines l ON l.call_id = c.id",
        cols.join(", ")
    )
});

/// Inserts (no `existing` call) or updates a call and its tags, topics, notes, log lines and
/// recording request; notes the change in the call's log; returns its id and whether a
/// recording fetch was scheduled.
#[allow(clippy::too_many_arguments)]
fn write_row(
    conn: &Connection,
    cache: &mut WriteCache,
    account: AccountId,
    external_id: &str,
    row: &Row,
    existing: Option<(i64, &Row)>,
    source: &str,
    now: i64,
) -> Result<(i64, bool), StoreError> {
    let kind = row.kind.code();
    let result = row.result.map(|r| r.code());
    let t = &row.timeline;
    let values: [&dyn ToValue; 27] = [
        &row.started_at,
        &kind,
        &row.from,
        &row.to,
        &row.operator_id,
        &row.group_id,
        &row.queue_id,
        &row.scenario_id,
        &row.campaign_id,
        &row.completion_code_id,
        &row.callback_at,
        &row.ring_seconds,
        &row.talk_seconds,
        &row.price_e4,
        &row.currency,
        &result,
        &row.attempts,
        &row.explicit_started_at,
        &t.dial_started_at,
        &t.answered_at,
        &t.scenario_started_at,
        &t.amd_detected_at,
        &t.ended_at,
        &row.sent_ring,
        &row.sent_talk,
        &row.recording_url,
        &row.flow,
    ];
    let bits = labels::label_bits(&row.tags, &row.topics);
    let mut args: Vec<&dyn ToValue> = values.to_vec();
    args.push(&bits);
    args.push(&now);
    let (id, old) = (existing.map(|e| e.0), existing.map(|e| e.1));
    let id = match id {
        None => {
            args.push(&account.0);
            args.push(&external_id);
            conn.insert_id(&INSERT_SQL, args.as_slice())?
        }
        Some(id) => {
            args.push(&id);
            conn.prepare_cached(&UPDATE_SQL)?.execute(args.as_slice())?;
            id
        }
    };
    // Dictionary look-ups are skipped for numbers this writer has seen recently.
    for number in [&row.from, &row.to] {
        if !number.is_empty() && !cache.numbers.contains(number) {
            dialect::remember_number(conn, &mut cache.deferred, number)?;
            if cache.numbers.len() >= MAX_CACHED_NUMBERS {
                cache.numbers.clear();
            }
            cache.numbers.insert(number.clone());
        }
    }
    let counted = |r: &Row| {
        (
            r.started_at.div_euclid(super::counts::HOUR_MS),
            r.kind,
            r.result,
            r.operator_id,
        )
    };
    cache.deferred.wrote(external_id);
    if old.map(counted) != Some(counted(row)) {
        let counts = cache.deferred.counts(account);
        if let Some(o) = old {
            counts.add(o.started_at, o.kind, o.result, o.operator_id, -1);
        }
        counts.add(row.started_at, row.kind, row.result, row.operator_id, 1);
    }
    let rows = &mut cache.deferred;
    let blank = blank(row);
    let created = old.is_none();
    let old = old.unwrap_or(&blank);
    let fields = changed_fields(old, row);
    let event = if created {
        CallEvent::Created
    } else {
        CallEvent::Updated
    };
    let detail = serde_json::json!({ "fields": fields });
    calllog::event_later(rows, id, event, source, Some(detail), now);
    if old.log != row.log {
        calllog::set_lines(conn, rows, id, row.log.as_deref())?;
    }
    let mut fetch = false;
    if old.recording_url != row.recording_url {
        match &row.recording_url {
            Some(url) => {
                fetch = recordings::request(conn, account, external_id, url, now)?;
                if fetch {
                    let detail = serde_json::json!({ "url": url });
                    calllog::event_later(rows, id, CallEvent::RecordingRequested, source, Some(detail), now);
                }
            }
            None => recordings::forget_url(conn, account, external_id)?,
        }
    }
    if old.tags != row.tags {
        replace_set(conn, rows, Label::Tag.insert(), id, &row.tags, created)?;
    }
    if old.topics != row.topics {
        replace_set(conn, rows, Label::Topic.insert(), id, &row.topics, created)?;
    }
    for (key, note) in &row.notes {
        if old.notes.get(key) != Some(note) {
            rows.add(&NOTES, params![id, key, note.0, note.1, note.2]);
        }
    }
    Ok((id, fetch))
}

/// A call with nothing known but its kind and start: what a new call is compared with, so that
/// its log lists the fields it arrived with.
fn blank(row: &Row) -> Row {
    Row {
        started_at: row.started_at,
        kind: row.kind,
        from: String::new(),
        to: String::new(),
        operator_id: None,
        group_id: None,
        queue_id: None,
        scenario_id: None,
        campaign_id: None,
        completion_code_id: None,
        callback_at: None,
        ring_seconds: None,
        talk_seconds: 0,
        price_e4: None,
        currency: None,
        result: None,
        attempts: None,
        explicit_started_at: None,
        timeline: TimelineData::default(),
        sent_ring: None,
        sent_talk: None,
        recording_url: None,
        flow: None,
        log: None,
        tags: vec![],
        topics: vec![],
        notes: BTreeMap::new(),
    }
}

/// The API names of the fields that differ between two stored forms of a call.
fn changed_fields(old: &Row, new: &Row) -> Vec<&'static str> {
    let (t, u) = (&old.timeline, &new.timeline);
    [
        (
            "started_at",
            old.started_at != new.started_at || old.explicit_started_at != new.explicit_started_at,
        ),
        ("kind", old.kind != new.kind),
        ("from", old.from != new.from),
        ("to", old.to != new.to),
        ("operator", old.operator_id != new.operator_id),
        ("group", old.group_id != new.group_id),
        ("queue", old.queue_id != new.queue_id),
        ("scenario", old.scenario_id != new.scenario_id),
        ("campaign", old.campaign_id != new.campaign_id),
        (
            "completion_code",
            old.completion_code_id != new.completion_code_id || old.callback_at != new.callback_at,
        ),
        ("dial_started_at", t.dial_started_at != u.dial_started_at),
        ("answered_at", t.answered_at != u.answered_at),
        ("scenario_started_at", t.scenario_started_at != u.scenario_started_at),
        ("amd_detected_at", t.amd_detected_at != u.amd_detected_at),
        ("ended_at", t.ended_at != u.ended_at),
        ("ring_seconds", old.ring_seconds != new.ring_seconds),
        ("talk_seconds", old.talk_seconds != new.talk_seconds),
        ("price", old.price_e4 != new.price_e4 || old.currency != new.currency),
        ("result", old.result != new.result),
        ("attempts", old.attempts != new.attempts),
        ("recording_url", old.recording_url != new.recording_url),
        ("flow", old.flow != new.flow),
        ("log", old.log != new.log),
        ("tags", old.tags != new.tags),
        ("topics", old.topics != new.topics),
        ("notes", old.notes != new.notes),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect()
}

static NOTES: Insert = Insert {
    table: "call_notes",
    columns: &["call_id", "key", "author", "at", "text"],
    tail: " ON CONFLICT (call_id, key) DO UPDATE SET author = excluded.author, at = excluded.at, text = excluded.text",
};

/// Sets a call's tags or topics; a call just created has none to delete (a round trip saved per
/// call on PostgreSQL).
fn replace_set(
    conn: &Connection,
    rows: &mut Deferred,
    set: &'static Insert,
    call: i64,
    ids: &[i64],
    created: bool,
) -> Result<(), StoreError> {
    if !created {
        conn.prepare_cached(&format!("DELETE FROM {} WHERE call_id = ?", set.table))?
            .execute([call])?;
    }
    for id in ids {
        rows.add(set, [call, *id]);
    }
    Ok(())
}

/// What one look-up by external id found.
enum Loaded {
    /// The stored call, as a record (keys, for merging) and as its row (for comparing); boxed,
    /// as most look-ups of a batch find nothing.
    Call(i64, Box<CallRecord>, Box<Row>),
    /// No call yet; whether updates wait for it and whether its recording is already stored
    /// (asked in the same statement: two round trips fewer per new call on PostgreSQL).
    Missing { pending: bool, file_stored: bool },
}

/// Loads a stored call, or what waits for it.
fn load(conn: &Connection, account: AccountId, external_id: &str) -> Result<Loaded, StoreError> {
    let mut stmt = conn.prepare_cached(&LOAD_SQL)?;
    let found = stmt.query_row(params![account.0, external_id], |r| {
        let Some(id) = r.get::<_, Option<i64>>(0)? else {
            return Ok(Loaded::Missing {
                pending: r.get(35)?,
                file_stored: r.get(36)?,
            });
        };
        let kind: String = r.get(2)?;
        let result: Option<String> = r.get(16)?;
        let timeline = TimelineData {
            dial_started_at: r.get(19)?,
            answered_at: r.get(20)?,
            scenario_started_at: r.get(21)?,
            amd_detected_at: r.get(22)?,
            ended_at: r.get(23)?,
        };
        let row = Row {
            started_at: r.get(1)?,
            kind: CallKind::parse(&kind).unwrap_or(CallKind::Incoming),
            from: r.get(3)?,
            to: r.get(4)?,
            operator_id: r.get(5)?,
            group_id: r.get(6)?,
            queue_id: r.get(7)?,
            scenario_id: r.get(8)?,
            campaign_id: r.get(9)?,
            completion_code_id: r.get(10)?,
            callback_at: r.get(11)?,
            ring_seconds: r.get(12)?,
            talk_seconds: r.get(13)?,
            price_e4: r.get(14)?,
            currency: r.get(15)?,
            result: result.as_deref().and_then(AttemptResult::parse),
            attempts: r.get(17)?,
            explicit_started_at: r.get(18)?,
            timeline,
            sent_ring: r.get(24)?,
            sent_talk: r.get(25)?,
            recording_url: r.get(26)?,
            flow: r.get(27)?,
            log: r.get(34)?,
            tags: vec![],
            topics: vec![],
            notes: BTreeMap::new(),
        };
        let key = |i: usize| r.get::<_, Option<String>>(i);
        let reference = |k: Option<String>| k.map(|id| NamedRef { id, name: None });
        let record = CallRecord {
            external_id: external_id.to_string(),
            kind: Some(row.kind),
            from: Some(row.from.clone()).filter(|s| !s.is_empty()),
            to: Some(row.to.clone()).filter(|s| !s.is_empty()),
            started_at: row.explicit_started_at,
            timeline,
            sent_ring: row.sent_ring,
            sent_talk: row.sent_talk,
            result: row.result,
            operator: key(28)?,
            operator_name: None,
            group: key(29)?,
            queue: key(30)?,
            scenario: key(31)?.map(|id| ScenarioRef {
                id,
                name: None,
                kind: None,
                url: None,
            }),
            campaign: reference(key(32)?),
            price: row.price_e4.map(crate::domain::record::Money),
            currency: row.currency.clone(),
            completion_code: reference(key(33)?),
            callback_at: row.callback_at,
            attempts: row.attempts,
            tags: Default::default(),
            topics: Default::default(),
            notes: vec![],
            recording_url: row.recording_url.clone(),
            flow: row
                .flow
                .as_deref()
                .and_then(|f| serde_json::from_str(f).ok())
                .unwrap_or_default(),
            log: row
                .log
                .as_deref()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or_default(),
        };
        Ok(Loaded::Call(id, Box::new(record), Box::new(row)))
    })?;
    let Loaded::Call(id, mut record, mut row) = found else {
        return Ok(found);
    };
    for (label, ids, keys) in [
        (Label::Tag, &mut row.tags, &mut record.tags),
        (Label::Topic, &mut row.topics, &mut record.topics),
    ] {
        let (dim_table, table, col) = label.tables();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT d.id, d.key FROM {table} x JOIN {dim_table} d ON d.id = x.{col} WHERE x.call_id = ?"
        ))?;
        for pair in stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (i, k) = pair?;
            ids.push(i);
            keys.insert(k);
        }
        ids.sort_unstable();
    }
    let mut stmt = conn.prepare_cached("SELECT key, author, at, text FROM call_notes WHERE call_id = ? ORDER BY id")?;
    for note in stmt.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })? {
        let (key, author, at, text) = note?;
        row.notes.insert(key.clone(), (author.clone(), at, text.clone()));
        record.notes.push(Note {
            id: key,
            author,
            at: chrono::DateTime::from_timestamp_millis(at).unwrap_or_default(),
            text,
        });
    }
    Ok(Loaded::Call(id, record, row))
}
