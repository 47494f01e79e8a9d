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
    /// Owners, administrators and managers hand calls to the QM system.
    pub fn exports_to_qm(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Manager)
    }

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

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A browser session (cookie); its writes carry the session's CSRF token.
    Session { id: i64 },
    /// An API token (`Authorization: Bearer`).
    Token { id: i64, scope: TokenScope },
    /// A background job (an export) acting for the user who started it, with their scope as the
    /// directory says when it runs.
    Job { id: i64 },
}

/// Who is asking: the authenticated user, their account, role and credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: super::AccountId,
    pub user_id: super::UserId,
    pub login: String,
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// What the credential allows: a session may do all its user may.
    pub fn scope(&self) -> TokenScope {
        match self.credential {
            Credential::Session { .. } | Credential::Job { .. } => TokenScope::Full,
            Credential::Token { scope, .. } => scope,
        }
    }

    fn full(&self) -> bool {
        self.scope() == TokenScope::Full
    }

    /// How this principal is named in a call's log: the user, and the token when it was one.
    pub fn source(&self) -> String {
        match self.credential {
            Credential::Token { id, .. } => format!("{} (token {id})", self.login),
            Credential::Session { .. } | Credential::Job { .. } => self.login.clone(),
        }
    }

    /// Reading call history and the directory needs a full-scope credential.
    pub fn may_read_calls(&self) -> bool {
        self.full()
    }

    /// Pushing calls: an ingest token, or an owner or administrator.
    pub fn may_ingest(&self) -> bool {
        self.scope() == TokenScope::Ingest || self.role.can_ingest()
    }

    /// Creating users, changing roles, blocking, resetting passwords; account settings; the audit log.
    pub fn may_administer(&self) -> bool {
        self.full() && matches!(self.role, Role::Owner | Role::Admin)
    }

    /// Creating and changing groups: administrators, and managers (who run the teams).
    pub fn may_manage_groups(&self) -> bool {
        self.full() && matches!(self.role, Role::Owner | Role::Admin | Role::Manager)
    }

    /// Handing calls to the QM system: owners, administrators and managers.
    pub fn may_export_to_qm(&self) -> bool {
        self.full() && self.role.exports_to_qm()
    }

    /// Whether this principal may give a user `target`'s role, or change a user who has it:
    /// only an owner makes or touches owners.
    pub fn may_assign(&self, target: Role) -> bool {
        self.may_administer() && (target != Role::Owner || self.role == Role::Owner)
    }
}

#[cfg(test)]
mod principal_tests {
    use super::*;
    use crate::domain::{AccountId, UserId};

    fn principal(role: Role, credential: Credential) -> Principal {
        Principal {
            account_id: AccountId(1),
            user_id: UserId(1),
            login: "x".into(),
            role,
            credential,
        }
    }

    #[test]
    fn permissions_follow_role_and_credential() {
        let session = Credential::Session { id: 1 };
        let ingest = Credential::Token {
            id: 1,
            scope: TokenScope::Ingest,
        };
        let table = [
            // role, administer, manage groups, assign owner, assign admin
            (Role::Owner, true, true, true, true),
            (Role::Admin, true, true, false, true),
            (Role::Manager, false, true, false, false),
            (Role::Supervisor, false, false, false, false),
            (Role::Operator, false, false, false, false),
        ];
        for (role, admin, groups, owner, assign_admin) in table {
            let p = principal(role, session);
            assert_eq!(p.may_administer(), admin, "{role}");
            assert_eq!(p.may_manage_groups(), groups, "{role}");
            assert_eq!(p.may_assign(Role::Owner), owner, "{role}");
            assert_eq!(p.may_assign(Role::Admin), assign_admin, "{role}");
            assert!(p.may_read_calls());
            let t = principal(role, ingest);
            assert!(!t.may_read_calls() && !t.may_administer() && !t.may_manage_groups() && t.may_ingest());
        }
    }
}
