//! Where a run's files go, one interface over a local directory and a bucket
//! (`remote`). Both give the same guarantees and the same bytes:
//!
//! * a data file becomes visible in one step: a rename on disk; one PUT, or a
//!   multipart upload completed only when the file is whole, in a store.
//!   Parquet is written to a local file first (`.hcbill/staging/`, or the
//!   `spool` of a bucket), so memory stays flat however large a month is;
//! * the manifests, `state.json` and the run reports live with the data (under
//!   `.hcbill/` and `<dataset>/_manifest/`), so a fresh container resumes where
//!   a killed one stopped;
//! * one writer at a time (`lease`): an `flock` on disk; on a bucket a lease,
//!   conditional writes of manifests and state, and fenced data files, after a
//!   probe that the store honours the conditions; or, with `--lock external`,
//!   the scheduler's word for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;

use super::Layout;
pub use super::error::OutputError;
use super::lease::{BucketLease, OutputLock};
use super::local::Local;
use super::manifest::{Manifest, SHARDS};
use super::remote::{Head, Honours, Remote};
use crate::stop::Stop;

pub use super::location::{Location, LockMode, Scheme, StoreConfig};

/// The output of a run, local or in a bucket.
pub struct Output {
    inner: Inner,
}

enum Inner {
    Local(Local),
    Remote(Box<Remote>),
}

/// Held for the run: the flock, or the lease and its renewal.
pub enum OutputGuard {
    Local(#[allow(dead_code)] OutputLock),
    Remote(BucketLease),
    /// `--lock external`: the scheduler keeps runs apart.
    External,
}

impl OutputGuard {
    /// Releases the lock, or the lease (only if it is still this run's).
    pub async fn release(self) {
        if let OutputGuard::Remote(lease) = self {
            lease.release().await;
        }
    }
}

/// A file of the output as a local path: the file itself, or a downloaded
/// copy removed when dropped.
pub struct LocalCopy {
    pub path: PathBuf,
    _tmp: Option<tempfile::TempPath>,
}

impl Output {
    /// Opens `location`. A bucket's every call ends within the lease's call
    /// budget (request timeout, then retries with backoff).
    pub fn open(location: &Location, cfg: &StoreConfig, stop: Stop) -> Result<Self, OutputError> {
        let (scheme, bucket, prefix) = match location {
            Location::Local(p) => return Ok(Self::local(p)),
            Location::Bucket { scheme, bucket, prefix } => (*scheme, bucket, prefix),
        };
        let url = location.to_string();
        let (store, endpoint) = super::store::build_store(scheme, bucket, cfg, &url)?;
        // The spool is the output's: the same bucket name at another endpoint is another output.
        let spool = format!("{url} at {endpoint}");
        Ok(Self {
            inner: Inner::Remote(Box::new(Remote::new(store, prefix, &url, &spool, cfg, stop))),
        })
    }

    pub fn local(dir: &Path) -> Self {
        Self {
            inner: Inner::Local(Local {
                layout: Layout::new(dir),
            }),
        }
    }

    /// A bucket served by the given store (tests), with a spool of its own.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str, cfg: &StoreConfig, stop: Stop) -> Self {
        let spool = format!("{url} {}", uuid::Uuid::new_v4());
        Self {
            inner: Inner::Remote(Box::new(Remote::new(store, prefix, url, &spool, cfg, stop))),
        }
    }

    pub fn url(&self) -> String {
        match &self.inner {
            Inner::Local(l) => l.layout.root.display().to_string(),
            Inner::Remote(r) => r.url.clone(),
        }
    }

