//! Call records in: one module per source format, each turning its input into `CallPatch`es
//! for the store.

pub mod native;
