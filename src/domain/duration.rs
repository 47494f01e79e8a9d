//! Ring and talk durations computed from a call's timestamps (spec §2.1).
//!
//! The service trusts its own arithmetic over a sender's totals: when the timestamps needed for a
//! duration are there, the duration comes from them; a sender's `ring_seconds`/`talk_seconds` are
//! only used when they are not. Instants are Unix epoch milliseconds; durations are whole seconds,
//! rounded to the nearest second.

use super::call::CallKind;

/// The instants of one call that durations depend on, as far as they are known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeline {
    pub dial_started_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub scenario_started_at: Option<i64>,
    pub amd_detected_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// The two durations shown in the history. `ring` is `None` where it does not apply (incoming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    pub ring: Option<u32>,
    pub talk: u32,
}

/// A timeline whose instants are out of order; names the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineError {
    pub field: &'static str,
    pub message: &'static str,
}

impl Timeline {
    /// When the call began: dialling for outgoing calls, the scenario for incoming ones, falling
    /// back to whichever start instant is known.
    pub fn start(&self, kind: CallKind) -> Option<i64> {
        match kind {
            CallKind::Incoming => self.scenario_started_at.or(self.dial_started_at),
            _ => self.dial_started_at.or(self.scenario_started_at),
        }
    }

    /// Rejects timelines that cannot have happened: nothing ends before it starts, nobody picks
    /// up before dialling, no answering machine is detected before pick-up.
    pub fn validate(&self) -> Result<(), TimelineError> {
        let before = |a: Option<i64>, b: Option<i64>| matches!((a, b), (Some(a), Some(b)) if b < a);
        if before(self.dial_started_at, self.answered_at) {
            return Err(TimelineError {
                field: "answered_at",
                message: "answered_at is before dial_started_at",
            });
        }
        if before(self.answered_at, self.amd_detected_at) {
            return Err(TimelineError {
                field: "amd_detected_at",
                message: "amd_detected_at is before answered_at",
            });
        }
        for start in [self.dial_started_at, self.scenario_started_at, self.answered_at] {
            if before(start, self.ended_at) {
                return Err(TimelineError {
                    field: "ended_at",
                    message: "ended_at is before the call started or was answered",
                });
            }
        }
        if before(self.amd_detected_at, self.ended_at) {
            return Err(TimelineError {
                field: "ended_at",
                message: "ended_at is before amd_detected_at",
            });
        }
        Ok(())
    }
}

fn seconds_between(from: i64, to: i64) -> u32 {
    let ms = (to - from).max(0);
    u32::try_from((ms + 500) / 1000).unwrap_or(u32::MAX)
}

