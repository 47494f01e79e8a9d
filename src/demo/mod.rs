//! The demo contact center: directory, people of every role, a quarter of call history, and a
//! generator that keeps calls coming. Calls go in through the same ingest path as real ones.

mod audio;
pub mod generate;
pub mod names;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use futures_util::StreamExt;
use rand::distr::{Alphanumeric, SampleString};

use crate::domain::{AccountId, AttemptResult, Role, TokenScope, UserId};
use crate::live::LiveHub;
use crate::recording::Recordings;
use crate::store::auth::{self, NewUser};
use crate::store::directory::{self, Dim};
use crate::store::ingest::apply_batch;
use crate::store::people;
use crate::store::recordings::{self, StoredFile};
use crate::store::{Store, StoreError};
use generate::Generator;
use names::{GROUPS, OPERATORS};

/// Calls per ingest transaction while seeding.
const SEED_BATCH: usize = 5_000;

/// A login printed for the person trying the demo.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    pub role: Role,
    pub login: String,
    pub password: String,
}

/// Seeds `calls` calls over the last `days` days into `account`, in batches; returns how many.
pub async fn seed_calls(
    store: &Store,
    account: AccountId,
    calls: usize,
    days: u32,
    seed: u64,
    prefix: &str,
) -> Result<usize, StoreError> {
    let mut g = Generator::new(seed, calls, prefix);
    let times = g.start_times(calls, days, Utc::now());
    let total = times.len();
    for chunk in times.chunks(SEED_BATCH) {
        let batch: Vec<_> = chunk.iter().map(|t| g.call(*t)).collect();
        store
            .write(move |conn, cache| apply_batch(conn, cache, account, batch, "demo"))
            .await?;
    }
    store.analyze(true).await?;
    Ok(total)
}

/// Creates the directory and the people of the demo; returns the logins to print.
async fn create_people(store: &Store, account: AccountId) -> Result<Vec<DemoLogin>, StoreError> {
    let people: Vec<(Role, String, String)> = vec![
        (Role::Owner, "owner".into(), "Владимир Соколов".into()),
        (Role::Admin, "admin".into(), "Администратор".into()),
        (Role::Manager, "manager".into(), "Марина Белова".into()),
        (Role::Supervisor, "supervisor".into(), "Олег Тимофеев".into()),
        (Role::Operator, OPERATORS[0].0.into(), OPERATORS[0].1.into()),
    ];
    let logins: Vec<DemoLogin> = people
        .iter()
        .map(|(role, login, _)| DemoLogin {
            role: *role,
            login: login.clone(),
            password: Alphanumeric.sample_string(&mut rand::rng(), 12),
        })
        .collect();
    let hashes: Vec<String> = logins
        .iter()
        .map(|l| crate::secrets::hash_password(&l.password))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Conflict(e.to_string()))?;
    store
        .write(move |conn, cache| {
            auth::set_account_timezone(conn, account, "Europe/Moscow")?;
            let mut group_ids = vec![];
            for (key, name, queue_key, queue_name) in GROUPS {
                group_ids.push(directory::ensure(
                    conn,
                    cache,
                    Dim::Group,
                    account,
                    key,
                    Some(name),
                    None,
                )?);
                directory::ensure(conn, cache, Dim::Queue, account, queue_key, Some(queue_name), None)?;
            }
            let per_group = OPERATORS.len() / GROUPS.len();
            for (i, (login, name)) in OPERATORS.iter().enumerate() {
                let id = directory::ensure_operator(conn, cache, account, login, Some(name))?;
                directory::add_to_group(conn, group_ids[i / per_group], UserId(id), false)?;
                // Every fifth operator also helps out in the next group.
                if i % 5 == 0 {
                    directory::add_to_group(
                        conn,
                        group_ids[(i / per_group + 1) % group_ids.len()],
                        UserId(id),
                        false,
                    )?;
                }
            }
            for ((role, login, name), hash) in people.iter().zip(&hashes) {
                let id = auth::create_user(
                    conn,
                    &NewUser {
                        account_id: account,
                        login,
                        name,
                        role: *role,
                        password_hash: Some(hash),
                    },
                )?;
                if *role == Role::Supervisor {
                    directory::add_to_group(conn, group_ids[0], id, true)?;
                    directory::add_to_group(conn, group_ids[1], id, true)?;
                }
            }
            // Sales lets its operators see their own calls, so the demo operator sees something.
            let access = people::GroupChange {
                call_history_access: Some(true),
                ..people::GroupChange::default()
            };
            people::update_group(conn, account, group_ids[0], &access)?;
            Ok(())
        })
        .await?;
    Ok(logins)
}

