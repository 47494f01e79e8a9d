//! Delivers QM export jobs: calls in batches of `--qm-batch-size` with requests
//! `--qm-requests-per-second` apart and a pause between batches (the QM system blocks senders
//! that burst), the jobs taking turns batch by batch so that one account's long or throttled job
//! does not hold up another's; each operator imported before their first call and again when
//! their name changes; retries with a doubling delay on 408, 5xx and silence; a 429 holds its job
//! back for as long as asked (without using up the call's attempts); the x-correlation-id of every
//! failure kept.
//!
//! No call is sent twice: before a request the call is marked `sending` (committed), and the
//! QM system's 200 is recorded together with the account's delivery record, which every later
//! job checks first. A stopping server lets the request that is out finish and be recorded; a
//! server that dies mid-request leaves a `sending` call, reported failed on the next start
//! (it may have been taken) and sent again only by an explicit re-run. A request the QM system
//! does not answer in time is sent again with the same id (the rule: timeouts are
//! retried); its `id` is stable, so the QM system can tell it is the same call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::client::{Answer, CallPayload, QmClient, UserPayload, AGENT_ROLE};
use super::{link, Qm};
use crate::config::{Config, QmConfig};
use crate::domain::qm::{self as words, Outcome};
use crate::export::jobs::JobState;
use crate::recording::sniff;
use crate::store::auth::{self, now_ms};
use crate::store::qm::{self as rows, Attempt, Due, Export};
use crate::store::{access, people, recordings, search, Store};

/// Calls listed per write while a filtered job is prepared.
const PREPARE_STRETCH: u32 = 5_000;
/// A call throttled this many times fails: the QM system is refusing this sender.
const MAX_THROTTLES: i64 = 20;

/// Runs until `stop` is cancelled; a request that is out when it is finishes first.
pub async fn run(store: Store, config: Arc<Config>, qm: Qm, stop: CancellationToken) {
    match store.write(|conn, _| rows::interrupted_sends(conn, now_ms())).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(calls = n, "QM sends interrupted by the last stop are reported failed"),
        Err(e) => tracing::warn!(error = %e, "could not look at interrupted QM sends"),
    }
    let worker = Worker {
        store,
        config,
        qm,
        stop,
    };
    // Jobs a 429 holds back, until when (epoch ms).
    let mut held: HashMap<i64, i64> = HashMap::new();
    // A round visits every open job once, in id order, one batch each.
    let mut after = 0;
    let mut worked = false;
    let mut soonest: Option<i64> = None;
    loop {
        if worker.stop.is_cancelled() {
            return;
        }
        let next = worker
            .store
            .write(move |conn, _| rows::next_export(conn, after, now_ms()))
            .await;
        let job = match next {
            Ok(Some(job)) => job,
            Ok(None) => {
                let wait = match (after, worked, soonest) {
                    // No open job at all: until one is queued.
                    (0, _, _) => 60_000,
                    (_, true, _) => 0,
                    // Every job waits (retries, holds): until the first is due, looking again
                    // (a cancel, a new job) at least every second.
                    (_, false, Some(at)) => (at - now_ms()).clamp(0, 1_000) as u64,
                    (_, false, None) => 1_000,
                };
                if wait > 0 {
                    tokio::select! {
                        _ = worker.qm.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                        _ = worker.stop.cancelled() => return,
                    }
                }
                (after, worked, soonest) = (0, false, None);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take the next QM export");
                if !worker.pause(1_000).await {
                    return;
                }
                continue;
            }
        };
        after = job.id;
        let id = job.id;
        if let Some(&until) = held.get(&id) {
            if until > now_ms() {
                soonest = Some(soonest.map_or(until, |s| s.min(until)));
                continue;
            }
            held.remove(&id);
        }
        let pause = match worker.step(job).await {
            Step::Sent { full } => {
                worked = true;
                let rules = worker.rules();
                if full {
                    rules.batch_pause_ms.max(rules.request_interval_ms)
                } else {
                    rules.request_interval_ms
                }
            }
            Step::Held(until) => {
                held.insert(id, until);
                soonest = Some(soonest.map_or(until, |s| s.min(until)));
                worker.rules().request_interval_ms
            }
            Step::Waiting(at) => {
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
                0
            }
            Step::Over => 0,
            Step::Failed(reason) => {
                let finished = worker
                    .store
                    .write(move |conn, _| rows::finish_export(conn, id, Some(&reason), now_ms()))
                    .await;
                if let Err(e) = finished {
                    tracing::warn!(job = id, error = %e, "could not record the end of a QM export");
                }
                0
            }
        };
        if pause > 0 && !worker.pause(pause).await {
            return;
        }
    }
}

