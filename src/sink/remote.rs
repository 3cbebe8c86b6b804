//! A bucket of Huawei OBS (its S3 API) or any S3-compatible store.
//!
//! * Every call is bounded (request timeout and retries within
//!   [`lease::call_budget`]), so the lease's validity can be trusted.
//! * Manifests and the state are *guarded*: written only if the object is the
//!   version this run last read or wrote. When an answer is lost after the
//!   write landed, the object is read back and recognised by the digest of
//!   what this run sent.
//! * Data files are *fenced*: a PUT names the object it replaces (`If-Match`
//!   on the ETag the manifest records, `If-None-Match: *` for a new one), and
//!   every try first checks that the lease is still valid. A run that lost
//!   the lease cannot pass that check, and one paused past it finds, on
//!   waking, a newer object its condition does not match. A multipart upload
//!   (files over 8 MiB) carries no condition through object_store: its
//!   completion is sent only while the lease is valid, and that is all. The
//!   ETag written is recorded in the manifest, so a later run sees any object
//!   it does not name and writes it again.
//! * Before the first write, [`probe`] checks that the store honours both
//!   conditions: a store that ignores them protects nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::SinkError;
use super::error::OutputError;
use super::lease::LeaseClock;
use super::location::{LockMode, StoreConfig};
use super::spool::Spool;
use super::store::{call_budget, store_error, version_of};
use crate::stop::Stop;

/// Files up to this size go in one PUT; larger ones in parts of this size
/// (`HCBILL_UPLOAD_PART_BYTES`, for tests: stores refuse parts under 5 MiB
/// but the last at completion).
pub const PART: usize = 8 << 20;