    /// The local directory, when the output is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Local(l) => Some(&l.layout.root),
            Inner::Remote(_) => None,
        }
    }

    /// Takes the output for this run: refused when another run holds it, or
    /// when the store does not honour the conditional writes the lease needs.
    pub async fn lock(&self, run_id: &str) -> Result<OutputGuard, OutputError> {
        let r = match &self.inner {
            Inner::Local(l) => return Ok(OutputGuard::Local(OutputLock::acquire(&l.layout.meta_dir())?)),
            Inner::Remote(r) => r,
        };
        let guard = match r.lock {
            LockMode::External => OutputGuard::External,
            LockMode::Lease => {
                match super::remote::probe(r).await? {
                    Honours::Both => {}
                    Honours::Ignores(header) => {
                        return Err(OutputError::Conditions {
                            url: r.url.clone(),
                            how: "ignores",
                            header: header.to_string(),
                        });
                    }
                    Honours::Refuses(header, answer) => {
                        return Err(OutputError::Conditions {
                            url: r.url.clone(),
                            how: "refuses",
                            header: format!("{header}: {answer}"),
                        });
                    }
                }
                let ttl = r.lease_ttl;
                OutputGuard::Remote(
                    BucketLease::acquire(
                        r.store.clone(),
                        r.obj(".hcbill/lease"),
                        &r.url,
                        run_id,
                        ttl,
                        r.clock.clone(),
                        r.stop.clone(),
                    )
                    .await?,
                )
            }
        };
        if let Err(e) = r.spool.claim() {
            guard.release().await;
            return Err(OutputError::Store {
                url: r.url.clone(),
                reason: format!("cannot make the local spool {}: {e}", r.spool.dir().display()),
            });
        }
        Ok(guard)
    }

    /// Removes what a killed run left in staging.
    pub fn clear_staging(&self) {
        if let Inner::Local(l) = &self.inner {
            let _ = std::fs::remove_dir_all(l.layout.staging_dir());
        }
    }

    /// Where a unit's Parquet file is staged (always a local file).
    pub fn staging_file(&self, name: &str) -> PathBuf {
        match &self.inner {
            Inner::Local(l) => l.layout.staging_dir().join(name),
            Inner::Remote(r) => r.spool.dir().join(name),
        }
    }

    /// The bytes of `rel`, if it exists; its version is remembered for a
    /// later guarded write.
    pub async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, OutputError> {
        match &self.inner {
            Inner::Local(l) => l.read(rel),
            Inner::Remote(r) => r.read(rel).await,
        }
    }

    /// Writes `rel` whole, atomically. `guarded`: a manifest or the state,
    /// updated only if nobody else changed it since this run read or wrote it.
    pub async fn write(&self, rel: &str, bytes: &[u8], guarded: bool) -> Result<(), OutputError> {
        match &self.inner {
            Inner::Local(l) => l.write(rel, bytes),
            Inner::Remote(r) if guarded => r.write_guarded(rel, bytes).await,
            Inner::Remote(r) => r.write_plain(rel, bytes).await,
        }
    }

    /// Size and ETag of `rel`, if it exists.
    pub async fn head(&self, rel: &str) -> Result<Option<Head>, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(l.head(rel)),
            Inner::Remote(r) => r.head(rel).await,
        }
    }

    /// Whether the file at `rel` is the one `entry` describes: its ETag in a
    /// bucket (an entry recorded without one is not trusted); on disk its
    /// size, and with `deep` its sha256.
    pub async fn holds(&self, rel: &str, entry: &super::manifest::FileEntry, deep: bool) -> Result<bool, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(l.holds(rel, entry, deep).await),
            Inner::Remote(r) => Ok(match (r.head(rel).await?, &entry.e_tag) {
                (Some(h), Some(e)) => h.e_tag.as_ref() == Some(e) && h.size == entry.bytes,
                // Recorded before ETags were: its size, as then (the commit records the ETag).
                (Some(h), None) => h.size == entry.bytes,
                (None, _) => false,
            }),
        }
    }

    pub async fn exists(&self, rel: &str) -> Result<bool, OutputError> {
        Ok(self.head(rel).await?.is_some())
    }

    /// A dataset's manifest: its shards, over a legacy single file if one is
    /// left (`None`: there is none yet).
    pub async fn manifest(&self, spec: &crate::source::datasets::DatasetSpec) -> Result<Option<Manifest>, OutputError> {
        let legacy_rel = Layout::manifest_rel(spec.name);
        let legacy = self.read(&legacy_rel).await?;
        let name = format!("{}/{legacy_rel}", self.url());
        let mut m = Manifest::from_bytes(legacy.as_deref(), spec.name, spec.version, &name)?;
        let mut found = legacy.is_some();
        let dir = format!("{}/{SHARDS}", spec.name);
        let mut shards = self.list(&dir).await?;
        shards.retain(|n| n.ends_with(".json") && !n.starts_with('.'));
        shards.sort();
        for n in shards {
            let rel = format!("{dir}/{n}");
            if let Some(b) = self.read(&rel).await? {
                m.add_shard(&b, &format!("{}/{rel}", self.url()))?;
                found = true;
            }
        }
        Ok(found.then_some(m))
    }

    /// Names of the files directly under `rel_dir` (e.g. the run reports).
    pub async fn list(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(l.list(rel_dir)),
            Inner::Remote(r) => r.list_names(rel_dir).await,
        }
    }

    /// Copies `from` to `to`, which appears whole or not at all: on disk a
    /// hard link (a copy where links are refused) published by one rename; in
    /// a bucket a server-side copy.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), OutputError> {
        match &self.inner {
            Inner::Local(l) => l.copy(from, to),
            Inner::Remote(r) => r.copy(from, to).await,
        }
    }

    /// Deletes `rel`; one already gone is no error.
    pub async fn delete(&self, rel: &str) -> Result<(), OutputError> {
        match &self.inner {
            Inner::Local(l) => l.delete(rel),
            Inner::Remote(r) => r.delete(rel).await,
        }
    }

    /// Every file under `rel_dir` (at any depth), relative to `rel_dir`.
    pub async fn list_tree(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(l.list_tree(rel_dir)),
            Inner::Remote(r) => r.list_tree(rel_dir).await,
        }
    }

    /// Removes the directory `rel` if it is empty (a bucket has none).
    pub fn remove_empty_dir(&self, rel: &str) {
        if let Inner::Local(l) = &self.inner {
            l.remove_empty_dir(rel);
        }
    }

    /// Makes a staged file the object `rel` in one step, then drops the staged
    /// copy. In a bucket the write is fenced: it replaces only the object
    /// whose ETag is `replaces` (`None`: none), while the lease is valid.
    /// Returns the new ETag (a bucket's).
    pub async fn publish(
        &self,
        staged: &Path,
        rel: &str,
        replaces: Option<&str>,
    ) -> Result<Option<String>, OutputError> {
        match &self.inner {
            Inner::Local(l) => l.publish(staged, rel).map(|()| None),
            Inner::Remote(r) => {
                let result = r.upload(staged, rel, replaces).await;
                let _ = std::fs::remove_file(staged);
                result
            }
        }
    }

    /// `rel` as a local file: itself on disk, a downloaded copy from a bucket.
    pub async fn local_copy(&self, rel: &str, tmp_dir: &Path) -> Result<LocalCopy, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(LocalCopy {
                path: l.file(rel),
                _tmp: None,
            }),
            Inner::Remote(r) => {
                let tmp = tempfile::Builder::new()
                    .prefix(".download-")
                    .tempfile_in(tmp_dir)
                    .map_err(|e| OutputError::Sink(super::io_err(tmp_dir)(e)))?
                    .into_temp_path();
                r.download(rel, &tmp).await?;
                Ok(LocalCopy {
                    path: tmp.to_path_buf(),
                    _tmp: Some(tmp),
                })
            }
        }
    }
}