struct Worker {
    store: Store,
    config: Arc<Config>,
    qm: Qm,
    stop: CancellationToken,
}

/// What the job does after one call.
enum Next {
    Go,
    /// The QM system throttles: hold the job's requests back this long.
    Hold(Duration),
    /// The job cannot go on (the key was refused).
    Stop(String),
}

/// What one turn of a job came to.
enum Step {
    /// A batch went out; `full`: more calls are due (a batch pause follows).
    Sent { full: bool },
    /// The QM system throttles this job: its next turn is not before then (epoch ms).
    Held(i64),
    /// Every call left waits for a retry; the first is due then.
    Waiting(i64),
    /// Done, cancelled, or the server is stopping.
    Over,
    /// It cannot go on, for this reason.
    Failed(String),
}

/// An integration ready to send with.
struct Link {
    client: QmClient,
    language_code: String,
    channel: &'static str,
    tz: Tz,
}

impl Worker {
    fn rules(&self) -> &QmConfig {
        &self.config.qm
    }

    /// Waits, unless the server is stopping; false when it is.
    async fn pause(&self, ms: u64) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// One turn of a job: its calls listed if they are not yet, then one batch.
    async fn step(&self, job: Export) -> Step {
        let id = job.id;
        if !job.prepared {
            if let Err(reason) = self.prepare(&job).await {
                return Step::Failed(reason);
            }
            if self.stop.is_cancelled() {
                return Step::Over;
            }
        }
        let link = match self.connect(&job).await {
            Ok(link) => link,
            Err(reason) => return Step::Failed(reason),
        };
        let size = self.rules().batch_size;
        // One more than a batch: whether a pause follows it.
        let due = self
            .store
            .read(move |conn| {
                Ok((
                    rows::due_calls(conn, id, now_ms(), size + 1)?,
                    rows::next_due_at(conn, id)?,
                ))
            })
            .await;
        let (batch, next) = match due {
            Ok(d) => d,
            Err(e) => return Step::Failed(e.to_string()),
        };
        if batch.is_empty() {
            return match next {
                None => match self
                    .store
                    .write(move |conn, _| rows::finish_export(conn, id, None, now_ms()))
                    .await
                {
                    Ok(()) => Step::Over,
                    Err(e) => Step::Failed(e.to_string()),
                },
                Some(at) => Step::Waiting(at),
            };
        }
        let full = batch.len() > size as usize;
        for (i, due) in batch.into_iter().take(size as usize).enumerate() {
            if i > 0 && !self.pause(self.rules().request_interval_ms).await {
                return Step::Over;
            }
            if self.stop.is_cancelled() {
                return Step::Over;
            }
            match self.send_call(&job, &link, due).await {
                Ok(Next::Go) => {}
                Ok(Next::Hold(wait)) => {
                    tracing::info!(
                        job = id,
                        seconds = wait.as_secs_f64(),
                        "the QM system throttles; holding the job back"
                    );
                    return Step::Held(now_ms() + wait.as_millis() as i64);
                }
                Ok(Next::Stop(reason)) | Err(reason) => return Step::Failed(reason),
            }
            // A cancel is seen between two calls.
            if !matches!(
                self.store.read(move |conn| rows::export_state(conn, id)).await,
                Ok(JobState::Running)
            ) {
                return Step::Over;
            }
        }
        Step::Sent { full }
    }

    /// Lists the calls of a filtered job: the search as its user may see it now, as of when
    /// the job was asked for (so "today" means the day it was asked).
    async fn prepare(&self, job: &Export) -> Result<(), String> {
        let spec = job.clone();
        let (scope, filter) = self
            .store
            .read(move |conn| {
                let query = spec.query.as_deref().unwrap_or("[]");
                let (scope, req, _) =
                    access::job_search(conn, spec.account, spec.user, spec.id, query, spec.created_at)?;
                Ok((scope, req.filter))
            })
            .await
            .map_err(|e| format!("the export cannot start: {e}"))?;
        let id = job.id;
        let mut after = None;
        loop {
            let (s, f) = (scope.clone(), filter.clone());
            let page = self
                .store
                .read(move |conn| search::ids_after(conn, &s, &f, after, PREPARE_STRETCH))
                .await
                .map_err(|e| format!("the export cannot start: {e}"))?;
            let Some(&last) = page.last() else { break };
            after = Some(last);
            let ids: Vec<i64> = page.iter().map(|&(_, id)| id).collect();
            self.store
                .write(move |conn, _| rows::add_calls(conn, id, &ids, now_ms()))
                .await
                .map_err(|e| e.to_string())?;
            if self.stop.is_cancelled() {
                // Listed again from the start next time; calls listed already stay as they are.
                return Ok(());
            }
        }
        self.store
            .write(move |conn, _| rows::set_prepared(conn, id))
            .await
            .map_err(|e| e.to_string())
    }

