//! Where a run's files go: a local directory, or a bucket of Huawei OBS (its S3
//! API) or any S3-compatible store. Both give the same guarantees and the same
//! bytes:
//!
//! * a data file becomes visible in one step: a rename on disk; one PUT, or a
//!   multipart upload completed only when the file is whole (aborted on
//!   failure), in a store. Parquet is written to a local spool file first, so
//!   memory stays flat however large a month is;
//! * the manifests, `state.json` and the run reports live under `.hcbill/` of
//!   the same prefix, so a fresh container resumes where a killed one stopped;
//! * one writer at a time: an `flock` on disk; in a store, a lease object
//!   created only if absent, renewed while the run lives and taken over only
//!   after it expires; manifest and state updates are conditional puts (ETag),
//!   so an update is never lost to another writer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjPath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, UpdateVersion, WriteMultipart,
};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use super::{Layout, SinkError};
use crate::state::{OutputLock, StateError};

/// Files up to this size go in one PUT; larger ones in parts of this size.
const PART: usize = 8 << 20;
/// A lease not renewed for this long belongs to a dead run.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// `--out`: a local path, `obs://bucket/prefix` or `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Bucket {
        scheme: Scheme,
        bucket: String,
        prefix: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Obs,
    S3,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Bucket { scheme, bucket, prefix } => {
                let s = if *scheme == Scheme::Obs { "obs" } else { "s3" };
                write!(f, "{s}://{bucket}/{prefix}")
            }
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let scheme = if s.starts_with("obs://") {
            Some(Scheme::Obs)
        } else if s.starts_with("s3://") {
            Some(Scheme::S3)
        } else {
            None
        };
        let Some(scheme) = scheme else {
            if s.contains("://") {
                return Err(format!(
                    "--out {s}: only a local path, obs://bucket/prefix or s3://bucket/prefix"
                ));
            }
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let rest = s.split_once("://").map_or("", |(_, r)| r);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "--out {s}: {bucket:?} is not a bucket name (3-63 of a-z, 0-9, '-', '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(format!("--out {s}: the prefix may not contain . or .."));
        }
        Ok(Location::Bucket {
            scheme,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// How to reach a bucket.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    /// OBS endpoint (default from the region: `https://obs.<region>.myhuaweicloud.com`).
    pub obs_endpoint: Option<String>,
    /// OBS region (default `cn-north-4`).
    pub obs_region: Option<String>,
    /// OBS keys when not the BSS client's: (AK, SK, security token).
    pub obs_keys: Option<(String, String, Option<String>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{url}: {reason}")]
    Store { url: String, reason: String },
    #[error("{url}: access denied ({reason}); the credentials need read, write and delete on the bucket prefix")]
    Denied { url: String, reason: String },
    #[error(
        "another hcbill run holds the lease of {url} (run {run}, until {until}); wait for it, or for the lease to expire"
    )]
    Leased {
        url: String,
        run: String,
        until: DateTime<Utc>,
    },
    #[error("{url}: {what} changed under this run (another writer?); stopping so no update is lost")]
    Conflict { url: String, what: String },
    #[error("{url}: this run's lease was taken over; stopping")]
    LeaseLost { url: String },
    /// A dataset in a layout this version does not write, that it cannot move.
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// The output of a run, local or in a bucket.
pub struct Output {
    inner: Inner,
}

enum Inner {
    Local(Layout),
    Remote(Box<Remote>),
}

struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: ObjPath,
    url: String,
    /// Local spool for Parquet files before upload (removed with the Output).
    spool: Spool,
    /// Last known version of each conditionally updated object.
    versions: tokio::sync::Mutex<HashMap<String, UpdateVersion>>,
    /// Bytes of the last guarded write of each object, to recognise our own
    /// write when its answer was lost.
    attempted: tokio::sync::Mutex<HashMap<String, Vec<u8>>>,
    lease_lost: Arc<AtomicBool>,
    /// When the lease was last renewed (Unix ms; 0 before it is taken).
    renewed_ms: Arc<std::sync::atomic::AtomicI64>,
}

/// A private local directory for files on their way to a bucket, removed when dropped.
struct Spool(PathBuf);

impl Spool {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("hcbill-spool-{}", uuid::Uuid::new_v4().simple()));
        super::create_private_dir(&dir).map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Spool(dir))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Held for the run: the flock, or the lease and its renewal.