/// Fills an empty account with the demo contact center. Returns the printed logins, or `None`
/// when the account already has calls (the demo was set up before).
pub async fn prepare(
    store: &Store,
    recordings: &Recordings,
    data: &Path,
    calls: usize,
    days: u32,
) -> Result<Option<(Vec<DemoLogin>, String)>, StoreError> {
    let account = store
        .read(|conn| auth::account_by_name(conn, auth::DEFAULT_ACCOUNT)?.ok_or(StoreError::NotFound))
        .await?
        .id;
    let has_calls = store
        .read(move |conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM calls WHERE account_id = ?)",
                [account.0],
                |r| r.get::<_, bool>(0),
            )?)
        })
        .await?;
    if has_calls {
        return Ok(None);
    }
    let logins = create_people(store, account).await?;
    let token = crate::secrets::new_token("ct_");
    let hash = crate::secrets::token_hash(&token);
    store
        .write(move |conn, _| {
            let owner = auth::user_by_login(conn, account, "owner")?.ok_or(StoreError::NotFound)?;
            auth::create_token(conn, owner, "demo", TokenScope::Full, &hash)
        })
        .await?;
    tracing::info!(calls, days, "seeding the demo call history");
    let started = std::time::Instant::now();
    let n = seed_calls(store, account, calls, days, 20_261_125, "demo").await?;
    let files = std::sync::Arc::new(demo_recordings(recordings).await?);
    // In stretches of calls, each its own transaction: one transaction over ten million calls
    // grew the writer past the machine's memory.
    let last: i64 = store
        .read(|conn| Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM calls", (), |r| r.get(0))?))
        .await?;
    for from in (0..=last).step_by(ATTACH_STRETCH as usize) {
        let files = files.clone();
        store
            .write(move |conn, _| attach_demo_recordings(conn, account, &files, from, from + ATTACH_STRETCH))
            .await?;
    }
    tracing::info!(
        calls = n,
        seconds = started.elapsed().as_secs_f64(),
        "demo history ready"
    );
    let mut text = String::from("calltrail demo logins (role, login, password)\n");
    for l in &logins {
        text.push_str(&format!("{:<11} {:<11} {}\n", l.role.code(), l.login, l.password));
    }
    text.push_str(&format!("API token of owner: {token}\n"));
    std::fs::write(data.join("demo-logins.txt"), &text)?;
    Ok(Some((logins, token)))
}

/// Keeps adding a call every few seconds, and now and then a follow-up a little later, until
/// the store shuts down.
pub async fn run_live(store: Store, recordings: Recordings, live: LiveHub, account: AccountId) {
    let files = match demo_recordings(&recordings).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "demo recordings could not be stored; live calls will have none");
            vec![]
        }
    };
    let mut g = Generator::new(
        Utc::now().timestamp() as u64,
        10_000,
        &format!("live-{}", Utc::now().timestamp()),
    );
    let mut waiting: Vec<(tokio::time::Instant, crate::domain::CallPatch)> = vec![];
    loop {
        let pause = Duration::from_millis(2_000 + (Utc::now().timestamp_subsec_millis() as u64 % 3_000));
        tokio::time::sleep(pause).await;
        // The call just ended: it started its duration ago.
        let mut call = g.call(Utc::now());
        let length = call.ended_at.flatten().map(|e| e - Utc::now()).unwrap_or_default();
        let shift = |t: &mut Option<Option<chrono::DateTime<Utc>>>| {
            if let Some(Some(v)) = t {
                *v -= length;
            }
        };
        for t in [
            &mut call.dial_started_at,
            &mut call.scenario_started_at,
            &mut call.answered_at,
            &mut call.amd_detected_at,
            &mut call.ended_at,
        ] {
            shift(t);
        }
        if let Some(flow) = call.flow.as_mut() {
            flow.iter_mut().for_each(|s| s.at -= length);
        }
        if let Some(notes) = call.notes.as_mut() {
            notes.iter_mut().for_each(|n| n.at = Utc::now());
        }
        if call.operator.is_some() && g.wants_follow_up() {
            waiting.push((
                tokio::time::Instant::now() + Duration::from_secs(8),
                g.follow_up(&call, Utc::now()),
            ));
        }
        let recorded = (call.result == Some(Some(AttemptResult::Answered)) && call.operator.is_some())
            .then(|| call.external_id.clone());
        let now = tokio::time::Instant::now();
        let mut batch = vec![call];
        let (due, later): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(at, _)| *at <= now);
        waiting = later;
        batch.extend(due.into_iter().map(|(_, p)| p));
        let file = files.get(g.pick_index(files.len().max(1))).cloned();
        match store
            .write(move |conn, cache| {
                let mut outcome = apply_batch(conn, cache, account, batch, "demo")?;
                if let (Some(external_id), Some(file)) = (recorded, file) {
                    let at = crate::store::auth::now_ms();
                    outcome.changed.extend(recordings::attach(
                        conn,
                        account,
                        &external_id,
                        &file,
                        None,
                        "demo",
                        at,
                    )?);
                }
                Ok(outcome)
            })
            .await
        {
            Ok(outcome) => live.publish(account, outcome.changed),
            Err(StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "demo generator could not add a call"),
        }
    }
}