    /// The account's integration, if it is active and its key opens, and the job's user may
    /// still hand calls to it (a demoted user's job stops).
    async fn connect(&self, job: &Export) -> Result<Link, String> {
        let (account, user) = (job.account, job.user);
        let (integration, tz, role) = self
            .store
            .read(move |conn| {
                Ok((
                    rows::integration(conn, account)?,
                    auth::account(conn, account)?.timezone,
                    people::user(conn, account, user.0).map(|u| u.role).ok(),
                ))
            })
            .await
            .map_err(|e| e.to_string())?;
        if !role.is_some_and(|r| r.exports_to_qm()) {
            return Err("the user who asked for this export may no longer hand calls to the QM system".into());
        }
        let integration = integration
            .filter(|i| i.active)
            .ok_or("the QM integration was deactivated")?;
        let sealed = integration.api_key_sealed.ok_or("the QM integration has no API key")?;
        let key = self
            .qm
            .sealing
            .open(&sealed, &Qm::key_context(account))
            .map_err(|e| e.to_string())?;
        let client = QmClient::new(
            &integration.base_url,
            &key,
            Duration::from_millis(self.rules().timeout_ms),
        )?;
        Ok(Link {
            client,
            language_code: integration.language_code,
            channel: integration.operator_channel.code(),
            tz: tz.parse().unwrap_or(Tz::UTC),
        })
    }

    async fn record(&self, job: i64, call: i64, outcome: Outcome, attempt: Attempt<'static>) -> Result<(), String> {
        self.store
            .write(move |conn, _| rows::set_outcome(conn, job, call, outcome, &attempt, now_ms()))
            .await
            .map_err(|e| e.to_string())
    }