pub enum OutputGuard {
    Local(#[allow(dead_code)] OutputLock),
    Remote {
        renew: tokio::task::JoinHandle<()>,
        store: Arc<dyn ObjectStore>,
        path: ObjPath,
        lost: Arc<AtomicBool>,
    },
}

impl OutputGuard {
    /// Releases the lock or deletes the lease (a dead run's lease just expires;
    /// a lease taken over by another run is theirs and stays).
    pub async fn release(self) {
        if let OutputGuard::Remote {
            renew,
            store,
            path,
            lost,
        } = self
        {
            renew.abort();
            if !lost.load(Ordering::SeqCst) {
                let _ = store.delete(&path).await;
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Lease {
    run_id: String,
    host: String,
    expires_at: DateTime<Utc>,
}

fn store_error(url: &str, e: object_store::Error) -> OutputError {
    let reason = e.to_string();
    let lower = reason.to_ascii_lowercase();
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || lower.contains("accessdenied")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("invalidaccesskeyid")
    {
        OutputError::Denied {
            url: url.to_string(),
            reason: reason.lines().next().unwrap_or("").chars().take(200).collect(),
        }
    } else {
        OutputError::Store {
            url: url.to_string(),
            reason: reason.lines().next().unwrap_or("").chars().take(300).collect(),
        }
    }
}

impl Output {
    /// Opens `location`. A bucket's store retries transient errors (5xx,
    /// throttling, resets) with backoff, within two minutes per request.
    pub fn open(location: &Location, cfg: &StoreConfig) -> Result<Self, OutputError> {
        let (scheme, bucket, prefix) = match location {
            Location::Local(p) => return Ok(Self::local(p)),
            Location::Bucket { scheme, bucket, prefix } => (*scheme, bucket, prefix),
        };
        let url = location.to_string();
        // Built without a default TLS provider (no C build): install ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let retry = RetryConfig {
            max_retries: 8,
            retry_timeout: Duration::from_secs(120),
            ..Default::default()
        };
        let builder = match scheme {
            // Any S3-compatible store: the usual AWS chain (AWS_ACCESS_KEY_ID…,
            // AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP).
            Scheme::S3 => AmazonS3Builder::from_env(),
            Scheme::Obs => {
                let region = cfg.obs_region.clone().unwrap_or_else(|| "cn-north-4".to_string());
                let base = cfg
                    .obs_endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://obs.{region}.myhuaweicloud.com"));
                // Virtual-hosted style: the bucket is the first label of the host,
                // and object_store takes such an endpoint as given.
                let endpoint = match base.split_once("://") {
                    Some((scheme, host)) if !host.starts_with(&format!("{bucket}.")) => {
                        format!("{scheme}://{bucket}.{}", host.trim_end_matches('/'))
                    }
                    _ => base.trim_end_matches('/').to_string(),
                };
                let mut b = AmazonS3Builder::new()
                    .with_region(region)
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(true);
                if let Some((ak, sk, token)) = &cfg.obs_keys {
                    b = b.with_access_key_id(ak).with_secret_access_key(sk);
                    if let Some(t) = token {
                        b = b.with_token(t);
                    }
                }
                b
            }
        };
        let store = builder
            .with_bucket_name(bucket)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(retry)
            .build()
            .map_err(|e| store_error(&url, e))?;
        let spool = Spool::new().map_err(|e| OutputError::Store {
            url: url.clone(),
            reason: format!("cannot make a local spool directory: {e}"),
        })?;
        Ok(Self {
            inner: Inner::Remote(Box::new(Remote {
                store: Arc::new(store),
                prefix: ObjPath::from(prefix.as_str()),
                url,
                spool,
                versions: tokio::sync::Mutex::new(HashMap::new()),
                attempted: tokio::sync::Mutex::new(HashMap::new()),
                lease_lost: Arc::new(AtomicBool::new(false)),
                renewed_ms: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            })),
        })
    }

    pub fn local(dir: &Path) -> Self {
        Self {
            inner: Inner::Local(Layout::new(dir)),
        }
    }

    /// For tests: a bucket served by the given store.
    pub fn with_store(store: Arc<dyn ObjectStore>, prefix: &str, url: &str) -> Result<Self, OutputError> {
        let spool = Spool::new().map_err(|e| OutputError::Store {
            url: url.into(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: Inner::Remote(Box::new(Remote {
                store,
                prefix: ObjPath::from(prefix),
                url: url.into(),
                spool,
                versions: tokio::sync::Mutex::new(HashMap::new()),
                attempted: tokio::sync::Mutex::new(HashMap::new()),
                lease_lost: Arc::new(AtomicBool::new(false)),
                renewed_ms: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            })),
        })
    }

    pub fn url(&self) -> String {
        match &self.inner {
            Inner::Local(l) => l.root.display().to_string(),
            Inner::Remote(r) => r.url.clone(),
        }
    }

    /// The local directory, when the output is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.inner {
            Inner::Local(l) => Some(&l.root),
            Inner::Remote(_) => None,
        }
    }

    fn obj(r: &Remote, rel: &str) -> ObjPath {
        if r.prefix.as_ref().is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", r.prefix.as_ref()))
        }
    }

    /// Takes the output for this run: refused when another run holds it.
    pub async fn lock(&self, run_hint: &str) -> Result<OutputGuard, OutputError> {
        let r = match &self.inner {
            Inner::Local(l) => return Ok(OutputGuard::Local(OutputLock::acquire(&l.meta_dir())?)),
            Inner::Remote(r) => r,
        };
        let path = Self::obj(r, ".hcbill/lease");
        let lease = |expires_at| Lease {
            run_id: run_hint.to_string(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            expires_at,
        };
        let body = |l: &Lease| PutPayload::from(serde_json::to_vec(l).expect("a lease serialises"));
        // A conditional put is not retried by object_store after a transport
        // error: retried here; a try that landed with its answer lost shows as
        // a lease of this run's own below.
        let mut transient = 0u32;
        let created = loop {
            let create = PutOptions::from(PutMode::Create);
            match r
                .store
                .put_opts(&path, body(&lease(Utc::now() + LEASE_TTL)), create)
                .await
            {
                Err(object_store::Error::Generic { .. }) if transient < 4 => {
                    transient += 1;
                    tokio::time::sleep(Duration::from_millis(100 << transient)).await;
                }
                other => break other,
            }
        };
        let mut version = match created {
            Ok(res) => UpdateVersion::from(res),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let got = r.store.get(&path).await.map_err(|e| store_error(&r.url, e))?;
                let seen = version_of(&got.meta);
                let held: Option<Lease> =
                    serde_json::from_slice(&got.bytes().await.map_err(|e| store_error(&r.url, e))?).ok();
                // This run's own lease, from a try whose answer was lost: renewed below.
                let ours = transient > 0 && held.as_ref().is_some_and(|h| h.run_id == run_hint);
                if !ours {
                    if let Some(h) = held.filter(|h| h.expires_at > Utc::now()) {
                        return Err(OutputError::Leased {
                            url: r.url.clone(),
                            run: h.run_id,
                            until: h.expires_at,
                        });
                    }
                    // Expired: a dead run's. Take it over, unless another run just did.
                    tracing::warn!("taking over the expired lease of {}", r.url);
                }
                let opts = PutOptions::from(PutMode::Update(seen));
                match r
                    .store
                    .put_opts(&path, body(&lease(Utc::now() + LEASE_TTL)), opts)
                    .await
                {
                    Ok(res) => UpdateVersion::from(res),
                    Err(object_store::Error::Precondition { .. }) => {
                        return Err(OutputError::Leased {
                            url: r.url.clone(),
                            run: "another".into(),
                            until: Utc::now() + LEASE_TTL,
                        });
                    }
                    Err(e) => return Err(store_error(&r.url, e)),
                }
            }
            Err(e) => return Err(store_error(&r.url, e)),
        };
        r.renewed_ms.store(Utc::now().timestamp_millis(), Ordering::SeqCst);
        let (store, lost, hint) = (r.store.clone(), r.lease_lost.clone(), run_hint.to_string());
        let renewed = r.renewed_ms.clone();
        let renew_path = path.clone();
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                let l = Lease {
                    run_id: hint.clone(),
                    host: std::env::var("HOSTNAME").unwrap_or_default(),
                    expires_at: Utc::now() + LEASE_TTL,
                };
                let opts = PutOptions::from(PutMode::Update(version.clone()));
                match store.put_opts(&renew_path, body(&l), opts).await {
                    Ok(res) => {
                        renewed.store(Utc::now().timestamp_millis(), Ordering::SeqCst);
                        version = UpdateVersion::from(res)
                    }
                    Err(object_store::Error::Precondition { .. }) => {
                        lost.store(true, Ordering::SeqCst);
                        tracing::error!("the output's lease was taken over by another run");
                        return;
                    }
                    // A transient failure: try again at the next tick, well before expiry.
                    Err(e) => tracing::warn!("renewing the output lease: {e}"),
                }
            }
        });
        Ok(OutputGuard::Remote {
            renew,
            store: r.store.clone(),
            path,
            lost: r.lease_lost.clone(),
        })
    }

    /// Refuses to write once the lease is lost or could have expired (renewals
    /// failing for most of its life): another run may hold the output by now.
    fn check_lease(&self) -> Result<(), OutputError> {
        let Inner::Remote(r) = &self.inner else { return Ok(()) };
        let renewed = r.renewed_ms.load(Ordering::SeqCst);
        let margin = (LEASE_TTL - LEASE_TTL / 4).as_millis() as i64;
        let stale = renewed > 0 && Utc::now().timestamp_millis() - renewed > margin;
        if r.lease_lost.load(Ordering::SeqCst) || stale {
            return Err(OutputError::LeaseLost { url: r.url.clone() });
        }
        Ok(())
    }

    /// Removes what a killed run left in staging.
    pub fn clear_staging(&self) {
        if let Inner::Local(l) = &self.inner {
            let _ = std::fs::remove_dir_all(l.staging_dir());
        }
    }

    /// Where a unit's Parquet file is staged (always a local file).
    pub fn staging_file(&self, name: &str) -> PathBuf {
        match &self.inner {
            Inner::Local(l) => l.staging_dir().join(name),
            Inner::Remote(r) => r.spool.0.join(name),
        }
    }

    /// The bytes of `rel`, if it exists; its version is remembered for a
    /// later conditional update.
    pub async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, OutputError> {
        match &self.inner {
            Inner::Local(l) => match std::fs::read(l.root.join(rel)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(SinkError::Io {
                    path: l.root.join(rel).display().to_string(),
                    source: e,
                }
                .into()),
            },
            Inner::Remote(r) => match r.store.get(&Self::obj(r, rel)).await {
                Ok(got) => {
                    let v = version_of(&got.meta);
                    let bytes = got.bytes().await.map_err(|e| store_error(&r.url, e))?;
                    r.versions.lock().await.insert(rel.to_string(), v);
                    Ok(Some(bytes.to_vec()))
                }
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(store_error(&r.url, e)),
            },
        }
    }

    /// Writes `rel` whole, atomically. `guarded`: a manifest or the state,
    /// updated only if nobody else changed it since this run read or wrote it.
    pub async fn write(&self, rel: &str, bytes: &[u8], guarded: bool) -> Result<(), OutputError> {
        self.check_lease()?;
        match &self.inner {
            Inner::Local(l) => Ok(super::atomic_write(&l.root.join(rel), bytes)?),
            Inner::Remote(r) => {
                let mut versions = r.versions.lock().await;
                let mode = match (guarded, versions.get(rel)) {
                    (false, _) => PutMode::Overwrite,
                    (true, Some(v)) => PutMode::Update(v.clone()),
                    (true, None) => PutMode::Create,
                };
                let path = Self::obj(r, rel);
                let mut attempted = r.attempted.lock().await;
                let mut mode = mode;
                // One retry after finding an earlier write of ours landed; a
                // few after a transport error, whose outcome is unknown: the
                // next try finds out (a precondition failure, then the check).
                let (mut recovered, mut transient) = (false, 0u32);
                loop {
                    if guarded {
                        attempted.insert(rel.to_string(), bytes.to_vec());
                    }
                    let opts = PutOptions::from(mode.clone());
                    match r.store.put_opts(&path, PutPayload::from(bytes.to_vec()), opts).await {
                        Ok(res) => {
                            if guarded {
                                versions.insert(rel.to_string(), UpdateVersion::from(res));
                            }
                            return Ok(());
                        }
                        Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. })
                            if guarded && !recovered =>
                        {
                            // An earlier write of ours may have landed with its answer
                            // lost: if the object holds what we last sent, it is ours.
                            let got = r.store.get(&path).await.map_err(|e| store_error(&r.url, e))?;
                            let v = version_of(&got.meta);
                            let now = got.bytes().await.map_err(|e| store_error(&r.url, e))?;
                            if bytes == now.as_ref() {
                                versions.insert(rel.to_string(), v);
                                return Ok(());
                            }
                            let ours = versions.get(rel).is_some() && attempted_before(&attempted, rel, &now);
                            if !ours {
                                break;
                            }
                            recovered = true;
                            mode = PutMode::Update(v);
                        }
                        Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                            break;
                        }
                        // A conditional put is not retried by object_store after a
                        // transport error; retried here, the next try tells.
                        Err(object_store::Error::Generic { .. }) if guarded && transient < 4 => {
                            transient += 1;
                            tokio::time::sleep(Duration::from_millis(100 << transient)).await;
                        }
                        Err(e) => return Err(store_error(&r.url, e)),
                    }
                }
                Err(OutputError::Conflict {
                    url: r.url.clone(),
                    what: rel.to_string(),
                })
            }
        }
    }

    /// The size of `rel`, if it exists.
    pub async fn size(&self, rel: &str) -> Result<Option<u64>, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(std::fs::metadata(l.root.join(rel)).ok().map(|m| m.len())),
            Inner::Remote(r) => match r.store.head(&Self::obj(r, rel)).await {
                Ok(m) => Ok(Some(m.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(store_error(&r.url, e)),
            },
        }
    }

    pub async fn exists(&self, rel: &str) -> Result<bool, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(l.root.join(rel).exists()),
            Inner::Remote(r) => match r.store.head(&Self::obj(r, rel)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(store_error(&r.url, e)),
            },
        }
    }

    /// A dataset's manifest (`None`: there is none yet).
    pub async fn manifest(
        &self,
        spec: &crate::source::datasets::DatasetSpec,
    ) -> Result<Option<super::manifest::Manifest>, OutputError> {
        let rel = Layout::manifest_rel(spec.name);
        match self.read(&rel).await? {
            None => Ok(None),
            Some(b) => Ok(Some(super::manifest::Manifest::from_bytes(
                Some(&b),
                spec.name,
                spec.version,
                &format!("{}/{rel}", self.url()),
            )?)),
        }
    }

    /// Names of the files directly under `rel_dir` (e.g. the run reports).
    pub async fn list(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        match &self.inner {
            Inner::Local(l) => Ok(std::fs::read_dir(l.root.join(rel_dir))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()),
            Inner::Remote(r) => {
                let prefix = Self::obj(r, rel_dir);
                let listed: Vec<_> = r
                    .store
                    .list_with_delimiter(Some(&prefix))
                    .await
                    .map(|l| l.objects)
                    .or_else(|e| match e {
                        object_store::Error::NotFound { .. } => Ok(Vec::new()),
                        e => Err(e),
                    })
                    .map_err(|e| store_error(&r.url, e))?;
                Ok(listed
                    .into_iter()
                    .filter_map(|m| m.location.filename().map(str::to_string))
                    .collect())
            }
        }
    }

    /// Copies `from` to `to`, which appears whole or not at all: on disk a
    /// hard link (a copy where links are refused) published by one rename; in
    /// a bucket a server-side copy.
    pub async fn copy(&self, from: &str, to: &str) -> Result<(), OutputError> {
        self.check_lease()?;
        match &self.inner {
            Inner::Local(l) => {
                let (src, dest) = (l.root.join(from), l.root.join(to));
                let dir = dest.parent().unwrap_or(Path::new("."));
                std::fs::create_dir_all(dir).map_err(super::io_err(dir))?;
                let tmp = dir.join(format!(".copy-{}", uuid::Uuid::new_v4().simple()));
                let made = std::fs::hard_link(&src, &tmp)
                    .or_else(|_| std::fs::copy(&src, &tmp).map(|_| ()))
                    .map_err(super::io_err(&src));
                let result = made.and_then(|()| super::publish(&tmp, &dest));
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                Ok(result?)
            }
            Inner::Remote(r) => r
                .store
                .copy(&Self::obj(r, from), &Self::obj(r, to))
                .await
                .map_err(|e| store_error(&r.url, e)),
        }
    }

    /// Deletes `rel`; one already gone is no error.
    pub async fn delete(&self, rel: &str) -> Result<(), OutputError> {
        self.check_lease()?;
        match &self.inner {
            Inner::Local(l) => match std::fs::remove_file(l.root.join(rel)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SinkError::Io {
                    path: l.root.join(rel).display().to_string(),
                    source: e,
                }
                .into()),
                _ => Ok(()),
            },
            Inner::Remote(r) => match r.store.delete(&Self::obj(r, rel)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(store_error(&r.url, e)),
            },
        }
    }

    /// Every file under `rel_dir` (at any depth), relative to `rel_dir`.
    pub async fn list_tree(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        match &self.inner {
            Inner::Local(l) => {
                let root = l.root.join(rel_dir);
                let mut out = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(d) = dirs.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else if let Ok(rel) = p.strip_prefix(&root) {
                            out.push(rel.to_string_lossy().to_string());
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Inner::Remote(r) => {
                let prefix = Self::obj(r, rel_dir);
                let mut listed = r.store.list(Some(&prefix));
                let mut out = Vec::new();
                while let Some(m) = listed.next().await {
                    let m = m.map_err(|e| store_error(&r.url, e))?;
                    if let Some(rel) = m.location.as_ref().strip_prefix(&format!("{}/", prefix.as_ref())) {
                        out.push(rel.to_string());
                    }
                }
                out.sort();
                Ok(out)
            }
        }
    }

    /// Removes the directory `rel` if it is empty (a bucket has none).
    pub fn remove_empty_dir(&self, rel: &str) {
        if let Inner::Local(l) = &self.inner {
            let _ = std::fs::remove_dir(l.root.join(rel));
        }
    }

    /// Makes a staged file the object `rel` in one step, then drops the staged copy.
    pub async fn publish(&self, staged: &Path, rel: &str) -> Result<(), OutputError> {
        self.check_lease()?;
        match &self.inner {
            Inner::Local(l) => Ok(super::publish(staged, &l.root.join(rel))?),
            Inner::Remote(r) => {
                let result = upload(r, staged, &Self::obj(r, rel)).await;
                let _ = std::fs::remove_file(staged);
                result
            }
        }
    }
}

/// Whether `now` is what this run last tried to write to `rel`.
/// The version a conditional update of an object just read must name.
fn version_of(meta: &object_store::ObjectMeta) -> UpdateVersion {
    UpdateVersion {
        e_tag: meta.e_tag.clone(),
        version: meta.version.clone(),
    }
}

fn attempted_before(attempted: &HashMap<String, Vec<u8>>, rel: &str, now: &[u8]) -> bool {
    attempted.get(rel).is_some_and(|a| a.as_slice() == now)
}

/// One PUT for a small file; a multipart upload for a large one, completed
/// only when every part is in and aborted on failure: never a partial object.
async fn upload(r: &Remote, staged: &Path, path: &ObjPath) -> Result<(), OutputError> {
    let io = |e: std::io::Error| {
        OutputError::Sink(SinkError::Io {
            path: staged.display().to_string(),
            source: e,
        })
    };
    let size = std::fs::metadata(staged).map_err(io)?.len();
    if size <= PART as u64 {
        let bytes = std::fs::read(staged).map_err(io)?;
        r.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|e| store_error(&r.url, e))?;
        return Ok(());
    }
    let upload = r.store.put_multipart(path).await.map_err(|e| store_error(&r.url, e))?;
    let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut file = tokio::fs::File::open(staged).await.map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    let body: Result<(), OutputError> = async {
        loop {
            let n = file.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            // At most two parts in flight: memory stays bounded.
            w.wait_for_capacity(2).await.map_err(|e| store_error(&r.url, e))?;
            w.write(&buf[..n]);
        }
        Ok(())
    }
    .await;
    match body {
        Ok(()) => w.finish().await.map(|_| ()).map_err(|e| store_error(&r.url, e)),
        Err(e) => {
            let _ = w.abort().await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_strictly() {
        assert_eq!("out".parse::<Location>().unwrap(), Location::Local("out".into()));
        assert_eq!(
            "obs://my-bucket/bills/hcbill/".parse::<Location>().unwrap(),
            Location::Bucket {
                scheme: Scheme::Obs,
                bucket: "my-bucket".into(),
                prefix: "bills/hcbill".into()
            }
        );
        assert_eq!("s3://b.c-1".parse::<Location>().unwrap().to_string(), "s3://b.c-1/");
        for bad in ["obs://", "s3://UPPER/x", "s3://b/../x", "gs://b/x", "obs://a/x"] {
            assert!(bad.parse::<Location>().is_err(), "{bad}");
        }
    }
}
