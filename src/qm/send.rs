//! One call of a QM export: checked (already delivered? a recording?), its operator imported
//! if needed, sent, and the QM system's answer recorded — retried later, failed, or taken
//! together with the delivery record.

use std::time::Duration;

use super::client::{Answer, CallPayload, UserPayload, AGENT_ROLE};
use super::link;
use super::worker::{Link, Next, Worker};
use crate::domain::qm::{self as words, Outcome};
use crate::recording::sniff;
use crate::store::auth::now_ms;
use crate::store::qm::{self as rows, Attempt, Delivery, Due, Export};
use crate::store::recordings;

/// A call throttled this many times fails: the QM system is refusing this sender.
const MAX_THROTTLES: i64 = 20;
/// The longest a retry waits on its own account (10 minutes).
const MAX_BACKOFF_MS: i64 = 600_000;

impl Worker {
    async fn record(&self, job: i64, call: i64, outcome: Outcome, attempt: Attempt<'static>) -> Result<(), String> {
        self.store
            .write(move |conn, _| rows::set_outcome(conn, job, call, outcome, &attempt, now_ms()))
            .await
            .map_err(|e| e.to_string())
    }

    /// One call: checked, its operator imported if needed, sent, and the answer recorded.
    pub(super) async fn send_call(&self, job: &Export, link: &Link, due: Due) -> Result<Next, String> {
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
        match delivery {
            Some(Delivery::Taken { export, at }) => {
                let note = format!(
                    "sent in export {export} at {}",
                    crate::store::view::format_time(at, None)
                );
                return self.settle(id, call, Outcome::AlreadySent, note).await;
            }
            Some(Delivery::InDoubt { export }) => {
                let note = format!(
                    "in doubt: export {export} was interrupted while sending it, so the QM system may have it; \
                     re-run that export to send it again"
                );
                return self.settle(id, call, Outcome::Failed, note).await;
            }
            None => {}
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
                        return Ok(Next::Go { requested: true });
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
        let external_id = facts.external_id.clone();
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
                    rows::delivered(conn, account, call, &external_id, &qm_id, id, now)
                })
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Next::Go { requested: true });
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
        Ok(Next::Go { requested: false })
    }

    /// A request that was not taken: retried later while it may pass and attempts remain,
    /// else failed. `what` says which request it was when it was not the call's own.
    async fn failed(&self, job: i64, due: Due, answer: Answer, what: &str) -> Result<Next, String> {
        let rules = self.rules();
        // Doubling, but never more than MAX_BACKOFF_MS (a Retry-After may still ask for more).
        let backoff = |n: i64| {
            rules
                .retry_base_ms
                .saturating_mul(1 << n.clamp(0, 20))
                .min(MAX_BACKOFF_MS)
        };
        let mut outcome = Outcome::Failed;
        let (mut next_at, mut next, mut throttled) = (0, Next::Go { requested: true }, false);
        let (status, correlation_id, message) = match answer {
            Answer::Taken => return Ok(Next::Go { requested: true }),
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
