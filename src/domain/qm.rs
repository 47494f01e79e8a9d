//! The quality-management system's words for a call (T-Bank QM's import API): its id rules, its
//! dates, its directions, hang-up parties and operator names. Pure; the HTTP side is `crate::qm`.

use chrono::DateTime;
use chrono_tz::Tz;
use sha2::{Digest, Sha256};

use super::{AttemptResult, Direction, Lang};

/// The QM system's public host; an account may point elsewhere (a private installation).
pub const DEFAULT_BASE_URL: &str = "https://tqm-cloud.tbank.ru";
/// The import API refuses longer call ids.
pub const MAX_ID_CHARS: usize = 32;
/// The import API refuses longer file links.
pub const MAX_FILE_LINK_CHARS: usize = 2000;

/// Which channel of a stereo recording carries the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperatorChannel {
    #[default]
    Left,
    Right,
}

text_enum!(OperatorChannel { Left => "left", Right => "right" });

/// Who ended the call, as the QM system names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupParty {
    Client,
    Timeout,
    Operator,
    Server,
}

/// Where one call of an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Waiting to be sent (or to be retried, after a failure that may pass).
    Pending,
    /// A request is out; a server that stops for good leaves it so, and the next start calls it
    /// failed (it may or may not have been taken: never sent again on our own).
    Sending,
    /// Taken by the QM system (200).
    Sent,
    /// Taken in an earlier export: not sent again.
    AlreadySent,
    /// Not sent: no recording, or the call is gone.
    Skipped,
    /// Not taken: refused, or still failing after every retry.
    Failed,
}

text_enum!(Outcome {
    Pending => "pending",
    Sending => "sending",
    Sent => "sent",
    AlreadySent => "already_sent",
    Skipped => "skipped",
    Failed => "failed",
});

/// The id the QM system knows a call by: ours when it fits (≤ 32 printable ASCII characters),
/// else `ct` and 30 hex digits of its SHA-256, the same every time, so that a call sent again
/// is recognised as the same call.
pub fn call_id(external_id: &str) -> String {
    let fits = external_id.len() <= MAX_ID_CHARS
        && !external_id.is_empty()
        && external_id.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        return external_id.to_string();
    }
    let digest = Sha256::digest(external_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("ct{}", &hex[..MAX_ID_CHARS - 2])
}

/// A moment as the import API wants it: the account's wall-clock time, no offset.
pub fn local_time(ms: i64, tz: Tz) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

pub fn call_direction(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "inbound",
        Direction::Outgoing => "outbound",
    }
}

/// Who hung up, where the attempt result tells: a caller who gave up waiting (abandoned,
/// cancelled) is the client; a ring nobody took (no answer, lost by the operator) is a timeout.
/// For a conversation the telephony does not say who ended it, and nothing is sent.
pub fn hangup_party(result: Option<AttemptResult>) -> Option<HangupParty> {
    match result? {
        AttemptResult::Abandoned | AttemptResult::RequestCancelled => Some(HangupParty::Client),
        AttemptResult::NoAnswer | AttemptResult::LostByOperator => Some(HangupParty::Timeout),
        AttemptResult::Rejected | AttemptResult::Busy => Some(HangupParty::Client),
        AttemptResult::OtherError | AttemptResult::InsufficientFunds | AttemptResult::BlockedDnc => {
            Some(HangupParty::Server)
        }
        _ => None,
    }
}

/// The attempt result in the language the QM system transcribes in (Russian for `ru…`, else English).
pub fn result_label(result: AttemptResult, language_code: &str) -> &'static str {
    let lang = if language_code.starts_with("ru") {
        Lang::Ru
    } else {
        Lang::En
    };
    result.label(lang)
}

/// An operator's name split the way the QM system keeps it: (last, first, middle). Three words
/// are the Russian formal order «Фамилия Имя Отчество»; two are the order calltrail shows
/// («Анна Иванова»: first, last); one is a last name.
pub fn name_parts(name: &str) -> (String, String, String) {
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        [] => Default::default(),
        [one] => (one.to_string(), String::new(), String::new()),
        [first, last] => (last.to_string(), first.to_string(), String::new()),
        [last, first, rest @ ..] => (last.to_string(), first.to_string(), rest.join(" ")),
    }
}

/// A language code as the QM system takes them (`ru`, `en`, `kk-KZ`).
pub fn check_language(code: &str) -> bool {
    let mut parts = code.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    lang_ok && parts.all(|p| (2..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_the_qm_limit_and_are_stable() {
        assert_eq!(call_id("call-42"), "call-42");
        let exact = "a".repeat(32);
        assert_eq!(call_id(&exact), exact);
        let long = "voximplant-session-0123456789abcdef-leg-a";
        let short = call_id(long);
        assert_eq!(short.len(), 32);
        assert!(short.starts_with("ct"));
        assert_eq!(short, call_id(long), "the same every time");
        assert_ne!(short, call_id("voximplant-session-0123456789abcdef-leg-b"));
        // Not printable ASCII: hashed even when short.
        assert_eq!(call_id("звонок-1").len(), 32);
        assert_eq!(call_id("a b").len(), 32);
        // sha256("") starts e3b0c442…: the empty id is hashed, not sent empty.
        assert_eq!(
            call_id(""),
            format!(
                "ct{}",
                &"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"[..30]
            )
        );
    }

    #[test]
    fn dates_are_wall_clock_in_the_account_zone() {
        // 2026-11-25 09:00:00 UTC.
        let ms = 1_795_597_200_000;
        assert_eq!(local_time(ms, Tz::Europe__Moscow), "2026-11-25T12:00:00");
        assert_eq!(local_time(ms, Tz::UTC), "2026-11-25T09:00:00");
        assert_eq!(local_time(ms, Tz::Asia__Vladivostok), "2026-11-25T19:00:00");
    }

    #[test]
    fn names_split_into_last_first_middle() {
        assert_eq!(
            name_parts("Анна Иванова"),
            ("Иванова".into(), "Анна".into(), String::new())
        );
        assert_eq!(
            name_parts("Иванова  Анна Сергеевна"),
            ("Иванова".into(), "Анна".into(), "Сергеевна".into())
        );
        assert_eq!(name_parts("agent7"), ("agent7".into(), String::new(), String::new()));
        assert_eq!(name_parts("  "), Default::default());
    }

    #[test]
    fn hangup_parties_only_where_the_result_tells() {
        assert_eq!(hangup_party(Some(AttemptResult::Abandoned)), Some(HangupParty::Client));
        assert_eq!(hangup_party(Some(AttemptResult::NoAnswer)), Some(HangupParty::Timeout));
        assert_eq!(
            hangup_party(Some(AttemptResult::LostByOperator)),
            Some(HangupParty::Timeout)
        );
        assert_eq!(hangup_party(Some(AttemptResult::OtherError)), Some(HangupParty::Server));
        assert_eq!(hangup_party(Some(AttemptResult::Answered)), None);
        assert_eq!(hangup_party(None), None);
        assert_eq!(call_direction(Direction::Incoming), "inbound");
        assert_eq!(result_label(AttemptResult::Answered, "ru"), "Вызов принят");
        assert_eq!(result_label(AttemptResult::Answered, "en"), "Answered");
    }

    #[test]
    fn language_codes() {
        for ok in ["ru", "en", "kk-KZ", "uz-Latn"] {
            assert!(check_language(ok), "{ok}");
        }
        for bad in ["", "R", "russian", "ru_RU", "ru-", "../x"] {
            assert!(!check_language(bad), "{bad}");
        }
    }
}
