//! Output layout, atomic publication of partition files, and the manifest.
//!
//! ```text
//! <out>/<dataset>/<key>=YYYY-MM/part-<account>.parquet        data (Hive layout; the key
//!                                                              is bill_cycle, or shared_month
//!                                                              and trade_month where a data
//!                                                              column named bill_cycle differs)
//! <out>/<dataset>/_manifest.json                               written after the data
//! <out>/.hcbill/{staging/,state.json,lock,reports/}            hcbill's own bookkeeping
//! ```
//! A file is written under `.hcbill/staging/` and published by one rename on
//! the same filesystem, so a reader sees the old file or the new one, never a
//! partial one (for a bucket, see `output`). Names starting with `_` or `.` are skipped by Spark, Hive,
//! Trino, DuckDB and polars globbing.

pub mod error;
pub mod lease;
pub mod local;
pub mod location;
pub mod manifest;
pub mod migrate;
pub mod mirror;
pub mod output;
pub mod parquet;
pub mod remote;
pub mod spool;
pub mod store;

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

    pub fn partition_dir_name(key: &str, cycle: BillCycle) -> String {
        format!("{key}={cycle}")
    }

    /// Path of an account's file, relative to the dataset directory. Account
    /// ids are checked where they enter (`[A-Za-z0-9_-]{1,64}`) and used as
    /// they are; anything else is hex-encoded behind `hex=` (a character no id
    /// has), so two accounts never share a file and no name leaves the directory.
    pub fn file_rel(key: &str, cycle: BillCycle, account: &str) -> String {
        let plain = !account.is_empty()
            && account.len() <= 64
            && account
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let name = if plain {
            account.to_string()
        } else {
            format!("hex={}", hex::encode(account.as_bytes()))
        };
        format!("{}/part-{name}.parquet", Self::partition_dir_name(key, cycle))
    }

    /// A dataset's manifest, relative to the output.
    pub fn manifest_rel(dataset: &str) -> String {
        format!("{dataset}/_manifest.json")
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

/// Creates `dir` (parents as usual) readable by its owner only: hcbill's own
/// bookkeeping (`.hcbill/`) names accounts and runs.
pub fn create_private_dir(dir: &Path) -> Result<(), SinkError> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    match b.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
            // Made by an older version or by hand: tighten it.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            }
            Ok(())
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Opens a new file for writing, refusing one that exists: a symlink planted
/// at a temp name is never followed.
pub fn create_new(path: &Path) -> Result<File, SinkError> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o644);
    o.open(path).map_err(io_err(path))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
/// On any error the temp file is removed and the old file stays as it was.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    // Unique per write: concurrent writers never share a temp file.
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let written = create_new(&tmp).and_then(|mut f| {
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))
    });
    let result = written.and_then(|()| publish(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Moves a finished file into place with one rename, then makes the rename
/// durable (an fsync of the directory; its failure is an error, not a shrug).
pub fn publish(staged: &Path, dest: &Path) -> Result<(), SinkError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::rename(staged, dest).map_err(io_err(dest))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_paths() {
        let l = Layout::new("/o");
        let c: BillCycle = "2026-03".parse().unwrap();
        assert_eq!(
            Layout::file_rel("bill_cycle", c, "self"),
            "bill_cycle=2026-03/part-self.parquet"
        );
        assert_eq!(
            Layout::file_rel("shared_month", c, "../../x"),
            "shared_month=2026-03/part-hex=2e2e2f2e2e2f78.parquet"
        );
        assert_ne!(Layout::file_rel("k", c, "a.b"), Layout::file_rel("k", c, "a_b"));
        assert_eq!(l.dataset_dir("x"), Path::new("/o/x"));
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

    #[test]
    fn a_failed_atomic_write_leaves_no_temp_file_and_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        atomic_write(&p, b"old").unwrap();
        // The destination is a non-empty directory: the rename fails.
        let blocked = dir.path().join("d");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(atomic_write(&blocked, b"new").is_err());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
        assert_eq!(fs::read(&p).unwrap(), b"old");
    }

    #[cfg(unix)]
    #[test]
    fn private_dirs_and_no_symlink_following() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("out/.hcbill");
        create_private_dir(&meta).unwrap();
        assert_eq!(fs::metadata(&meta).unwrap().permissions().mode() & 0o777, 0o700);
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = meta.join("planted");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link).is_err(), "a planted symlink is not followed");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
