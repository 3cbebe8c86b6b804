//! Checkpoints and the output lock.
//!
//! `state.json` records which units of a job have been published. A job is
//! identified by a fingerprint of what was asked (datasets, cycles, accounts,
//! endpoint); if the previous job with the same fingerprint did not complete
//! (killed, crashed), the next run resumes it: same run id, finished units
//! skipped. A unit is marked done only after its file and manifest are in
//! place, so a checkpoint never runs ahead of the data.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::sink::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("another hcbill run is writing to {0} (lock {1} is held); wait for it to finish")]
    Locked(String, String),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("state file {path} is unreadable: {reason}")]
    Corrupt { path: String, reason: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("{0}")]
    Output(String),
}

/// An exclusive advisory lock on the output directory, released on drop or
/// when the process dies (so `kill -9` leaves no stale lock).
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    pub fn acquire(meta_dir: &Path) -> Result<Self, StateError> {
        crate::sink::create_private_dir(meta_dir)?;
        let path = meta_dir.join("lock");
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        // A symlink planted at the lock's name is refused, not followed.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let file = options.open(&path).map_err(|source| StateError::Io {
            path: path.display().to_string(),
            source,
        })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StateError::Locked(
                meta_dir.parent().unwrap_or(meta_dir).display().to_string(),
                path.display().to_string(),
            )),
            Err(TryLockError::Error(source)) => Err(StateError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Complete,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobState {
    pub fingerprint: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub status: JobStatus,
    pub done: BTreeSet<String>,
}

pub struct StateStore {
    out: std::sync::Arc<crate::sink::output::Output>,
    /// The state and the number of its latest version.
    state: Mutex<(JobState, u64)>,
    /// The version last written; held while writing, so writes stay ordered
    /// without holding `state` across an fsync or an upload.
    written: tokio::sync::Mutex<u64>,
    pub resumed: bool,
}

/// Where the checkpoints live, below the output.
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
    pub async fn begin(
        out: std::sync::Arc<crate::sink::output::Output>,
        fingerprint: &str,
        new_run_id: &str,
    ) -> Result<Self, StateError> {
        let bytes = out
            .read(STATE_REL)
            .await
            .map_err(|e| StateError::Output(e.to_string()))?;
        let previous: Option<JobState> = match bytes {
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
                    done: BTreeSet::new(),
                },
                false,
            ),
        };
        let store = Self {
            out,
            state: Mutex::new((state, 0)),
            written: tokio::sync::Mutex::new(0),
            resumed,
        };
        store.update(|_| {}).await?;
        Ok(store)
    }

    /// Changes the state, then writes it: a write already covered by a newer
    /// version is skipped, and none is lost or reordered.
    async fn update(&self, change: impl FnOnce(&mut JobState)) -> Result<(), StateError> {
        let (text, seq) = {
            let mut g = self.state.lock().expect("state lock");
            change(&mut g.0);
            g.1 += 1;
            (serde_json::to_vec_pretty(&g.0).expect("state serialises"), g.1)
        };
        let mut written = self.written.lock().await;
        if *written < seq {
            self.out
                .write(STATE_REL, &text, true)
                .await
                .map_err(|e| StateError::Output(e.to_string()))?;
            *written = seq;
        }
        Ok(())
    }

    pub fn run_id(&self) -> String {
        self.state.lock().expect("state lock").0.run_id.clone()
    }

    pub fn is_done(&self, unit: &str) -> bool {
        self.state.lock().expect("state lock").0.done.contains(unit)
    }

    pub fn done_count(&self) -> usize {
        self.state.lock().expect("state lock").0.done.len()
    }

    pub async fn mark_done(&self, unit: &str) -> Result<(), StateError> {
        self.update(|s| {
            s.done.insert(unit.to_string());
        })
        .await
    }

    pub async fn complete(&self) -> Result<(), StateError> {
        self.update(|s| s.status = JobStatus::Complete).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(dir: &Path) -> std::sync::Arc<crate::sink::output::Output> {
        std::sync::Arc::new(crate::sink::output::Output::local(dir))
    }

    #[tokio::test]
    async fn resumes_only_an_unfinished_job_with_the_same_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::begin(out(dir.path()), "fp1", "run-a").await.unwrap();
        assert!(!s.resumed);
        s.mark_done("u1").await.unwrap();
        drop(s);
        let s = StateStore::begin(out(dir.path()), "fp1", "run-b").await.unwrap();
        assert!(s.resumed);
        assert_eq!(s.run_id(), "run-a");
        assert!(s.is_done("u1") && !s.is_done("u2"));
        s.complete().await.unwrap();
        let s = StateStore::begin(out(dir.path()), "fp1", "run-c").await.unwrap();
        assert!(!s.resumed, "a complete job starts over");
        assert_eq!(s.run_id(), "run-c");
        let s = StateStore::begin(out(dir.path()), "fp2", "run-d").await.unwrap();
        assert!(!s.resumed && s.done_count() == 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_checkpoints_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(StateStore::begin(out(dir.path()), "fp", "run").await.unwrap());
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                tokio::spawn(async move {
                    for i in 0..25 {
                        s.mark_done(&format!("u{t}-{i}")).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let again = StateStore::begin(out(dir.path()), "fp", "other").await.unwrap();
        assert!(again.resumed);
        assert_eq!(again.done_count(), 100);
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join(".hcbill");
        let held = OutputLock::acquire(&meta).unwrap();
        let err = OutputLock::acquire(&meta).err().unwrap().to_string();
        assert!(err.contains("another hcbill run"), "{err}");
        drop(held);
        assert!(OutputLock::acquire(&meta).is_ok());
    }
}