/// How many different demo recordings there are; calls share them.
const DEMO_RECORDINGS: u64 = 6;

/// Stores the demo recordings (again, if they are there: the same keys, the same bytes).
async fn demo_recordings(recordings: &Recordings) -> Result<Vec<StoredFile>, StoreError> {
    let mut files = Vec::new();
    for n in 0..DEMO_RECORDINGS {
        let wav = audio::conversation(14 + 4 * n as u32, n);
        let key = format!("demo/conversation-{n}.wav");
        let body = futures_util::stream::iter([Ok(bytes::Bytes::from(wav))]).boxed();
        let written = recordings
            .storage
            .put(&key, body, recordings.max_bytes)
            .await
            .map_err(|e| StoreError::Conflict(format!("demo recording: {e}")))?;
        files.push(StoredFile {
            object_key: key,
            content_type: "audio/wav".into(),
            bytes: written.bytes as i64,
            sha256: written.sha256,
        });
    }
    Ok(files)
}

/// Gives every answered call that an operator took one of the demo recordings.
/// Calls whose demo recordings are attached per transaction.
const ATTACH_STRETCH: i64 = 200_000;

/// Attaches the demo recordings to the answered calls with an operator among ids `from..to`.
fn attach_demo_recordings(
    conn: &crate::store::db::Connection,
    account: AccountId,
    files: &[StoredFile],
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    let now = crate::store::auth::now_ms();
    let n = files.len() as i64;
    let which = format!(
        "account_id = ?1 AND result = 'answered' AND operator_id IS NOT NULL AND id % ?2 = ?3 \
         AND id >= {from} AND id < {to}"
    );
    for (i, f) in files.iter().enumerate() {
        conn.execute(
            &format!(
                "INSERT INTO recordings (account_id, external_id, state, object_key, content_type, bytes, sha256, \
                 stored_at, updated_at) SELECT account_id, external_id, 'stored', ?4, ?5, ?6, ?7, started_at, ?8 \
                 FROM calls WHERE {which}"
            ),
            crate::store::db::params![
                account.0,
                n,
                i as i64,
                f.object_key,
                f.content_type,
                f.bytes,
                f.sha256,
                now
            ],
        )?;
        conn.execute(
            &format!(
                "INSERT INTO call_events (call_id, at, event, source, detail) \
                 SELECT id, ?5, 'recording_stored', 'demo', ?4 FROM calls WHERE {which}"
            ),
            crate::store::db::params![
                account.0,
                n,
                i as i64,
                serde_json::json!({"bytes": f.bytes, "content_type": f.content_type, "from": "upload"}).to_string(),
                now
            ],
        )?;
        conn.execute(
            &format!("UPDATE calls SET has_recording = 1 WHERE {which}"),
            crate::store::db::params![account.0, n, i as i64],
        )?;
    }
    Ok(())
}
