//! What a principal may see of the call history (spec §1). Every call query starts from a
//! `CallScope`; nothing reads calls without one. The rules live here, as a pure function of the
//! principal and a few directory facts that the store looks up for each request — so a group
//! change takes effect on the very next request.

use super::{AccountId, Principal, Role};

/// Which calls of the account are visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Every call of the account.
    All,
    /// Only the calls handled by these operators (user ids). Empty: nothing.
    Operators(Vec<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallScope {
    pub account: AccountId,
    /// The restricted view: no price, no scenario link, no call details.
    pub redacted: bool,
    pub visible: Visible,
}

/// The directory facts the rules depend on, as they are at the moment of the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFacts {
    /// The account's call-history switch is on, or the switch of a group the user is a member
    /// of (or, for a supervisor, connected to).
    pub history_access: bool,
    /// The members of the groups the user is connected to as a supervisor, now.
    pub supervised_operators: Vec<i64>,
    /// A blocked user sees nothing, whatever credential is still in flight.
    pub blocked: bool,
}

/// How a query must test a call's operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorTest {
    /// No condition on the operator.
    Any,
    /// The operator is one of these (never empty).
    In(Vec<i64>),
    /// No call can match.
    Never,
}

impl CallScope {
    /// Applies spec §1 to a principal.
    pub fn decide(p: &Principal, facts: ScopeFacts) -> CallScope {
        let own = p.user_id.0;
        let visible = if facts.blocked {
            Visible::Operators(vec![])
        } else {
            match p.role {
                Role::Owner | Role::Admin | Role::Manager => Visible::All,
                Role::Supervisor => {
                    // Their own calls count only when history access is allowed, even when they
                    // are also a member of a group they supervise.
                    let mut ids: Vec<i64> = facts.supervised_operators.into_iter().filter(|id| *id != own).collect();
                    if facts.history_access {
                        ids.push(own);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    Visible::Operators(ids)
                }
                Role::Operator if facts.history_access => Visible::Operators(vec![own]),
                Role::Operator => Visible::Operators(vec![]),
            }
        };
        CallScope {
            account: p.account_id,
            redacted: !p.role.sees_price(),
            visible,
        }
    }

    /// The unrestricted view of a whole account, for the command line and internal jobs.
    pub fn whole_account(account: AccountId) -> CallScope {
        CallScope {
            account,
            redacted: false,
            visible: Visible::All,
        }
    }

    pub fn is_whole_account(&self) -> bool {
        self.visible == Visible::All
    }

    /// The operator condition for a search that asks for `requested` operators (empty: any):
    /// the request narrowed to what the scope allows.
    pub fn operator_test(&self, requested: &[i64]) -> OperatorTest {
        match &self.visible {
            Visible::All if requested.is_empty() => OperatorTest::Any,
            Visible::All => OperatorTest::In(requested.to_vec()),
            Visible::Operators(allowed) => {
                let ids: Vec<i64> = if requested.is_empty() {
                    allowed.clone()
                } else {
                    requested.iter().copied().filter(|id| allowed.contains(id)).collect()
                };
                if ids.is_empty() {
                    OperatorTest::Never
                } else {
                    OperatorTest::In(ids)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credential, TokenScope, UserId};

    fn principal(role: Role) -> Principal {
        Principal {
            account_id: AccountId(7),
            user_id: UserId(10),
            login: "u".into(),
            role,
            credential: Credential::Token {
                id: 1,
                scope: TokenScope::Full,
            },
        }
    }

    fn facts(history_access: bool, supervised: &[i64]) -> ScopeFacts {
        ScopeFacts {
            history_access,
            supervised_operators: supervised.to_vec(),
            blocked: false,
        }
    }

    #[test]
    fn the_rules_of_spec_section_one() {
        use Visible::*;
        let table: [(Role, bool, &[i64], Visible, bool); 10] = [
            (Role::Owner, false, &[], All, false),
            (Role::Admin, false, &[], All, false),
            (Role::Manager, true, &[], All, false),
            (Role::Supervisor, false, &[3, 1], Operators(vec![1, 3]), true),
            (Role::Supervisor, true, &[3, 1], Operators(vec![1, 3, 10]), true),
            // A supervisor who is also a member of a group they supervise: own calls still need access.
            (Role::Supervisor, false, &[10, 3], Operators(vec![3]), true),
            (Role::Supervisor, false, &[], Operators(vec![]), true),
            (Role::Operator, false, &[], Operators(vec![]), true),
            (Role::Operator, true, &[], Operators(vec![10]), true),
            (Role::Operator, true, &[3], Operators(vec![10]), true),
        ];
        for (role, access, supervised, visible, redacted) in table {
            let s = CallScope::decide(&principal(role), facts(access, supervised));
            assert_eq!(s.visible, visible, "{role} access={access} supervised={supervised:?}");
            assert_eq!(s.redacted, redacted, "{role}");
            assert_eq!(s.account, AccountId(7));
        }
    }

    #[test]
    fn a_blocked_user_sees_nothing() {
        let f = ScopeFacts {
            blocked: true,
            ..facts(true, &[1])
        };
        let s = CallScope::decide(&principal(Role::Owner), f);
        assert_eq!(s.operator_test(&[]), OperatorTest::Never);
    }

    #[test]
    fn requested_operators_are_narrowed_to_the_scope() {
        let all = CallScope::whole_account(AccountId(1));
        assert_eq!(all.operator_test(&[]), OperatorTest::Any);
        assert_eq!(all.operator_test(&[5]), OperatorTest::In(vec![5]));
        let some = CallScope {
            visible: Visible::Operators(vec![1, 3]),
            ..all.clone()
        };
        assert_eq!(some.operator_test(&[]), OperatorTest::In(vec![1, 3]));
        assert_eq!(some.operator_test(&[3, 4]), OperatorTest::In(vec![3]));
        assert_eq!(some.operator_test(&[4]), OperatorTest::Never);
        let none = CallScope {
            visible: Visible::Operators(vec![]),
            ..all
        };
        assert_eq!(none.operator_test(&[]), OperatorTest::Never);
    }
}
