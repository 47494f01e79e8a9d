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

use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

use super::client::QmClient;
use super::Qm;
use crate::config::{Config, QmConfig};
use crate::export::jobs::JobState;
use crate::store::auth::{self, now_ms};
use crate::store::qm::{self as rows, Export};
use crate::store::{access, leases, people, search, Store};

/// Calls listed per write while a filtered job is prepared.
const PREPARE_STRETCH: u32 = 5_000;
/// How soon to look again at a job another instance is working on.
const LEASE_RETRY_MS: i64 = 2_000;

/// Runs until `stop` is cancelled; a request that is out when it is finishes first.
pub async fn run(store: Store, config: Arc<Config>, qm: Qm, stop: CancellationToken, me: Arc<str>) {
    let worker = Worker {
        store,
        config,
        qm,
        stop,
        me,
    };
    // A round visits every open job once, in id order, one batch each.
    let mut after = 0;
    let mut worked = false;
    let mut soonest: Option<i64> = None;
    loop {
        if worker.stop.is_cancelled() {
            return;
        }
        if after == 0 {
            worker.interrupted_sends().await;
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
                    // Every job waits (retries, holds): until the first is due, or a new job.
                    (_, false, Some(at)) => (at - now_ms()).clamp(0, 60_000) as u64,
                    (_, false, None) => 60_000,
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
        let (id, account) = (job.id, job.account);
        // A 429 holds back the account's jobs (the QM system throttles the key, whichever job
        // uses it), on every instance and across restarts: the hold is kept in the database.
        let now = now_ms();
        if let Ok(Some(until)) = worker
            .store
            .read(move |conn| rows::held_until(conn, account, now))
            .await
        {
            soonest = Some(soonest.map_or(until, |s| s.min(until)));
            continue;
        }
        let pause = match worker.step(job).await {
            Step::Sent { full, requests } => {
                worked = true;
                let rules = worker.rules();
                match (requests, full) {
                    // Calls settled without a request (no recording, sent before) cost no pause.
                    (0, _) => 0,
                    (_, true) => rules.batch_pause_ms.max(rules.request_interval_ms),
                    (_, false) => rules.request_interval_ms,
                }
            }
            Step::Listed => {
                worked = true;
                0
            }
            Step::Held(until) => {
                if let Err(e) = worker
                    .store
                    .write(move |conn, _| rows::hold(conn, account, until))
                    .await
                {
                    tracing::warn!(error = %e, "could not record the QM system's hold");
                }
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

pub(super) struct Worker {
    pub(super) store: Store,
    pub(super) config: Arc<Config>,
    pub(super) qm: Qm,
    pub(super) stop: CancellationToken,
    /// This instance, as the owner of the job leases.
    pub(super) me: Arc<str>,
}

/// What the job does after one call.
pub(super) enum Next {
    /// On to the next call; `requested`: a request went to the QM system (paced).
    Go { requested: bool },
    /// The QM system throttles: hold the job's requests back this long.
    Hold(Duration),
    /// The job cannot go on (the key was refused).
    Stop(String),
}

/// What one turn of a job came to.
enum Step {
    /// A batch was settled with this many requests; `full`: more calls are due (a batch pause
    /// follows).
    Sent { full: bool, requests: usize },
    /// Another stretch of a filtered job's calls was listed.
    Listed,
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
pub(super) struct Link {
    pub(super) client: QmClient,
    pub(super) language_code: String,
    pub(super) channel: &'static str,
    pub(super) tz: Tz,
}

impl Worker {
    pub(super) fn rules(&self) -> &QmConfig {
        &self.config.qm
    }

    /// Waits, unless the server is stopping; false when it is.
    pub(super) async fn pause(&self, ms: u64) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    /// One turn of a job: a stretch of its calls listed while they are not all, else one batch.
    /// Says which sends were cut off by a server that stopped or died (not another instance's,
    /// still running): failed and held in doubt.
    async fn interrupted_sends(&self) {
        let me = self.me.clone();
        match self
            .store
            .write(move |conn, _| rows::interrupted_sends(conn, now_ms(), &me))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                calls = n,
                "QM sends interrupted by a stopped server are reported failed"
            ),
            Err(e) => tracing::warn!(error = %e, "could not look at interrupted QM sends"),
        }
    }

    /// Leases the job to this instance for a while (renewed before every call), or says whether
    /// it may go on: false when another instance works on it, or it was cancelled.
    async fn go_on(&self, id: i64) -> bool {
        let (me, ttl) = (self.me.clone(), self.lease_ms());
        let state = self
            .store
            .write(move |conn, _| {
                if !leases::claim(conn, &rows::lease_name(id), &me, now_ms(), ttl)? {
                    return Ok(None);
                }
                rows::export_state(conn, id).map(Some)
            })
            .await;
        matches!(state, Ok(Some(JobState::Running)))
    }

    /// Long enough for one request with its timeout, and a margin.
    fn lease_ms(&self) -> i64 {
        (self.rules().timeout_ms + self.rules().request_interval_ms) as i64 + 60_000
    }

    /// One turn of a job, on this instance only: another instance that holds the job's lease
    /// works on it meanwhile.
    async fn step(&self, job: Export) -> Step {
        let id = job.id;
        if !self.go_on(id).await {
            return Step::Waiting(now_ms() + LEASE_RETRY_MS);
        }
        let step = self.turn(job).await;
        let me = self.me.clone();
        if let Err(e) = self
            .store
            .write(move |conn, _| leases::release(conn, &rows::lease_name(id), &me))
            .await
        {
            tracing::warn!(job = id, error = %e, "could not give back a QM export's lease");
        }
        step
    }

    async fn turn(&self, job: Export) -> Step {
        let id = job.id;
        if !job.prepared {
            return match self.list_stretch(&job).await {
                Ok(()) => Step::Listed,
                Err(reason) => Step::Failed(reason),
            };
        }
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
        let link = match self.connect(&job).await {
            Ok(link) => link,
            Err(reason) => return Step::Failed(reason),
        };
        let full = batch.len() > size as usize;
        let mut requests = 0;
        for due in batch.into_iter().take(size as usize) {
            if self.stop.is_cancelled() {
                return Step::Over;
            }
            // Requests are spaced; calls settled without one are not.
            if requests > 0 && !self.pause(self.rules().request_interval_ms).await {
                return Step::Over;
            }
            // A cancel is seen before each call, after the pause; the lease is renewed.
            if !self.go_on(id).await {
                return Step::Over;
            }
            match self.send_call(&job, &link, due).await {
                Ok(Next::Go { requested }) => requests += usize::from(requested),
                Ok(Next::Hold(wait)) => {
                    tracing::info!(
                        job = id,
                        seconds = wait.as_secs_f64(),
                        "the QM system throttles; holding the account's jobs back"
                    );
                    return Step::Held(now_ms() + wait.as_millis() as i64);
                }
                Ok(Next::Stop(reason)) | Err(reason) => return Step::Failed(reason),
            }
        }
        Step::Sent { full, requests }
    }

    /// Lists the next stretch of a filtered job's calls: the search as its user may see it now,
    /// as of when the job was asked for (so "today" is the day it was asked). One stretch a turn,
    /// so that a large job does not hold up the others.
    async fn list_stretch(&self, job: &Export) -> Result<(), String> {
        let spec = job.clone();
        let (id, after) = (job.id, job.listed_to);
        let page = self
            .store
            .read(move |conn| {
                let query = spec.query.as_deref().unwrap_or("[]");
                let (scope, req, _) =
                    access::job_search(conn, spec.account, spec.user, spec.id, query, spec.created_at)?;
                search::ids_after(conn, &scope, &req.filter, after, PREPARE_STRETCH)
            })
            .await
            .map_err(|e| format!("the export cannot list its calls: {e}"))?;
        let last = page.len() < PREPARE_STRETCH as usize;
        self.store
            .write(move |conn, _| {
                rows::add_listed(conn, id, &page, now_ms())?;
                if last {
                    rows::set_prepared(conn, id)?;
                }
                Ok(())
            })
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
}
