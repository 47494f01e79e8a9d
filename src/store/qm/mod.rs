//! The QM integration's rows: each account's settings and the operators imported
//! (`integration.rs`), export jobs (`jobs.rs`), and the calls of a job — their outcomes, every
//! failed attempt, and the delivery record that keeps a call from being sent twice (`calls.rs`).

mod calls;
mod integration;
mod jobs;

pub use calls::*;
pub use integration::*;
pub use jobs::*;
