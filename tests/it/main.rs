//! End-to-end tests against the simulator (one test binary: see rust-stack notes).

mod bucket;
mod bucket_guarantees;
mod cli;
mod common;
mod contract;
mod e2e;
mod families;
mod focus_conformance;
mod fuzz;
mod hostile;
mod layout;
mod ops;
#[cfg(feature = "report")]
mod report;
mod resilience;
mod s3server;
mod simulator;
mod verify;
