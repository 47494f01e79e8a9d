//! Roles of the people who use calltrail (spec §1), stored and spoken as text.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Supervisor,
    Operator,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Supervisor,
        Role::Operator,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.code() == s)
    }

    /// Owner, Administrator and Manager see every call and every column.
    pub fn sees_everything(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Manager)
    }

    /// Price and the scenario link are hidden from the restricted roles.
    pub fn sees_price(self) -> bool {
        self.sees_everything()
    }

    /// Who may push call records with a full-scope token (ingest tokens always may).
    pub fn can_ingest(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.code()), Some(r));
        }
        assert_eq!(Role::parse("administrator"), None);
        assert!(Role::Manager.sees_price());
        assert!(!Role::Supervisor.sees_price());
    }
}

/// What an API token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenScope {
    /// Everything its user may do.
    Full,
    /// Only push call records.
    Ingest,
}

impl TokenScope {
    pub fn code(self) -> &'static str {
        match self {
            TokenScope::Full => "full",
            TokenScope::Ingest => "ingest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(TokenScope::Full),
            "ingest" => Some(TokenScope::Ingest),
            _ => None,
        }
    }
}

/// Who is asking: the authenticated user, their account, role and the credential's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: super::AccountId,
    pub user_id: super::UserId,
    pub login: String,
    pub role: Role,
    pub scope: TokenScope,
}

impl Principal {
    /// Reading call history needs a full-scope credential.
    pub fn may_read_calls(&self) -> bool {
        self.scope == TokenScope::Full
    }

    /// Pushing calls: an ingest token, or an owner or administrator.
    pub fn may_ingest(&self) -> bool {
        self.scope == TokenScope::Ingest || self.role.can_ingest()
    }
}
