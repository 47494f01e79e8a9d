//! The one integration-test binary: a real server on loopback, driven over HTTP and through
//! the command line.

mod access;
mod api;
mod calllog;
mod cli;
mod common;
mod compat;
mod copy;
mod counts;
mod exports;
mod group_commit;
mod health;
mod instances;
mod labels;
mod pbx;
mod postgres;
mod qm;
mod recordings;
mod schema;
mod session;
mod view;
mod voximplant;
