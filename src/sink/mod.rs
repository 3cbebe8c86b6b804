//! Output layout, atomic publication of partition files, and the manifest.
//!
//! ```text
//! <out>/<dataset>/bill_cycle=YYYY-MM/part-<account>.parquet   data (Hive layout)
//! <out>/<dataset>/_manifest.json                               written after the data
//! <out>/.hcbill/{staging/,state.json,lock,reports/}            hcbill's own bookkeeping
//! ```
//! A file is written under `.hcbill/staging/` and published by one rename on
//! the same filesystem, so a reader sees the old file or the new one, never a
//! partial one. Names starting with `_` or `.` are skipped by Spark, Hive,
//! Trino, DuckDB and polars globbing.

pub mod manifest;
pub mod parquet;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cycle::BillCycle;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("writing Parquet {path}: {source}")]
    Parquet {
        path: String,
        source: ::parquet::errors::ParquetError,
    },
    #[error("manifest {path}: {reason}")]
    Manifest { path: String, reason: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where everything lives below the output directory.
#[derive(Clone, Debug)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn dataset_dir(&self, dataset: &str) -> PathBuf {
        self.root.join(dataset)
    }

    pub fn partition_dir_name(cycle: BillCycle) -> String {
        format!("bill_cycle={cycle}")
    }

    /// Path of an account's file, relative to the dataset directory.
    pub fn file_rel(cycle: BillCycle, account: &str) -> String {
        let safe: String = account
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{}/part-{safe}.parquet", Self::partition_dir_name(cycle))
    }

    pub fn manifest_path(&self, dataset: &str) -> PathBuf {
        self.dataset_dir(dataset).join("_manifest.json")
    }

    pub fn meta_dir(&self) -> PathBuf {
        self.root.join(".hcbill")
    }

    pub fn staging_dir(&self) -> PathBuf {
        self.meta_dir().join("staging")
    }

    pub fn reports_dir(&self) -> PathBuf {
        self.meta_dir().join("reports")
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    // Unique per write: concurrent writers never share a temp file.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    publish(&tmp, path)
}

/// Moves a finished file into place with one rename, then makes it durable.
pub fn publish(staged: &Path, dest: &Path) -> Result<(), SinkError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::rename(staged, dest).map_err(io_err(dest))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let l = Layout::new("/o");
        let c: BillCycle = "2026-03".parse().unwrap();
        assert_eq!(Layout::file_rel(c, "self"), "bill_cycle=2026-03/part-self.parquet");
        assert_eq!(Layout::file_rel(c, "a/b c"), "bill_cycle=2026-03/part-a_b_c.parquet");
        assert_eq!(l.manifest_path("x"), Path::new("/o/x/_manifest.json"));
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b.json");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }
}
