//! Recordings and the call log: their states and vocabulary.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the restricted roles (Supervisor, Operator) may do with the recordings of the calls they
/// see; an account setting. Full roles may always play and download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingAccess {
    /// Play in the page and download the file.
    Download,
    /// Play in the page only.
    Play,
    /// Neither.
    None,
}

text_enum!(RecordingAccess { Download => "download", Play => "play", None => "none" });

/// How a recording is asked for: played in the page (inline) or saved as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingUse {
    Play,
    Download,
}

text_enum!(RecordingUse { Play => "play", Download => "download" });

impl RecordingAccess {
    /// Whether the restricted roles may use a recording this way under this setting.
    pub fn allows(self, how: RecordingUse) -> bool {
        match self {
            RecordingAccess::Download => true,
            RecordingAccess::Play => how == RecordingUse::Play,
            RecordingAccess::None => false,
        }
    }
}

/// Whether someone of `role` may use a recording this way, under the account's setting for the
/// restricted roles. Seeing the call is checked separately (the call scope).
pub fn may_use(role: super::Role, setting: RecordingAccess, how: RecordingUse) -> bool {
    role.sees_everything() || setting.allows(how)
}

/// Where a call's recording is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// To be fetched from the URL the telephony gave.
    Pending,
    /// In storage, ready to play.
    Stored,
    /// Fetching gave up; `error` says why.
    Failed,
}

text_enum!(RecordingState { Pending => "pending", Stored => "stored", Failed => "failed" });

/// One entry of a call's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallEvent {
    /// The record arrived (its fields listed).
    Created,
    /// A later record changed it (the changed fields listed).
    Updated,
    /// A recording URL arrived; the file will be fetched.
    RecordingRequested,
    /// The recording is in storage (uploaded or fetched).
    RecordingStored,
    /// Fetching the recording failed once and will be tried again.
    RecordingRetry,
    /// Fetching the recording gave up.
    RecordingFailed,
    /// The retention setting removed the recording.
    RecordingDeleted,
    LogLinkCreated,
    LogLinkRevoked,
}

text_enum!(CallEvent {
    Created => "created",
    Updated => "updated",
    RecordingRequested => "recording_requested",
    RecordingStored => "recording_stored",
    RecordingRetry => "recording_retry",
    RecordingFailed => "recording_failed",
    RecordingDeleted => "recording_deleted",
    LogLinkCreated => "log_link_created",
    LogLinkRevoked => "log_link_revoked",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_access_by_setting_and_use() {
        let table = [
            (RecordingAccess::Download, true, true),
            (RecordingAccess::Play, true, false),
            (RecordingAccess::None, false, false),
        ];
        for (setting, play, download) in table {
            assert_eq!(setting.allows(RecordingUse::Play), play, "{setting}");
            assert_eq!(setting.allows(RecordingUse::Download), download, "{setting}");
            assert_eq!(RecordingAccess::parse(setting.code()), Some(setting));
        }
        assert_eq!(RecordingAccess::parse("stream"), None);
        use super::super::Role;
        for how in [RecordingUse::Play, RecordingUse::Download] {
            assert!(may_use(Role::Manager, RecordingAccess::None, how));
            assert!(may_use(Role::Owner, RecordingAccess::None, how));
            assert!(!may_use(Role::Supervisor, RecordingAccess::None, how));
            assert!(may_use(Role::Operator, RecordingAccess::Download, how));
        }
        assert!(may_use(Role::Operator, RecordingAccess::Play, RecordingUse::Play));
        assert!(!may_use(Role::Operator, RecordingAccess::Play, RecordingUse::Download));
    }
}
