//! The vocabulary of a call record: call kinds, directions, attempt results and scenario kinds.
//!
//! Every enum is stored as its `code()` text in the database and spoken as the same text on the
//! API, so a value that does not parse is rejected at the edge, never stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Implements `code()`, `parse()` and `ALL` for a text-coded enum.
macro_rules! text_enum {
    ($name:ident { $($variant:ident => $code:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable text code used on the API and in storage.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            /// Parses the text code; `None` for anything unknown.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

/// Whether a call came in or went out; derived from the [`CallKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

text_enum!(Direction { Incoming => "incoming", Outgoing => "outgoing" });

impl Direction {
    /// The call kinds that make up this direction.
    pub fn kinds(self) -> &'static [CallKind] {
        match self {
            Direction::Incoming => &[CallKind::Incoming],
            Direction::Outgoing => &[
                CallKind::SoftphoneOutgoing,
                CallKind::AutoCampaign,
                CallKind::OperatorCampaign,
            ],
        }
    }
}

/// The finer kind of a call; it decides how durations are computed (spec §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    Incoming,
    SoftphoneOutgoing,
    AutoCampaign,
    OperatorCampaign,
}

text_enum!(CallKind {
    Incoming => "incoming",
    SoftphoneOutgoing => "softphone_outgoing",
    AutoCampaign => "auto_campaign",
    OperatorCampaign => "operator_campaign",
});

impl CallKind {
    pub fn direction(self) -> Direction {
        match self {
            CallKind::Incoming => Direction::Incoming,
            _ => Direction::Outgoing,
        }
    }
}

/// Whether a scenario is run by a robot or hands calls to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    Automated,
    Operator,
}

text_enum!(ScenarioKind { Automated => "automated", Operator => "operator" });

/// The system's verdict on one call attempt (spec §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    OtherError,
    Unavailable,
    RequestCancelled,
    Voicemail,
    InvalidNumber,
    Busy,
    NoAnswer,
    Answered,
    InsufficientFunds,
    LostByOperator,
    Rejected,
    BlockedDnc,
    Abandoned,
    EndedInIvr,
}

text_enum!(AttemptResult {
    OtherError => "other_error",
    Unavailable => "unavailable",
    RequestCancelled => "request_cancelled",
    Voicemail => "voicemail",
    InvalidNumber => "invalid_number",
    Busy => "busy",
    NoAnswer => "no_answer",
    Answered => "answered",
    InsufficientFunds => "insufficient_funds",
    LostByOperator => "lost_by_operator",
    Rejected => "rejected",
    BlockedDnc => "blocked_dnc",
    Abandoned => "abandoned",
    EndedInIvr => "ended_in_ivr",
});

