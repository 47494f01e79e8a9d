//! What a principal may see of the call history. Every call query starts from a `CallScope`;
//! nothing reads calls without one.
//!
//! This first cut isolates accounts and redacts the restricted roles' view (spec §1); the
//! per-group rules for supervisors and operators build on the same value.

use super::{AccountId, Principal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallScope {
    pub account: AccountId,
    /// The restricted view: no price, no scenario link, no call details.
    pub redacted: bool,
}

impl CallScope {
    pub fn for_principal(p: &Principal) -> CallScope {
        CallScope {
            account: p.account_id,
            redacted: !p.role.sees_price(),
        }
    }

    /// The unrestricted view of a whole account, for the command line and exports run by it.
    pub fn whole_account(account: AccountId) -> CallScope {
        CallScope {
            account,
            redacted: false,
        }
    }
}
