//! The pure core: call records, their vocabulary, duration rules, the search filter and roles.
//! Nothing here does I/O; everything here is tested without a database.

#[macro_use]
pub mod call;

// After `call`, whose `text_enum!` they use.
pub mod access;
pub mod audit;
pub mod column;
pub mod duration;
pub mod filter;
pub mod qm;
pub mod record;
pub mod recording;
pub mod role;

pub use access::CallScope;
pub use call::{AttemptResult, CallKind, Direction, Lang, ScenarioKind};
pub use column::Column;
pub use filter::{CallFilter, SearchRequest};
pub use record::{CallPatch, CallRecord};
pub use role::{Credential, Principal, Role, TokenScope};

/// A piece of input that is wrong, with the name of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Typed ids, so that a user id is never passed where a call id belongs.
macro_rules! id_type {
    ($($name:ident),+) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )+};
}

id_type!(AccountId, UserId, CallId);