impl AttemptResult {
    /// The reference product's API spelling (reference-notes.md). Its name for "ended in IVR"
    /// is not public; `Missed_By_Scenario` is the likeliest.
    pub fn reference_code(self) -> &'static str {
        use AttemptResult::*;
        match self {
            OtherError => "Other_Error",
            Unavailable => "Temporary_Unavailable",
            RequestCancelled => "Request_Terminated",
            Voicemail => "AMD",
            InvalidNumber => "Invalid_Number",
            Busy => "Call_Busy",
            NoAnswer => "No_Answer",
            Answered => "Call_Answered",
            InsufficientFunds => "Insufficient_Funds",
            LostByOperator => "Lost_By_Agent",
            Rejected => "Call_Was_Rejected",
            BlockedDnc => "Restricted_By_DNC",
            Abandoned => "Abandoned",
            EndedInIvr => "Missed_By_Scenario",
        }
    }

    /// A result in the reference product's spelling. Its three codes without a twin here map to
    /// the nearest: `No_Agents` (the client waited, nobody was free) to `abandoned`,
    /// `System_Error` and `Call_Prohibited` to `other_error`.
    pub fn from_reference(code: &str) -> Option<AttemptResult> {
        match code {
            "No_Agents" => Some(AttemptResult::Abandoned),
            "System_Error" | "Call_Prohibited" => Some(AttemptResult::OtherError),
            _ => AttemptResult::ALL.iter().copied().find(|r| r.reference_code() == code),
        }
    }

    /// Only an answered call counts as a success (shown green).
    pub fn is_success(self) -> bool {
        self == AttemptResult::Answered
    }

    /// The label shown to people, in the reference product's words.
    pub fn label(self, lang: Lang) -> &'static str {
        use AttemptResult::*;
        match (self, lang) {
            (OtherError, Lang::En) => "Dial error",
            (OtherError, Lang::Ru) => "Ошибка дозвона",
            (Unavailable, Lang::En) => "Number unavailable",
            (Unavailable, Lang::Ru) => "Номер недоступен",
            (RequestCancelled, Lang::En) => "Request cancelled",
            (RequestCancelled, Lang::Ru) => "Запрос отменен",
            (Voicemail, Lang::En) => "Answering machine",
            (Voicemail, Lang::Ru) => "Автоответчик",
            (InvalidNumber, Lang::En) => "Invalid number",
            (InvalidNumber, Lang::Ru) => "Неправильный номер",
            (Busy, Lang::En) => "Number busy",
            (Busy, Lang::Ru) => "Номер занят",
            (NoAnswer, Lang::En) => "No answer",
            (NoAnswer, Lang::Ru) => "Абонент не отвечает",
            (Answered, Lang::En) => "Answered",
            (Answered, Lang::Ru) => "Вызов принят",
            (InsufficientFunds, Lang::En) => "Insufficient funds",
            (InsufficientFunds, Lang::Ru) => "Недостаточно средств",
            (LostByOperator, Lang::En) => "Lost by operator",
            (LostByOperator, Lang::Ru) => "Потерян оператором",
            (Rejected, Lang::En) => "Rejected",
            (Rejected, Lang::Ru) => "Вызов отклонен",
            (BlockedDnc, Lang::En) => "Blocked: DNC",
            (BlockedDnc, Lang::Ru) => "Заблокирован DNC",
            (Abandoned, Lang::En) => "Abandoned",
            (Abandoned, Lang::Ru) => "Брошенный",
            (EndedInIvr, Lang::En) => "Ended in IVR",
            (EndedInIvr, Lang::Ru) => "Завершен в IVR",
        }
    }

    /// Parses our code or the reference product's API spelling (`Call_Answered`, `AMD`, …).
    ///
    /// The reference has three results we do not: `No_Agents` is a call nobody could take
    /// (abandoned), `System_Error` a dial error, `Call_Prohibited` a block by policy (DNC).
    pub fn parse_lenient(s: &str) -> Option<Self> {
        use AttemptResult::*;
        Self::parse(s).or(match s {
            "Other_Error" | "System_Error" => Some(OtherError),
            "Temporary_Unavailable" => Some(Unavailable),
            "Request_Terminated" => Some(RequestCancelled),
            "AMD" => Some(Voicemail),
            "Invalid_Number" => Some(InvalidNumber),
            "Call_Busy" => Some(Busy),
            "No_Answer" => Some(NoAnswer),
            "Call_Answered" => Some(Answered),
            "Insufficient_Funds" => Some(InsufficientFunds),
            "Lost_By_Agent" => Some(LostByOperator),
            "Call_Was_Rejected" => Some(Rejected),
            "Restricted_By_DNC" | "Call_Prohibited" => Some(BlockedDnc),
            "Abandoned" | "No_Agents" => Some(Abandoned),
            "Missed_By_Scenario" => Some(EndedInIvr),
            _ => None,
        })
    }
}

/// The two languages of the interface and of exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    Ru,
    En,
}

text_enum!(Lang { Ru => "ru", En => "en" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_only_answered_succeeds() {
        assert_eq!(AttemptResult::ALL.len(), 14);
        for r in AttemptResult::ALL {
            assert_eq!(AttemptResult::parse(r.code()), Some(*r));
            assert_eq!(r.is_success(), *r == AttemptResult::Answered);
            assert_ne!(r.label(Lang::Ru), r.label(Lang::En));
        }
        for k in CallKind::ALL {
            assert_eq!(CallKind::parse(k.code()), Some(*k));
            assert!(k.direction().kinds().contains(k));
        }
        assert_eq!(AttemptResult::parse("Answered"), None);
        assert_eq!(
            AttemptResult::parse_lenient("Call_Answered"),
            Some(AttemptResult::Answered)
        );
        assert_eq!(AttemptResult::parse_lenient("AMD"), Some(AttemptResult::Voicemail));
        assert_eq!(AttemptResult::parse_lenient("nonsense"), None);
    }

    #[test]
    fn serde_uses_the_codes() {
        let json = serde_json::to_string(&AttemptResult::LostByOperator).unwrap();
        assert_eq!(json, "\"lost_by_operator\"");
        let kind: CallKind = serde_json::from_str("\"operator_campaign\"").unwrap();
        assert_eq!(kind, CallKind::OperatorCampaign);
        assert!(serde_json::from_str::<CallKind>("\"outgoing\"").is_err());
    }
}