    /// One call: checked, its operator imported if needed, sent, and the answer recorded.
    async fn send_call(&self, job: &Export, link: &Link, due: Due) -> Result<Next, String> {
        let (account, id, call) = (job.account, job.id, due.call);
        let (delivery, facts, recording) = self
            .store
            .read(move |conn| {
                Ok((
                    rows::delivery(conn, account, call)?,
                    rows::call_facts(conn, account, call)?,
                    recordings::of_call(conn, account, call)?,
                ))
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Some((export, at)) = delivery {
            let note = format!(
                "sent in export {export} at {}",
                crate::store::view::format_time(at, None)
            );
            return self.settle(id, call, Outcome::AlreadySent, note).await;
        }
        let Some(facts) = facts else {
            return self
                .settle(id, call, Outcome::Skipped, "the call was deleted".into())
                .await;
        };
        let content_type = recording.and_then(|r| r.object_key.and(r.content_type));
        let Some(content_type) = content_type.filter(|_| facts.has_recording) else {
            return self.settle(id, call, Outcome::Skipped, "no recording".into()).await;
        };

        let mut operator_id = None;
        if let Some((user, login, name)) = &facts.operator {
            operator_id = Some(login.clone());
            let user = *user;
            let imported = self
                .store
                .read(move |conn| rows::imported_operator(conn, account, user))
                .await
                .map_err(|e| e.to_string())?;
            if imported.as_deref() != Some(name.as_str()) {
                let (last_name, first_name, middle_name) = words::name_parts(name);
                let payload = UserPayload {
                    id: login.clone(),
                    last_name,
                    first_name,
                    middle_name,
                    role_id: AGENT_ROLE,
                };
                let answer = link.client.import_user(&payload).await;
                if answer == Answer::Taken {
                    let (login, name) = (login.clone(), name.clone());
                    self.store
                        .write(move |conn, _| rows::operator_imported(conn, account, user, &login, &name, now_ms()))
                        .await
                        .map_err(|e| e.to_string())?;
                    if !self.pause(self.rules().request_interval_ms).await {
                        return Ok(Next::Go);
                    }
                } else {
                    return self.failed(id, due, answer, "operator import: ").await;
                }
            }
        }

        let expires = (now_ms() + self.rules().link_ttl_ms) / 1000;
        let target = link::Target {
            account: account.0,
            call,
            external_id: &facts.external_id,
        };
        let file_link = link::file_link(
            &self.config.public_url,
            &self.qm.link_key,
            target,
            sniff::extension(&content_type),
            expires,
        );
        let ended = facts
            .ended_at
            .unwrap_or(facts.started_at + (facts.ring_seconds.unwrap_or(0) + facts.talk_seconds) * 1000);
        let client_number = match facts.kind.direction() {
            crate::domain::Direction::Incoming => &facts.from,
            crate::domain::Direction::Outgoing => &facts.to,
        };
        let qm_id = words::call_id(&facts.external_id);
        let payload = CallPayload {
            id: qm_id.clone(),
            file_link,
            call_direction: words::call_direction(facts.kind.direction()),
            start_date: words::local_time(facts.started_at, link.tz),
            end_date: words::local_time(ended.max(facts.started_at), link.tz),
            operator_id,
            client_phone_number: Some(client_number.clone()).filter(|n| !n.is_empty()),
            language_code: link.language_code.clone(),
            hangup_party: words::hangup_party(facts.result),
            operator_channel: link.channel,
            result: facts.result.map(|r| words::result_label(r, &link.language_code)),
        };

        // Out of the door: from here a stop that kills the process leaves the call `sending`.
        self.record(
            id,
            call,
            Outcome::Sending,
            Attempt {
                next_at: now_ms(),
                ..Attempt::default()
            },
        )
        .await?;
        let answer = link.client.import_call(&payload).await;
        if answer == Answer::Taken {
            self.store
                .write(move |conn, _| {
                    let now = now_ms();
                    let attempt = Attempt {
                        status: Some(200),
                        counted: true,
                        ..Attempt::default()
                    };
                    rows::set_outcome(conn, id, call, Outcome::Sent, &attempt, now)?;
                    rows::delivered(conn, account, call, &qm_id, id, now)
                })
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Next::Go);
        }
        self.failed(id, due, answer, "").await
    }

    /// An outcome without a request.
    async fn settle(&self, job: i64, call: i64, outcome: Outcome, note: String) -> Result<Next, String> {
        self.store
            .write(move |conn, _| {
                let attempt = Attempt {
                    error: Some(&note),
                    ..Attempt::default()
                };
                rows::set_outcome(conn, job, call, outcome, &attempt, now_ms())
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(Next::Go)
    }

    /// A request that was not taken: retried later while it may pass and attempts remain,
    /// else failed. `what` says which request it was when it was not the call's own.
    async fn failed(&self, job: i64, due: Due, answer: Answer, what: &str) -> Result<Next, String> {
        let rules = self.rules();
        let backoff = |n: i64| rules.retry_base_ms.saturating_mul(1 << n.clamp(0, 20));
        let mut outcome = Outcome::Failed;
        let (mut next_at, mut next, mut throttled) = (0, Next::Go, false);
        let (status, correlation_id, message) = match answer {
            Answer::Taken => return Ok(Next::Go),
            Answer::Refused {
                status,
                correlation_id,
                message,
            } => {
                if status == 401 || status == 403 {
                    next = Next::Stop(format!(
                        "the QM system refused the API key ({status}); check the integration's key and connect again"
                    ));
                }
                (Some(status), correlation_id, format!("{what}{status}: {message}"))
            }
            // Throttled: not the call's fault, so not one of its attempts; the job waits.
            Answer::Retry {
                status: Some(429),
                correlation_id,
                message,
                after,
            } => {
                throttled = true;
                let throttles = due.throttled + 1;
                if throttles >= MAX_THROTTLES {
                    let message = format!("{what}gave up after {throttles} throttled attempts: 429: {message}");
                    (Some(429), correlation_id, message)
                } else {
                    let delay = after.map_or(0, |a| a.as_millis() as i64).max(backoff(throttles - 1));
                    outcome = Outcome::Pending;
                    next_at = now_ms() + delay;
                    next = Next::Hold(Duration::from_millis(delay as u64));
                    (Some(429), correlation_id, format!("{what}429: {message}"))
                }
            }
            Answer::Retry {
                status,
                correlation_id,
                message,
                after,
            } => {
                let label = status.map(|s| format!("{s}: ")).unwrap_or_default();
                let tries = due.attempts - due.throttled + 1;
                if tries >= i64::from(rules.attempts) {
                    let message = format!("{what}gave up after {tries} attempts: {label}{message}");
                    (status, correlation_id, message)
                } else {
                    outcome = Outcome::Pending;
                    next_at = now_ms() + after.map_or(0, |a| a.as_millis() as i64).max(backoff(tries - 1));
                    (status, correlation_id, format!("{what}{label}{message}"))
                }
            }
        };
        let status = status.map(i64::from);
        let call = due.call;
        self.store
            .write(move |conn, _| {
                let attempt = Attempt {
                    status,
                    correlation_id: correlation_id.as_deref(),
                    error: Some(&message),
                    next_at,
                    counted: true,
                    throttled,
                    failure: true,
                };
                rows::set_outcome(conn, job, call, outcome, &attempt, now_ms())
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(next)
    }
}
