//! hcbill: Huawei Cloud BSS billing APIs → typed, Hive-partitioned Parquet.
//!
//! * `source` — the signed BSS client, its quotas and retries, paging, and one
//!   module per dataset;
//! * `model` — Arrow schemas and exact normalisation of API rows;
//! * `sink` — Parquet files, atomic publication and the manifest;
//! * `state` — checkpoints and the output lock;
//! * `pipeline` — runs: plan, units, writers, commit, reports, pipeline files;
//! * `contract` — schema contracts and warehouse DDL per dataset;
//! * `sim` — the BSS simulator;
//! * `report` — the polars cost report (feature `report`);
//! * `verify` — integrity and cross-dataset reconciliation of a lake;
//! * `cli` — the command line.

pub mod cli;
pub mod contract;
pub mod cycle;
pub mod model;
pub mod pipeline;
#[cfg(feature = "report")]
pub mod report;
pub mod sim;
pub mod sink;
pub mod source;
pub mod state;
pub mod stop;
pub mod verify;
