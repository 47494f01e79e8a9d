//! Synthetic but believable calls: a weekly and daily rhythm in Moscow time, a realistic mix of
//! call kinds and results per kind, and timelines from which the durations follow.

use chrono::{DateTime, Datelike, Duration, TimeZone, Timelike, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::names::{
    CAMPAIGNS, COMPLETION_CODES, GROUPS, INBOUND_SCENARIOS, NOTES, OPERATORS, SOFTPHONE_SCENARIO, TAGS, TOPICS,
};
use crate::domain::record::{CompletionCodeRef, FlowStep, Money, NamedRef, Note, ScenarioRef};
use crate::domain::{AttemptResult, CallKind, CallPatch, ScenarioKind};

/// Where scenario links of the demo point.
const SCENARIO_BASE_URL: &str = "https://kit.example.ru/scenarios";

/// Relative call volume by weekday (Monday first) and by hour of the day in Moscow.
const WEEKDAY_WEIGHT: [f64; 7] = [1.0, 1.0, 0.97, 0.95, 0.9, 0.45, 0.3];
const HOUR_WEIGHT: [f64; 24] = [
    0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.2, 0.6, 1.0, 1.15, 1.2, 1.0, 0.9, 1.1, 1.15, 1.05, 0.9, 0.6, 0.4, 0.25,
    0.15, 0.08, 0.04,
];

/// Moscow has been UTC+3 all year since 2014.
const MOSCOW_OFFSET_HOURS: i64 = 3;

pub struct Generator {
    rng: StdRng,
    customers: Vec<String>,
    company: Vec<String>,
    seq: u64,
    prefix: String,
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Picks by weight from `(item, weight)` pairs.
fn weighted<T: Copy>(rng: &mut StdRng, table: &[(T, f64)]) -> T {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in table {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// A log-normal sample around `median` seconds (Box–Muller for the normal part).
fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> i64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (median * (sigma * z).exp()).round().clamp(5.0, 7_200.0) as i64
}

impl Generator {
    /// A generator whose customers number about `calls / 25` (some call often, most rarely).
    pub fn new(seed: u64, calls: usize, prefix: &str) -> Generator {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = (calls / 25).clamp(2_000, 2_000_000);
        let customers = (0..n)
            .map(|_| {
                if rng.random_bool(0.8) {
                    format!("+79{:09}", rng.random_range(0..1_000_000_000u64))
                } else {
                    format!("+7495{:07}", rng.random_range(0..10_000_000u64))
                }
            })
            .collect();
        let company = (0..20).map(|i| format!("+74951234{i:03}")).collect();
        Generator {
            rng,
            customers,
            company,
            seq: 0,
            prefix: prefix.to_string(),
        }
    }

    /// `n` start instants spread over the `days` before `now` by the weekly and daily rhythm,
    /// oldest first.
    pub fn start_times(&mut self, n: usize, days: u32, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let local_now = now + Duration::hours(MOSCOW_OFFSET_HOURS);
        let today = local_now.date_naive();
        let mut slots: Vec<(i64, f64)> = Vec::new();
        for back in (0..days).rev() {
            let day = today - chrono::Days::new(u64::from(back));
            // A mild upward trend: the contact center grows over the quarter.
            let growth = 1.0 + 0.2 * (1.0 - f64::from(back) / f64::from(days.max(1)));
            let w_day = WEEKDAY_WEIGHT[day.weekday().num_days_from_monday() as usize] * growth;
            for (hour, w) in HOUR_WEIGHT.iter().enumerate() {
                let local = day.and_hms_opt(hour as u32, 0, 0).unwrap_or_default();
                let utc = Utc.from_utc_datetime(&local) - Duration::hours(MOSCOW_OFFSET_HOURS);
                if utc >= now {
                    continue;
                }
                slots.push((utc.timestamp(), w_day * w));
            }
        }
        let total: f64 = slots.iter().map(|(_, w)| w).sum();
        let mut out = Vec::with_capacity(n);
        for (start, w) in slots {
            let expected = n as f64 * w / total;
            let count = expected.floor() as usize + usize::from(self.rng.random::<f64>() < expected.fract());
            for _ in 0..count {
                let secs = start + self.rng.random_range(0..3600);
                if let Some(t) = DateTime::from_timestamp(secs, 0).filter(|t| *t < now) {
                    out.push(t);
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn customer(&mut self) -> String {
        // Squaring a uniform sample favours the first customers: regulars call often.
        let u: f64 = self.rng.random();
        let i = ((u * u) * self.customers.len() as f64) as usize;
        self.customers[i.min(self.customers.len() - 1)].clone()
    }

    /// One complete call that started at `t`.
    pub fn call(&mut self, t: DateTime<Utc>) -> CallPatch {
        self.seq += 1;
        let customer = self.customer();
        let rng = &mut self.rng;
        let kind = weighted(
            rng,
            &[
                (CallKind::Incoming, 0.55),
                (CallKind::SoftphoneOutgoing, 0.22),
                (CallKind::AutoCampaign, 0.15),
                (CallKind::OperatorCampaign, 0.08),
            ],
        );
        use AttemptResult::*;
        let result = match kind {
            CallKind::Incoming => weighted(
                rng,
                &[
                    (Answered, 78.0),
                    (Abandoned, 8.0),
                    (EndedInIvr, 8.0),
                    (LostByOperator, 5.0),
                    (OtherError, 1.0),
                ],
            ),
            CallKind::SoftphoneOutgoing => weighted(
                rng,
                &[
                    (Answered, 60.0),
                    (NoAnswer, 15.0),
                    (Busy, 10.0),
                    (Unavailable, 6.0),
                    (Voicemail, 4.0),
                    (Rejected, 3.0),
                    (InvalidNumber, 1.0),
                    (RequestCancelled, 1.0),
                ],
            ),
            CallKind::AutoCampaign => weighted(
                rng,
                &[
                    (Answered, 45.0),
                    (NoAnswer, 18.0),
                    (Voicemail, 12.0),
                    (Busy, 8.0),
                    (Unavailable, 8.0),
                    (Rejected, 4.0),
                    (BlockedDnc, 2.0),
                    (InvalidNumber, 2.0),
                    (InsufficientFunds, 1.0),
                ],
            ),
            CallKind::OperatorCampaign => weighted(
                rng,
                &[
                    (Answered, 50.0),
                    (NoAnswer, 15.0),
                    (Busy, 10.0),
                    (Voicemail, 8.0),
                    (Abandoned, 7.0),
                    (Unavailable, 6.0),
                    (Rejected, 3.0),
                    (OtherError, 1.0),
                ],
            ),
        };
        let group = rng.random_range(0..GROUPS.len());
        let (group_key, _, queue_key, _) = GROUPS[group];
        // Operators work in the group their index falls into (ten per group).
        let op_index = group * (OPERATORS.len() / GROUPS.len()) + rng.random_range(0..OPERATORS.len() / GROUPS.len());
        let operator = OPERATORS[op_index].0.to_string();
        let talk = lognormal(rng, 150.0, 0.8);
        let ms = |d: i64| Some(Some(t + Duration::seconds(d)));

        let mut p = CallPatch {
            external_id: format!("{}-{:09}", self.prefix, self.seq),
            kind: Some(kind),
            result: Some(Some(result)),
            currency: Some(Some("RUB".into())),
            ..CallPatch::default()
        };
        let line = pick(rng, &self.company).clone();
        let mut flow = vec![];
        let mut handled_by_operator = false;
        let end: i64;
        if kind == CallKind::Incoming {
            p.from = Some(Some(customer));
            p.to = Some(Some(line));
            p.scenario_started_at = ms(0);
            let (skey, sname, auto) = *pick(rng, INBOUND_SCENARIOS);
            p.scenario = Some(Some(scenario(skey, sname, auto)));
            p.queue = Some(Some(queue_key.to_string()));
            p.group = Some(Some(group_key.to_string()));
            let ivr = rng.random_range(5..60);
            flow.push(step(t, 0, "Начало"));
            flow.push(step(t, 2, "Голосовое меню"));
            // Calls that end in the menu never reach the queue.
            if matches!(result, Answered | LostByOperator | Abandoned) {
                flow.push(step(t, ivr, "Очередь"));
            }
            end = match result {
                Answered => {
                    handled_by_operator = true;
                    let pick_up = ivr + rng.random_range(3..40);
                    p.answered_at = ms(pick_up);
                    flow.push(step(t, pick_up, "Соединение с оператором"));
                    pick_up + talk
                }
                LostByOperator => {
                    handled_by_operator = true;
                    ivr + rng.random_range(20..60)
                }
                Abandoned => ivr + rng.random_range(15..180),
                _ => rng.random_range(8..ivr.max(9)),
            };
            p.price = Some(Some(Money(0)));
        } else {
            p.from = Some(Some(line));
            p.to = Some(Some(customer));
            p.dial_started_at = ms(0);
            flow.push(step(t, 0, "Набор номера"));
            let picked_up = matches!(result, Answered | Voicemail | Abandoned);
            let ring = match result {
                NoAnswer => rng.random_range(25..45),
                Busy | Rejected => rng.random_range(1..12),
                Unavailable | InvalidNumber | BlockedDnc | InsufficientFunds | OtherError => rng.random_range(0..5),
                _ => rng.random_range(3..25),
            };
            end = if picked_up {
                p.answered_at = ms(ring);
                flow.push(step(t, ring, "Ответ"));
                match result {
                    Voicemail => {
                        let amd = ring + rng.random_range(2..7);
                        p.amd_detected_at = ms(amd);
                        flow.push(step(t, amd, "Обнаружен автоответчик"));
                        amd + if kind == CallKind::SoftphoneOutgoing {
                            rng.random_range(3..20)
                        } else {
                            0
                        }
                    }
                    Abandoned => ring + rng.random_range(2..10),
                    _ => {
                        ring + if kind == CallKind::AutoCampaign {
                            talk.min(90)
                        } else {
                            talk
                        }
                    }
                }
            } else {
                ring
            };
            match kind {
                CallKind::SoftphoneOutgoing => {
                    handled_by_operator = true;
                    let (k, n, a) = SOFTPHONE_SCENARIO;
                    p.scenario = Some(Some(scenario(k, n, a)));
                }
                _ => {
                    let automated = kind == CallKind::AutoCampaign;
                    let days_back = (Utc::now() - t).num_days().max(0) as u32;
                    let fitting: Vec<_> = CAMPAIGNS
                        .iter()
                        .filter(|c| c.2 == automated && c.3 >= days_back && c.3 - c.4.min(c.3) <= days_back)
                        .collect();
                    let c = fitting.first().map(|c| **c).unwrap_or_else(|| *pick(rng, CAMPAIGNS));
                    p.campaign = Some(Some(NamedRef {
                        id: c.0.into(),
                        name: Some(c.1.into()),
                    }));
                    p.scenario = Some(Some(scenario(
                        &format!("campaign-{}", c.0),
                        &format!("Сценарий: {}", c.1),
                        automated,
                    )));
                    if !automated {
                        handled_by_operator = result == Answered;
                        p.attempts = Some(Some(rng.random_range(1..5)));
                    }
                }
            }
            let talked = if picked_up { (end - ring).max(0) } else { 0 };
            // 1.50 RUB per started minute plus 0.20 per connection.
            let minutes = (talked + 59) / 60;
            p.price = Some(Some(Money(2_000 + minutes * 15_000)));
        }
        p.ended_at = ms(end);
        flow.push(step(t, end, "Завершение"));
        p.flow = Some(flow);
        if handled_by_operator {
            p.operator = Some(Some(operator.clone()));
            p.group = Some(Some(group_key.to_string()));
            if kind != CallKind::Incoming {
                p.queue = None;
            }
        }
        p.log = Some(log_lines(p.flow.as_deref().unwrap_or_default(), result));
        if result == Answered && handled_by_operator {
            let n_tags = weighted(rng, &[(0usize, 45.0), (1, 30.0), (2, 17.0), (3, 8.0)]);
            let tags: Vec<String> = (0..n_tags)
                .map(|_| TAGS[((rng.random::<f64>().powi(2)) * TAGS.len() as f64) as usize].to_string())
                .collect();
            if !tags.is_empty() {
                p.tags = Some(tags);
            }
            if rng.random_bool(0.6) {
                let n = rng.random_range(1..3);
                p.topics = Some((0..n).map(|_| pick(rng, TOPICS).to_string()).collect());
            }
            if rng.random_bool(0.12) {
                p.notes = Some(vec![Note {
                    id: format!("{}-n1", p.external_id),
                    author: Some(operator.clone()),
                    at: t + Duration::seconds(end + rng.random_range(10..300)),
                    text: pick(rng, NOTES).to_string(),
                }]);
            }
            if kind == CallKind::OperatorCampaign || rng.random_bool(0.3) {
                let (code, name) = *pick(rng, COMPLETION_CODES);
                let callback_at = (code == "callback").then(|| {
                    let day = t + Duration::days(rng.random_range(1..4));
                    day.with_hour(7)
                        .and_then(|d| d.with_minute(0))
                        .and_then(|d| d.with_second(0))
                        .unwrap_or(day)
                });
                p.completion_code = Some(Some(CompletionCodeRef {
                    id: code.into(),
                    name: Some(name.into()),
                    callback_at,
                }));
            }
        }
        p
    }

    /// A follow-up an operator sends after the call: tags and a note.
    pub fn follow_up(&mut self, call: &CallPatch, at: DateTime<Utc>) -> CallPatch {
        let rng = &mut self.rng;
        CallPatch {
            external_id: call.external_id.clone(),
            tags: Some(vec![pick(rng, TAGS).to_string()]),
            notes: Some(vec![Note {
                id: format!("{}-followup", call.external_id),
                author: call.operator.clone().flatten(),
                at,
                text: pick(rng, NOTES).to_string(),
            }]),
            ..CallPatch::default()
        }
    }

    /// Whether the next live call should get a follow-up.
    pub fn wants_follow_up(&mut self) -> bool {
        self.rng.random_bool(0.3)
    }

    /// A random index below `n` (n > 0).
    pub fn pick_index(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }
}

fn scenario(key: &str, name: &str, automated: bool) -> ScenarioRef {
    ScenarioRef {
        id: key.to_string(),
        name: Some(name.to_string()),
        kind: Some(if automated {
            ScenarioKind::Automated
        } else {
            ScenarioKind::Operator
        }),
        url: Some(format!("{SCENARIO_BASE_URL}/{key}")),
    }
}

fn step(t: DateTime<Utc>, offset: i64, block: &str) -> FlowStep {
    let (kind, outcome) = match block {
        "Начало" => ("start", None),
        "Голосовое меню" => ("menu", Some("нажата 1")),
        "Очередь" => ("queue", None),
        "Соединение с оператором" => ("connect", Some("оператор ответил")),
        "Набор номера" => ("dial", None),
        "Ответ" => ("answer", Some("абонент ответил")),
        "Обнаружен автоответчик" => ("amd", Some("автоответчик")),
        _ => ("hangup", None),
    };
    FlowStep {
        at: t + Duration::seconds(offset),
        block: block.to_string(),
        kind: Some(kind.to_string()),
        outcome: outcome.map(str::to_string),
    }
}

/// The lines a telephony platform would log for this call: one per block, then the hangup.
fn log_lines(flow: &[FlowStep], result: AttemptResult) -> Vec<String> {
    let mut lines: Vec<String> = flow
        .iter()
        .map(|s| {
            format!(
                "{} [{}] {}{}",
                s.at.format("%Y-%m-%d %H:%M:%S%.3f"),
                s.kind.as_deref().unwrap_or("block").to_uppercase(),
                s.block,
                s.outcome.as_deref().map(|o| format!(" → {o}")).unwrap_or_default()
            )
        })
        .collect();
    if let Some(last) = flow.last() {
        lines.push(format!(
            "{} [SIP] BYE, hangup cause {}",
            last.at.format("%Y-%m-%d %H:%M:%S%.3f"),
            match result {
                AttemptResult::Busy => "USER_BUSY",
                AttemptResult::NoAnswer => "NO_ANSWER",
                AttemptResult::Rejected => "CALL_REJECTED",
                AttemptResult::InvalidNumber => "UNALLOCATED_NUMBER",
                AttemptResult::Unavailable => "SUBSCRIBER_ABSENT",
                _ => "NORMAL_CLEARING",
            }
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CallRecord;

    #[test]
    fn generated_calls_are_valid_and_follow_the_rhythm() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut g = Generator::new(1, 20_000, "t");
        let times = g.start_times(20_000, 90, now);
        assert!((19_000..21_000).contains(&times.len()), "{}", times.len());
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| *t < now && *t > now - Duration::days(91)));
        // Weekdays are far busier than Sundays, and 11:00 Moscow than 03:00.
        let weekday = |d: u32| {
            times
                .iter()
                .filter(|t| (**t + Duration::hours(3)).weekday().num_days_from_monday() == d)
                .count()
        };
        assert!(weekday(0) > 2 * weekday(6));
        let hour = |h: u32| times.iter().filter(|t| (**t + Duration::hours(3)).hour() == h).count();
        assert!(hour(11) > 20 * hour(3).max(1));

        let mut answered = 0;
        for t in times.iter().take(2_000) {
            let p = g.call(*t);
            p.validate().unwrap();
            let mut r = CallRecord::default();
            r.merge(p);
            r.validate().unwrap();
            assert!(r.is_complete());
            answered += usize::from(r.result == Some(AttemptResult::Answered));
        }
        assert!((1_000..1_500).contains(&answered), "{answered}");
    }
}