/// Computes both durations for a call of `kind`, using `sent` (the sender's own totals) only for
/// a duration the timestamps cannot give.
pub fn compute(kind: CallKind, t: &Timeline, sent: Durations) -> Durations {
    match kind {
        // Incoming: no ringing from our side; talk is the whole scenario.
        CallKind::Incoming => {
            let talk = match (t.scenario_started_at, t.ended_at) {
                (Some(s), Some(e)) => seconds_between(s, e),
                (None, Some(_)) if t.dial_started_at.is_none() => 0,
                _ => sent.talk,
            };
            Durations { ring: None, talk }
        }
        CallKind::AutoCampaign | CallKind::SoftphoneOutgoing | CallKind::OperatorCampaign => {
            // Ringing ends when somebody (or something) picks up, or when the network gives up.
            let ring = match (t.dial_started_at, t.answered_at.or(t.ended_at)) {
                (Some(d), Some(stop)) => Some(seconds_between(d, stop)),
                _ => sent.ring,
            };
            // A softphone call is talk until a person hangs up; in campaigns, an answering
            // machine detected by AMD ends the talk.
            let talk_end = match kind {
                CallKind::SoftphoneOutgoing => t.ended_at,
                _ => match (t.amd_detected_at, t.ended_at) {
                    (Some(a), Some(e)) => Some(a.min(e)),
                    (a, e) => a.or(e),
                },
            };
            let talk = match (t.answered_at, talk_end) {
                (Some(a), Some(e)) => seconds_between(a, e),
                // Dialled and ended without a pick-up: never picked up, so no talk.
                (None, Some(_)) if t.dial_started_at.is_some() => 0,
                _ => sent.talk,
            };
            Durations { ring, talk }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallKind::*;

    const S: i64 = 1_000;
    const NONE_SENT: Durations = Durations { ring: None, talk: 0 };

    fn tl(dial: Option<i64>, ans: Option<i64>, scen: Option<i64>, amd: Option<i64>, end: Option<i64>) -> Timeline {
        Timeline {
            dial_started_at: dial,
            answered_at: ans,
            scenario_started_at: scen,
            amd_detected_at: amd,
            ended_at: end,
        }
    }

    /// One row per call kind and outcome: (kind, timeline, expected ring, expected talk).
    #[test]
    fn durations_table() {
        let rows: Vec<(&str, CallKind, Timeline, Option<u32>, u32)> = vec![
            // automated campaign
            (
                "auto answered",
                AutoCampaign,
                tl(Some(0), Some(9 * S), None, None, Some(60 * S)),
                Some(9),
                51,
            ),
            (
                "auto voicemail cut by AMD",
                AutoCampaign,
                tl(Some(0), Some(5 * S), None, Some(8 * S), Some(30 * S)),
                Some(5),
                3,
            ),
            (
                "auto unreachable",
                AutoCampaign,
                tl(Some(0), None, None, None, Some(4 * S)),
                Some(4),
                0,
            ),
            (
                "auto no answer",
                AutoCampaign,
                tl(Some(0), None, None, None, Some(30 * S)),
                Some(30),
                0,
            ),
            // softphone outgoing: AMD does not cut the talk, the people hang up
            (
                "softphone answered",
                SoftphoneOutgoing,
                tl(Some(0), Some(7 * S), None, None, Some(127 * S)),
                Some(7),
                120,
            ),
            (
                "softphone voicemail",
                SoftphoneOutgoing,
                tl(Some(0), Some(6 * S), None, Some(9 * S), Some(20 * S)),
                Some(6),
                14,
            ),
            (
                "softphone busy",
                SoftphoneOutgoing,
                tl(Some(0), None, None, None, Some(2 * S)),
                Some(2),
                0,
            ),
            // operator campaign
            (
                "operator answered",
                OperatorCampaign,
                tl(Some(0), Some(9 * S), None, None, Some(218 * S)),
                Some(9),
                209,
            ),
            (
                "operator AMD",
                OperatorCampaign,
                tl(Some(0), Some(4 * S), None, Some(6 * S), Some(40 * S)),
                Some(4),
                2,
            ),
            (
                "operator rejected",
                OperatorCampaign,
                tl(Some(0), None, None, None, Some(12 * S)),
                Some(12),
                0,
            ),
            // incoming: no ring, talk is the scenario
            (
                "incoming answered",
                Incoming,
                tl(None, Some(20 * S), Some(0), None, Some(200 * S)),
                None,
                200,
            ),
            (
                "incoming ended in IVR",
                Incoming,
                tl(None, None, Some(0), None, Some(45 * S)),
                None,
                45,
            ),
            (
                "incoming rejected before the scenario",
                Incoming,
                tl(None, None, None, None, Some(S)),
                None,
                0,
            ),
            // rounding to the nearest second
            (
                "rounding",
                SoftphoneOutgoing,
                tl(Some(0), Some(1_499), None, None, Some(1_499 + 10_500)),
                Some(1),
                11,
            ),
        ];
        for (name, kind, t, ring, talk) in rows {
            assert_eq!(t.validate(), Ok(()), "{name}");
            assert_eq!(compute(kind, &t, NONE_SENT), Durations { ring, talk }, "{name}");
        }
    }

    /// Every call kind with every attempt result, each with the timeline that result has in
    /// practice: (kind, result, timeline, ring, talk).
    #[test]
    fn durations_for_every_kind_and_result() {
        use crate::domain::AttemptResult::{self, *};
        // Outgoing shapes: dialled and never picked up after `ring` s; picked up after `ring` s and
        // talked `talk` s; picked up by a machine detected `amd` s later, hung up `end` s later.
        let missed = |ring: i64| tl(Some(0), None, None, None, Some(ring * S));
        let picked = |ring: i64, talk: i64| tl(Some(0), Some(ring * S), None, None, Some((ring + talk) * S));
        let machine = |ring: i64, amd: i64, end: i64| {
            tl(
                Some(0),
                Some(ring * S),
                None,
                Some((ring + amd) * S),
                Some((ring + amd + end) * S),
            )
        };
        // Incoming shapes: the scenario ran `len` s (picked by an operator after `wait` s), or the
        // call never reached the scenario.
        let scenario = |wait: Option<i64>, len: i64| tl(None, wait.map(|w| w * S), Some(0), None, Some(len * S));
        let refused = tl(None, None, None, None, Some(S));

        let rows: Vec<(CallKind, AttemptResult, Timeline, Option<u32>, u32)> = vec![
            (AutoCampaign, OtherError, missed(1), Some(1), 0),
            (AutoCampaign, Unavailable, missed(3), Some(3), 0),
            (AutoCampaign, RequestCancelled, missed(20), Some(20), 0),
            (AutoCampaign, Voicemail, machine(6, 4, 10), Some(6), 4),
            (AutoCampaign, InvalidNumber, missed(1), Some(1), 0),
            (AutoCampaign, Busy, missed(4), Some(4), 0),
            (AutoCampaign, NoAnswer, missed(40), Some(40), 0),
            (AutoCampaign, Answered, picked(9, 51), Some(9), 51),
            (AutoCampaign, InsufficientFunds, missed(0), Some(0), 0),
            (AutoCampaign, LostByOperator, picked(5, 30), Some(5), 30),
            (AutoCampaign, Rejected, missed(7), Some(7), 0),
            (AutoCampaign, BlockedDnc, missed(0), Some(0), 0),
            (AutoCampaign, Abandoned, picked(5, 8), Some(5), 8),
            (AutoCampaign, EndedInIvr, picked(5, 25), Some(5), 25),
            (SoftphoneOutgoing, OtherError, missed(1), Some(1), 0),
            (SoftphoneOutgoing, Unavailable, missed(3), Some(3), 0),
            (SoftphoneOutgoing, RequestCancelled, missed(15), Some(15), 0),
            // The operator listens to the machine until they hang up: AMD does not cut the talk.
            (SoftphoneOutgoing, Voicemail, machine(6, 3, 12), Some(6), 15),
            (SoftphoneOutgoing, InvalidNumber, missed(2), Some(2), 0),
            (SoftphoneOutgoing, Busy, missed(2), Some(2), 0),
            (SoftphoneOutgoing, NoAnswer, missed(30), Some(30), 0),
            (SoftphoneOutgoing, Answered, picked(7, 120), Some(7), 120),
            (SoftphoneOutgoing, InsufficientFunds, missed(0), Some(0), 0),
            (SoftphoneOutgoing, LostByOperator, missed(25), Some(25), 0),
            (SoftphoneOutgoing, Rejected, missed(6), Some(6), 0),
            (SoftphoneOutgoing, BlockedDnc, missed(0), Some(0), 0),
            (SoftphoneOutgoing, Abandoned, missed(10), Some(10), 0),
            (SoftphoneOutgoing, EndedInIvr, picked(4, 12), Some(4), 12),
            (OperatorCampaign, OtherError, missed(1), Some(1), 0),
            (OperatorCampaign, Unavailable, missed(4), Some(4), 0),
            (OperatorCampaign, RequestCancelled, missed(25), Some(25), 0),
            (OperatorCampaign, Voicemail, machine(5, 3, 20), Some(5), 3),
            (OperatorCampaign, InvalidNumber, missed(1), Some(1), 0),
            (OperatorCampaign, Busy, missed(3), Some(3), 0),
            (OperatorCampaign, NoAnswer, missed(35), Some(35), 0),
            (OperatorCampaign, Answered, picked(9, 209), Some(9), 209),
            (OperatorCampaign, InsufficientFunds, missed(0), Some(0), 0),
            (OperatorCampaign, LostByOperator, picked(8, 20), Some(8), 20),
            (OperatorCampaign, Rejected, missed(9), Some(9), 0),
            (OperatorCampaign, BlockedDnc, missed(0), Some(0), 0),
            (OperatorCampaign, Abandoned, picked(6, 4), Some(6), 4),
            (OperatorCampaign, EndedInIvr, picked(6, 15), Some(6), 15),
            (Incoming, OtherError, refused, None, 0),
            (Incoming, Unavailable, refused, None, 0),
            (Incoming, RequestCancelled, scenario(None, 12), None, 12),
            (Incoming, Voicemail, scenario(None, 40), None, 40),
            (Incoming, InvalidNumber, refused, None, 0),
            (Incoming, Busy, refused, None, 0),
            (Incoming, NoAnswer, scenario(None, 60), None, 60),
            (Incoming, Answered, scenario(Some(20), 200), None, 200),
            (Incoming, InsufficientFunds, refused, None, 0),
            (Incoming, LostByOperator, scenario(None, 75), None, 75),
            (Incoming, Rejected, refused, None, 0),
            (Incoming, BlockedDnc, refused, None, 0),
            (Incoming, Abandoned, scenario(None, 95), None, 95),
            (Incoming, EndedInIvr, scenario(None, 45), None, 45),
        ];
        assert_eq!(rows.len(), CallKind::ALL.len() * AttemptResult::ALL.len());
        for kind in CallKind::ALL {
            for result in AttemptResult::ALL {
                assert!(
                    rows.iter().any(|r| r.0 == *kind && r.1 == *result),
                    "{kind} {result} has a row"
                );
            }
        }
        for (kind, result, t, ring, talk) in rows {
            assert_eq!(t.validate(), Ok(()), "{kind} {result}");
            assert_eq!(
                compute(kind, &t, NONE_SENT),
                Durations { ring, talk },
                "{kind} {result}"
            );
        }
    }

    #[test]
    fn sent_totals_fill_only_what_timestamps_cannot_give() {
        let sent = Durations {
            ring: Some(5),
            talk: 33,
        };
        assert_eq!(compute(OperatorCampaign, &Timeline::default(), sent), sent);
        assert_eq!(
            compute(Incoming, &Timeline::default(), sent),
            Durations { ring: None, talk: 33 }
        );
        let known = tl(Some(0), Some(2 * S), None, None, Some(10 * S));
        assert_eq!(
            compute(AutoCampaign, &known, sent),
            Durations { ring: Some(2), talk: 8 }
        );
    }

    #[test]
    fn impossible_timelines_name_the_field() {
        let bad = tl(Some(10 * S), None, None, None, Some(5 * S));
        assert_eq!(bad.validate().unwrap_err().field, "ended_at");
        let bad = tl(Some(10 * S), Some(5 * S), None, None, None);
        assert_eq!(bad.validate().unwrap_err().field, "answered_at");
        let bad = tl(Some(0), Some(5 * S), None, Some(2 * S), None);
        assert_eq!(bad.validate().unwrap_err().field, "amd_detected_at");
    }

    #[test]
    fn start_follows_the_kind() {
        let t = tl(Some(7), None, Some(3), None, None);
        assert_eq!(t.start(Incoming), Some(3));
        assert_eq!(t.start(AutoCampaign), Some(7));
        assert_eq!(tl(None, None, Some(3), None, None).start(OperatorCampaign), Some(3));
    }
}