fn part_size() -> usize {
    std::env::var("HCBILL_UPLOAD_PART_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n >= 64 << 10)
        .unwrap_or(PART)
}

/// What this run knows of a guarded object.
#[derive(Default)]
struct Guarded {
    /// The version last read or written by this run.
    version: Option<UpdateVersion>,
    /// Digests of payloads sent since that version whose outcome is unknown.
    sent: Vec<[u8; 32]>,
}

pub struct Remote {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjPath,
    pub url: String,
    pub spool: Spool,
    pub lock: LockMode,
    pub lease_ttl: Duration,
    pub clock: Arc<LeaseClock>,
    pub stop: Stop,
    part: usize,
    /// One lock per guarded object: writes of different objects never wait
    /// on one another's retries.
    guarded: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Guarded>>>>,
}

/// Metadata of an object: enough to tell whether it is the one a manifest names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub e_tag: Option<String>,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Remote {
    /// `spool_key` names the output on this host (its URL and endpoint).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        url: &str,
        spool_key: &str,
        cfg: &StoreConfig,
        stop: Stop,
    ) -> Self {
        Remote {
            store,
            prefix: ObjPath::from(prefix),
            url: url.to_string(),
            spool: Spool::for_output(&super::spool::base_dir(), spool_key),
            lock: cfg.lock,
            lease_ttl: cfg.lease_ttl,
            clock: Arc::new(LeaseClock::new(call_budget(cfg.lease_ttl))),
            stop,
            part: part_size(),
            guarded: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn obj(&self, rel: &str) -> ObjPath {
        if self.prefix.as_ref().is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix.as_ref()))
        }
    }

    fn err(&self, e: object_store::Error) -> OutputError {
        store_error(&self.url, e)
    }

    /// Refuses a write once the lease is lost or about to expire; that also
    /// stops the run's fetching (the next run resumes).
    pub fn writable(&self) -> Result<(), OutputError> {
        if self.lock == LockMode::External || self.clock.valid() {
            Ok(())
        } else {
            if self.clock.held() {
                self.stop
                    .trip(format!("the lease of {} expired before it could be renewed", self.url));
            }
            Err(OutputError::LeaseLost { url: self.url.clone() })
        }
    }

    /// Refuses a data file's upload once the run is stopping, too.
    fn publishable(&self) -> Result<(), OutputError> {
        self.writable()?;
        match self.stop.reason() {
            Some(why) => Err(OutputError::Stopped(why)),
            None => Ok(()),
        }
    }

    fn slot(&self, rel: &str) -> Arc<tokio::sync::Mutex<Guarded>> {
        self.guarded
            .lock()
            .expect("guarded lock")
            .entry(rel.to_string())
            .or_default()
            .clone()
    }

    pub async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, OutputError> {
        match self.store.get(&self.obj(rel)).await {
            Ok(got) => {
                let v = version_of(&got.meta);
                let bytes = got.bytes().await.map_err(|e| self.err(e))?;
                let slot = self.slot(rel);
                let mut g = slot.lock().await;
                g.version = Some(v);
                g.sent.clear();
                Ok(Some(bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// A plain overwrite (run reports, sidecars: one writer per name).
    pub async fn write_plain(&self, rel: &str, bytes: &[u8]) -> Result<(), OutputError> {
        self.writable()?;
        self.store
            .put(&self.obj(rel), PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Writes `rel` only if it is still the version this run last saw.
    pub async fn write_guarded(&self, rel: &str, bytes: &[u8]) -> Result<(), OutputError> {
        if self.lock == LockMode::External {
            return self.write_plain(rel, bytes).await;
        }
        let path = self.obj(rel);
        let slot = self.slot(rel);
        let mut g = slot.lock().await;
        let mine = digest(bytes);
        g.sent.push(mine);
        // A precondition failure reads the object back: this write landed
        // (its answer lost), or an earlier one of ours did (adopted, a few
        // times at most), or another writer's is there (a conflict). A few
        // retries after a transport error, whose outcome the next try tells.
        let (mut adopted, mut transient) = (0u32, 0u32);
        loop {
            self.writable()?;
            let mode = match &g.version {
                Some(v) => PutMode::Update(v.clone()),
                None => PutMode::Create,
            };
            let opts = PutOptions::from(mode);
            match self.store.put_opts(&path, PutPayload::from(bytes.to_vec()), opts).await {
                Ok(res) => {
                    g.version = Some(UpdateVersion::from(res));
                    g.sent.clear();
                    return Ok(());
                }
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    let got = self.store.get(&path).await.map_err(|e| self.err(e))?;
                    let v = version_of(&got.meta);
                    let now = digest(&got.bytes().await.map_err(|e| self.err(e))?);
                    if now == mine {
                        g.version = Some(v);
                        g.sent.clear();
                        return Ok(());
                    }
                    if !g.sent.contains(&now) || adopted >= 3 {
                        break;
                    }
                    adopted += 1;
                    g.version = Some(v);
                }
                Err(object_store::Error::Generic { .. }) if transient < 4 => {
                    transient += 1;
                    tokio::time::sleep(Duration::from_millis(100 << transient)).await;
                }
                Err(e) => return Err(self.err(e)),
            }
        }
        Err(OutputError::Conflict {
            url: self.url.clone(),
            what: rel.to_string(),
        })
    }

    pub async fn head(&self, rel: &str) -> Result<Option<Head>, OutputError> {
        match self.store.head(&self.obj(rel)).await {
            Ok(m) => Ok(Some(Head {
                size: m.size,
                e_tag: m.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Uploads a staged file as `rel`, replacing the object whose ETag is
    /// `replaces` (`None`: there should be none). Returns the new ETag.
    pub async fn upload(
        &self,
        staged: &Path,
        rel: &str,
        replaces: Option<&str>,
    ) -> Result<Option<String>, OutputError> {
        let io = |e: std::io::Error| {
            OutputError::Sink(SinkError::Io {
                path: staged.display().to_string(),
                source: e,
            })
        };
        let path = self.obj(rel);
        let size = std::fs::metadata(staged).map_err(io)?.len();
        if size > self.part as u64 {
            return self.upload_parts(staged, &path).await;
        }
        let bytes = std::fs::read(staged).map_err(io)?;
        let mut expected = replaces.map(str::to_string);
        let (mut looked, mut transient) = (0u32, 0u32);
        loop {
            self.publishable()?;
            let mode = match (&expected, self.lock) {
                (_, LockMode::External) => PutMode::Overwrite,
                (Some(e), _) => PutMode::Update(UpdateVersion {
                    e_tag: Some(e.clone()),
                    version: None,
                }),
                (None, _) => PutMode::Create,
            };
            let put = self
                .store
                .put_opts(&path, PutPayload::from(bytes.clone()), PutOptions::from(mode));
            match self.stop.guard(put).await.map_err(OutputError::Stopped)? {
                Ok(res) => return Ok(res.e_tag),
                // Not the object the manifest names: a crashed run's, or a
                // late write of a run that lost the lease. This run holds the
                // lease (checked again before the next try): it replaces it.
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. })
                    if looked < 3 =>
                {
                    looked += 1;
                    expected = self.head(rel).await?.and_then(|h| h.e_tag);
                }
                Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                    return Err(OutputError::Conflict {
                        url: self.url.clone(),
                        what: rel.to_string(),
                    });
                }
                Err(object_store::Error::Generic { .. }) if transient < 4 => {
                    transient += 1;
                    tokio::time::sleep(Duration::from_millis(100 << transient)).await;
                }
                Err(e) => return Err(self.err(e)),
            }
        }
    }

    /// A multipart upload, completed only when every part is in and the lease
    /// still valid; aborted on any failure and when the run stops, so no
    /// upload is left open.
    async fn upload_parts(&self, staged: &Path, path: &ObjPath) -> Result<Option<String>, OutputError> {
        let io = |e: std::io::Error| {
            OutputError::Sink(SinkError::Io {
                path: staged.display().to_string(),
                source: e,
            })
        };
        self.publishable()?;
        let upload = self.store.put_multipart(path).await.map_err(|e| self.err(e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.part);
        let body: Result<(), OutputError> = async {
            let mut file = tokio::fs::File::open(staged).await.map_err(io)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                self.publishable()?;
                // At most two parts in flight: memory stays bounded.
                let room = w.wait_for_capacity(2);
                self.stop
                    .guard(room)
                    .await
                    .map_err(OutputError::Stopped)?
                    .map_err(|e| self.err(e))?;
                w.write(&buf[..n]);
            }
            // Every part in, before the one step that makes the object visible.
            let parts = w.wait_for_capacity(0);
            self.stop
                .guard(parts)
                .await
                .map_err(OutputError::Stopped)?
                .map_err(|e| self.err(e))?;
            self.publishable()
        }
        .await;
        if let Err(e) = body {
            let _ = w.abort().await;
            return Err(e);
        }
        // Not interrupted: a completion request dropped half way would leave
        // the upload open (it ends within the call budget anyway).
        w.finish().await.map(|res| res.e_tag).map_err(|e| self.err(e))
    }

    pub async fn list_names(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.obj(rel_dir)))
            .await
            .map(|l| l.objects)
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(e),
            })
            .map_err(|e| self.err(e))?;
        Ok(listed
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect())
    }

    pub async fn list_tree(&self, rel_dir: &str) -> Result<Vec<String>, OutputError> {
        let prefix = self.obj(rel_dir);
        let mut listed = self.store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(m) = listed.next().await {
            let m = m.map_err(|e| self.err(e))?;
            if let Some(rel) = m.location.as_ref().strip_prefix(&format!("{}/", prefix.as_ref())) {
                out.push(rel.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    pub async fn copy(&self, from: &str, to: &str) -> Result<(), OutputError> {
        self.writable()?;
        self.store
            .copy(&self.obj(from), &self.obj(to))
            .await
            .map_err(|e| self.err(e))
    }

    pub async fn delete(&self, rel: &str) -> Result<(), OutputError> {
        self.writable()?;
        match self.store.delete(&self.obj(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Downloads `rel` to `dest` in chunks (memory stays flat).
    pub async fn download(&self, rel: &str, dest: &Path) -> Result<(), OutputError> {
        use tokio::io::AsyncWriteExt;
        let got = self.store.get(&self.obj(rel)).await.map_err(|e| self.err(e))?;
        let mut stream = got.into_stream();
        let mut f = tokio::fs::File::create(dest)
            .await
            .map_err(|e| OutputError::Sink(super::io_err(dest)(e)))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err(e))?;
            f.write_all(&chunk)
                .await
                .map_err(|e| OutputError::Sink(super::io_err(dest)(e)))?;
        }
        f.flush().await.map_err(|e| OutputError::Sink(super::io_err(dest)(e)))
    }
}

/// What a store does with a conditional write.
#[derive(Debug, PartialEq, Eq)]
pub enum Honours {
    Both,
    /// The condition was ignored: the write succeeded where it must fail.
    Ignores(&'static str),
    /// The store refused the header itself (400, 501 NotImplemented…).
    Refuses(&'static str, String),
}

/// Checks, on a probe object of its own, that the store honours
/// `If-None-Match: *` and `If-Match`: the lease and every guarded write rest
/// on them. The probe object is removed.
pub async fn probe(r: &Remote) -> Result<Honours, OutputError> {
    let rel = format!(".hcbill/probe-{}", uuid::Uuid::new_v4().simple());
    let path = r.obj(&rel);
    let body = || PutPayload::from_static(b"hcbill probe");
    // Only the store saying it does not do the condition counts as a
    // refusal: a credentials or server problem is reported as what it is.
    let refused = |what: &'static str, e: &object_store::Error| {
        let text = e.to_string();
        let denied = matches!(
            e,
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
        );
        let refusal =
            text.contains("NotImplemented") || text.contains("status code: 501") || text.contains("status code: 400");
        (!denied && refusal)
            .then(|| Honours::Refuses(what, text.lines().next().unwrap_or("").chars().take(200).collect()))
    };
    let verdict = async {
        let create = PutOptions::from(PutMode::Create);
        let first = match r.store.put_opts(&path, body(), create.clone()).await {
            Ok(res) => res,
            Err(e) => return refused("If-None-Match", &e).map_or_else(|| Err(r.err(e)), Ok),
        };
        match r.store.put_opts(&path, body(), create).await {
            Ok(_) => return Ok(Honours::Ignores("If-None-Match")),
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
            Err(e) => return refused("If-None-Match", &e).map_or_else(|| Err(r.err(e)), Ok),
        }
        let wrong = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some("\"00000000000000000000000000000000\"".into()),
            version: None,
        }));
        match r.store.put_opts(&path, body(), wrong).await {
            Ok(_) => return Ok(Honours::Ignores("If-Match")),
            Err(object_store::Error::Precondition { .. }) => {}
            Err(e) => return refused("If-Match", &e).map_or_else(|| Err(r.err(e)), Ok),
        }
        let right = PutOptions::from(PutMode::Update(UpdateVersion::from(first)));
        match r.store.put_opts(&path, body(), right).await {
            Ok(_) => Ok(Honours::Both),
            Err(e) => refused("If-Match", &e).map_or_else(|| Err(r.err(e)), Ok),
        }
    }
    .await;
    let _ = r.store.delete(&path).await;
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(store: Arc<dyn ObjectStore>) -> Remote {
        Remote::new(
            store,
            "p",
            "mem://p",
            "mem://p",
            &StoreConfig::default(),
            Stop::default(),
        )
    }

    /// A lease valid for a while, as if just renewed.
    fn hold(r: &Remote) {
        r.clock.hold_for_tests();
    }

    #[tokio::test]
    async fn an_in_memory_store_honours_both_conditions() {
        let r = remote(Arc::new(object_store::memory::InMemory::new()));
        assert_eq!(probe(&r).await.unwrap(), Honours::Both);
        assert!(r.list_tree(".hcbill").await.unwrap().is_empty(), "the probe is removed");
    }

    #[tokio::test]
    async fn a_guarded_write_whose_earlier_try_landed_goes_on() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let r = remote(store.clone());
        hold(&r);
        r.write_guarded("d/m.json", b"v1").await.unwrap();
        // A later write landed but its answer was lost: this run never saw
        // its version. It is recorded as sent, as the failed call left it.
        let path = r.obj("d/m.json");
        store.put(&path, PutPayload::from_static(b"v2")).await.unwrap();
        r.slot("d/m.json").lock().await.sent.push(digest(b"v2"));
        r.write_guarded("d/m.json", b"v3").await.unwrap();
        assert_eq!(r.read("d/m.json").await.unwrap().unwrap(), b"v3");
        // Another writer's version is a conflict.
        store.put(&path, PutPayload::from_static(b"theirs")).await.unwrap();
        let err = r.write_guarded("d/m.json", b"v4").await.unwrap_err();
        assert!(matches!(err, OutputError::Conflict { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_data_file_replaces_only_the_object_it_names_and_never_after_the_lease() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let r = remote(store.clone());
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("f");
        std::fs::write(&staged, b"one").unwrap();
        let err = r.upload(&staged, "d/f.parquet", None).await.unwrap_err();
        assert!(
            matches!(err, OutputError::LeaseLost { .. }),
            "no lease, no write: {err}"
        );
        hold(&r);
        let e1 = r.upload(&staged, "d/f.parquet", None).await.unwrap();
        assert!(e1.is_some());
        std::fs::write(&staged, b"two").unwrap();
        let e2 = r.upload(&staged, "d/f.parquet", e1.as_deref()).await.unwrap();
        assert_ne!(e1, e2);
        assert_eq!(r.head("d/f.parquet").await.unwrap().unwrap().e_tag, e2);
        r.stop.trip("SIGTERM received");
        let err = r.upload(&staged, "d/f.parquet", e2.as_deref()).await.unwrap_err();
        assert!(matches!(err, OutputError::Stopped(_)), "{err}");
    }
}
