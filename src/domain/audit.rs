//! What the audit log records.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    LoginOk,
    LoginFailed,
    Logout,
    UserCreated,
    UserChanged,
    TokenCreated,
    TokenRevoked,
    GroupCreated,
    GroupChanged,
    SettingsChanged,
    Export,
    RecordingDownload,
    RecordingUploaded,
    LogLinkCreated,
    LogLinkRevoked,
    RetentionDeleted,
    QmSettingsChanged,
    QmExport,
}

text_enum!(AuditAction {
    LoginOk => "login_ok",
    LoginFailed => "login_failed",
    Logout => "logout",
    UserCreated => "user_created",
    UserChanged => "user_changed",
    TokenCreated => "token_created",
    TokenRevoked => "token_revoked",
    GroupCreated => "group_created",
    GroupChanged => "group_changed",
    SettingsChanged => "settings_changed",
    Export => "export",
    RecordingDownload => "recording_download",
    RecordingUploaded => "recording_uploaded",
    LogLinkCreated => "log_link_created",
    LogLinkRevoked => "log_link_revoked",
    RetentionDeleted => "retention_deleted",
    QmSettingsChanged => "qm_settings_changed",
    QmExport => "qm_export",
});
