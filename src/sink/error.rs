//! What can go wrong with an output, local or in a bucket.

use chrono::{DateTime, Utc};

use super::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{url}: {reason}")]
    Store { url: String, reason: String },
    #[error("{url}: access denied ({reason}); the credentials need read, write and delete on the bucket prefix")]
    Denied { url: String, reason: String },
    #[error("another hcbill run is writing to {0} (lock {1} is held); wait for it to finish")]
    Locked(String, String),
    #[error(
        "another hcbill run holds the lease of {url} (run {run}, until {until}); wait for it, or for the lease to expire"
    )]
    Leased {
        url: String,
        run: String,
        until: DateTime<Utc>,
    },
    #[error(
        "{url}: the store {how} conditional writes ({header}), so it cannot keep two runs apart; nothing was written. \
         If your scheduler runs one job at a time (Kubernetes concurrencyPolicy: Forbid, a systemd timer), run with \
         --lock external (see the README's bucket section for what it gives up)"
    )]
    Conditions {
        url: String,
        how: &'static str,
        header: String,
    },
    #[error("another hcbill run took the lease of {url} at the same moment; wait for it to finish")]
    LeaseRace { url: String },
    #[error("{url}: {what} changed under this run (another writer?); stopping so no update is lost")]
    Conflict { url: String, what: String },
    #[error("{url}: this run's lease was lost or could not be renewed in time; stopping (the next run resumes)")]
    LeaseLost { url: String },
    #[error("stopped: {0}")]
    Stopped(String),
    /// A dataset in a layout this version does not write, that it cannot move.
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
}
