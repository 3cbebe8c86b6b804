//! The job record.
//!
//! `state.json` records which job the output is running. A job is identified
//! by a fingerprint of what was asked (datasets, cycles, accounts, endpoint);
//! if the previous job with the same fingerprint did not complete (killed,
//! crashed, stopped), the next run resumes it under the same run id. Which of
//! its units are done is not kept here but in the manifests (each entry names
//! the job that last checked it, written with the entry), so a checkpoint
//! never runs ahead of the data and costs nothing per unit: the state is
//! written twice per run, whatever the size of the lake.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sink::output::{Output, OutputError};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state file {path} is unreadable: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(transparent)]
    Output(#[from] OutputError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Complete,
}

/// A job as recorded. Older versions kept a `done` list here; it is ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobState {
    pub fingerprint: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub status: JobStatus,
}

pub struct StateStore {
    out: std::sync::Arc<Output>,
    state: JobState,
    pub resumed: bool,
}

/// Where the job record lives, below the output.
pub const STATE_REL: &str = ".hcbill/state.json";

/// Stable fingerprint of a job description.
pub fn fingerprint(parts: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\x00");
    }
    hex::encode(&h.finalize()[..12])
}

impl StateStore {
    /// Opens the state for a job, resuming an unfinished job with the same fingerprint.
    pub async fn begin(out: std::sync::Arc<Output>, fingerprint: &str, new_run_id: &str) -> Result<Self, StateError> {
        let previous: Option<JobState> = match out.read(STATE_REL).await? {
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| StateError::Corrupt {
                path: format!("{}/{STATE_REL}", out.url()),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let (state, resumed) = match previous {
            Some(p) if p.fingerprint == fingerprint && p.status == JobStatus::Running => (p, true),
            _ => (
                JobState {
                    fingerprint: fingerprint.to_string(),
                    run_id: new_run_id.to_string(),
                    started_at: Utc::now(),
                    status: JobStatus::Running,
                },
                false,
            ),
        };
        let store = Self { out, state, resumed };
        store.save().await?;
        Ok(store)
    }

    async fn save(&self) -> Result<(), StateError> {
        let text = serde_json::to_vec_pretty(&self.state).expect("state serialises");
        Ok(self.out.write(STATE_REL, &text, true).await?)
    }

    pub fn run_id(&self) -> String {
        self.state.run_id.clone()
    }

    pub async fn complete(&mut self) -> Result<(), StateError> {
        self.state.status = JobStatus::Complete;
        self.save().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn out(dir: &Path) -> std::sync::Arc<Output> {
        std::sync::Arc::new(Output::local(dir))
    }

    #[tokio::test]
    async fn resumes_only_an_unfinished_job_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::begin(out(dir.path()), "fp1", "run-a").await.unwrap();
        assert!(!s.resumed);
        drop(s);
        let mut s = StateStore::begin(out(dir.path()), "fp1", "run-b").await.unwrap();
        assert!(s.resumed);
        assert_eq!(s.run_id(), "run-a");
        s.complete().await.unwrap();
        let s = StateStore::begin(out(dir.path()), "fp1", "run-c").await.unwrap();
        assert!(!s.resumed, "a complete job starts over");
        assert_eq!(s.run_id(), "run-c");
        let s = StateStore::begin(out(dir.path()), "fp2", "run-d").await.unwrap();
        assert!(!s.resumed);
    }

    #[tokio::test]
    async fn a_state_of_an_older_version_resumes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".hcbill")).unwrap();
        let old = serde_json::json!({"fingerprint": "fp", "run_id": "old", "started_at": Utc::now(),
            "status": "running", "done": ["bill_summary/2026-10/self"]});
        std::fs::write(dir.path().join(STATE_REL), old.to_string()).unwrap();
        let s = StateStore::begin(out(dir.path()), "fp", "new").await.unwrap();
        assert!(s.resumed && s.run_id() == "old");
    }
}
