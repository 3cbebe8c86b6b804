//! One writer at a time: an `flock` on a local directory; on a bucket, a lease
//! object.
//!
//! The lease is created only if absent (`If-None-Match: *`), renewed, taken
//! over and released only by a compare-and-swap on the version this run last
//! wrote (`If-Match`), so a run never extends, releases or overwrites another
//! run's lease. Every write names a fresh nonce: when an answer is lost after
//! the write landed, reading the lease back tells our own write from another
//! run's.
//!
//! Validity is counted from the expiry the run *wrote*, minus the longest one
//! store call may take ([`LeaseClock`]): a write started while the lease is
//! valid has ended before another run may take it over. A lease found taken
//! over, or not renewed in time, stops the run at once (see `crate::stop`).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::error::OutputError;
use super::store::{call_budget, store_error, version_of};
use crate::stop::Stop;

/// An exclusive advisory lock on the output directory, released on drop or
/// when the process dies (so `kill -9` leaves no stale lock).
pub struct OutputLock {
    _file: File,
}

impl OutputLock {
    pub fn acquire(meta_dir: &Path) -> Result<Self, OutputError> {
        super::create_private_dir(meta_dir)?;
        let path = meta_dir.join("lock");
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        // A symlink planted at the lock's name is refused, not followed.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let io = |source| super::SinkError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = options.open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(OutputError::Locked(
                meta_dir.parent().unwrap_or(meta_dir).display().to_string(),
                path.display().to_string(),
            )),
            Err(TryLockError::Error(source)) => Err(io(source).into()),
        }
    }
}

/// Whether this run may still write: shared by the renewal task and every write.
#[derive(Debug)]
pub struct LeaseClock {
    /// Unix ms until which a write may start (0: no lease held).
    valid_until_ms: AtomicI64,
    lost: AtomicBool,
    budget: Duration,
}

impl LeaseClock {
    pub fn new(budget: Duration) -> Self {
        LeaseClock {
            valid_until_ms: AtomicI64::new(0),
            lost: AtomicBool::new(false),
            budget,
        }
    }

    /// A write may start now.
    pub fn valid(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && Utc::now().timestamp_millis() < self.valid_until_ms.load(Ordering::SeqCst)
    }

    /// Whether a lease was ever held (a write before taking one is refused
    /// without stopping anything).
    pub fn held(&self) -> bool {
        self.valid_until_ms.load(Ordering::SeqCst) != 0
    }

    /// The lease now written runs to `expires`.
    fn wrote(&self, expires: DateTime<Utc>) {
        let until = expires.timestamp_millis() - self.budget.as_millis() as i64;
        self.valid_until_ms.fetch_max(until, Ordering::SeqCst);
    }

    #[cfg(test)]
    pub fn hold_for_tests(&self) {
        self.wrote(Utc::now() + chrono::Duration::hours(1));
    }

    fn lose(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LeaseBody {
    run_id: String,
    host: String,
    expires_at: DateTime<Utc>,
    /// Unique per write: tells this run's landed write from another's.
    #[serde(default)]
    nonce: String,
    /// Set when the holder ended: anyone may take it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    released: bool,
}

impl LeaseBody {
    fn live(&self) -> bool {
        !self.released && self.expires_at > Utc::now()
    }
}

/// The lease object as this run last wrote it, and the nonces of writes whose
/// outcome is not known yet.
struct Mine {
    version: Option<UpdateVersion>,
    pending: Vec<String>,
}

/// What a conditional write of the lease found.
enum Cas {
    Ours,
    /// Another run's lease (or none, for an update).
    Theirs(Option<LeaseBody>, Option<UpdateVersion>),
}

/// Which lease object, for which run.
struct Target {
    store: Arc<dyn ObjectStore>,
    path: ObjPath,
    url: String,
    run_id: String,
    ttl: Duration,
}

pub struct BucketLease {
    target: Arc<Target>,
    mine: Arc<tokio::sync::Mutex<Mine>>,
    clock: Arc<LeaseClock>,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl BucketLease {
    /// Takes the lease of `path`: created if absent, taken over if expired or
    /// released, refused while another run's is live.
    pub async fn acquire(
        store: Arc<dyn ObjectStore>,
        path: ObjPath,
        url: &str,
        run_id: &str,
        ttl: Duration,
        clock: Arc<LeaseClock>,
        stop: Stop,
    ) -> Result<Self, OutputError> {
        let mut lease = BucketLease {
            target: Arc::new(Target {
                store,
                path,
                url: url.to_string(),
                run_id: run_id.to_string(),
                ttl,
            }),
            mine: Arc::new(tokio::sync::Mutex::new(Mine {
                version: None,
                pending: Vec::new(),
            })),
            clock,
            renew: None,
        };
        {
            let mut mine = lease.mine.lock().await;
            match lease.cas(&mut mine, PutMode::Create, false).await? {
                Cas::Ours => {}
                Cas::Theirs(held, seen) => {
                    if let Some(h) = held.as_ref().filter(|h| h.live()) {
                        return Err(OutputError::Leased {
                            url: lease.target.url.clone(),
                            run: h.run_id.clone(),
                            until: h.expires_at,
                        });
                    }
                    let Some(seen) = seen else {
                        return Err(lease.taken());
                    };
                    match held {
                        Some(h) if h.released => {
                            tracing::debug!("taking the lease of {} released by run {}", lease.target.url, h.run_id)
                        }
                        _ => tracing::warn!("taking over the expired lease of {}", lease.target.url),
                    }
                    if let Cas::Theirs(..) = lease.cas(&mut mine, PutMode::Update(seen), false).await? {
                        return Err(lease.taken());
                    }
                }
            }
        }
        lease.renew = Some(tokio::spawn(renewals(
            lease.target.clone(),
            lease.mine.clone(),
            lease.clock.clone(),
            stop,
        )));
        Ok(lease)
    }

    fn taken(&self) -> OutputError {
        OutputError::LeaseRace {
            url: self.target.url.clone(),
        }
    }

    async fn cas(&self, mine: &mut Mine, mode: PutMode, released: bool) -> Result<Cas, OutputError> {
        write_lease(&self.target, mine, mode, released, &self.clock).await
    }

    /// Ends the lease by a compare-and-swap on this run's own version: a lease
    /// another run has taken stays theirs. A release that fails leaves the
    /// lease to expire.
    pub async fn release(mut self) {
        if let Some(r) = self.renew.take() {
            r.abort();
        }
        let mut mine = self.mine.lock().await;
        let Some(v) = mine.version.clone() else { return };
        let released = self.cas(&mut mine, PutMode::Update(v), true).await;
        // Whatever became of the release, this run writes no more.
        self.clock.lose();
        match released {
            Ok(Cas::Ours) => {}
            Ok(Cas::Theirs(..)) => tracing::warn!("the lease of {} is another run's now: left alone", self.target.url),
            Err(e) => tracing::warn!("releasing the lease: {e}; it expires by itself"),
        }
    }
}

impl Drop for BucketLease {
    fn drop(&mut self) {
        if let Some(r) = self.renew.take() {
            r.abort();
        }
    }
}

/// Renews every sixth of the lease's life; stops the run when the lease is
/// taken over or could not be renewed before its validity ran out.
async fn renewals(target: Arc<Target>, mine: Arc<tokio::sync::Mutex<Mine>>, clock: Arc<LeaseClock>, stop: Stop) {
    let (url, ttl) = (&target.url, target.ttl);
    loop {
        tokio::time::sleep(ttl / 6).await;
        let mut m = mine.lock().await;
        let Some(v) = m.version.clone() else { return };
        let attempt = write_lease(&target, &mut m, PutMode::Update(v), false, &clock);
        let outcome = tokio::time::timeout(call_budget(ttl), attempt).await;
        match outcome {
            Ok(Ok(Cas::Ours)) => {}
            Ok(Ok(Cas::Theirs(held, _))) => {
                clock.lose();
                let by = held.map_or("nobody (it was deleted)".to_string(), |h| format!("run {}", h.run_id));
                tracing::error!("the lease of {url} was taken over by {by}");
                stop.trip(format!("the lease of {url} was taken over by {by}"));
                return;
            }
            Ok(Err(e)) => tracing::warn!("renewing the lease: {e}"),
            Err(_) => tracing::warn!("renewing the lease: no answer within {:?}", call_budget(ttl)),
        }
        if !clock.valid() {
            clock.lose();
            stop.trip(format!("the lease of {url} could not be renewed in time"));
            return;
        }
    }
}

/// One conditional write of the lease, retried after transport errors (whose
/// outcome is unknown); a precondition failure reads the lease back, and a
/// nonce of ours there means an earlier try landed.
async fn write_lease(
    target: &Target,
    mine: &mut Mine,
    mode: PutMode,
    released: bool,
    clock: &LeaseClock,
) -> Result<Cas, OutputError> {
    let Target {
        store,
        path,
        url,
        run_id,
        ttl,
    } = target;
    let mut mode = mode;
    let (mut transient, mut adopted) = (0u32, 0u32);
    loop {
        let expires_at = if released {
            Utc::now()
        } else {
            Utc::now() + chrono::Duration::from_std(*ttl).unwrap_or_default()
        };
        let body = LeaseBody {
            run_id: run_id.to_string(),
            host: std::env::var("HOSTNAME").unwrap_or_default(),
            expires_at,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            released,
        };
        mine.pending.push(body.nonce.clone());
        let bytes = serde_json::to_vec(&body).expect("a lease serialises");
        match store
            .put_opts(path, PutPayload::from(bytes), PutOptions::from(mode.clone()))
            .await
        {
            Ok(res) => {
                mine.version = Some(UpdateVersion::from(res));
                mine.pending.clear();
                if !released {
                    clock.wrote(expires_at);
                }
                return Ok(Cas::Ours);
            }
            Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
                let (held, seen) = match store.get(path).await {
                    Ok(got) => {
                        let v = version_of(&got.meta);
                        let bytes = got.bytes().await.map_err(|e| store_error(url, e))?;
                        let held = serde_json::from_slice::<LeaseBody>(&bytes).map_err(|_| OutputError::Store {
                            url: url.to_string(),
                            reason: ".hcbill/lease is not a lease hcbill wrote; remove it if no run is writing".into(),
                        })?;
                        (Some(held), Some(v))
                    }
                    Err(object_store::Error::NotFound { .. }) => (None, None),
                    Err(e) => return Err(store_error(url, e)),
                };
                let Some(h) = held.as_ref() else {
                    return Ok(Cas::Theirs(held, seen));
                };
                if h.nonce == body.nonce {
                    // This very write landed, its answer lost.
                    mine.version = seen;
                    mine.pending.clear();
                    if !released {
                        clock.wrote(expires_at);
                    }
                    return Ok(Cas::Ours);
                }
                // An earlier write of ours landed with its answer lost (or the
                // store refused a version that is ours): this write is still
                // to be made, over it.
                let ours = mine.pending.contains(&h.nonce) || (seen.is_some() && seen == mine.version);
                if ours && adopted < 3 {
                    adopted += 1;
                    if !h.released {
                        clock.wrote(h.expires_at);
                    }
                    mine.version = seen.clone();
                    mode = PutMode::Update(seen.expect("read back"));
                    continue;
                }
                return Ok(Cas::Theirs(held, seen));
            }
            Err(object_store::Error::Generic { .. }) if transient < 4 => {
                transient += 1;
                tokio::time::sleep(Duration::from_millis(100 << transient)).await;
            }
            Err(e) => return Err(store_error(url, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_ends_a_call_budget_before_the_written_expiry() {
        let c = LeaseClock::new(Duration::from_secs(60));
        assert!(!c.valid(), "nothing held yet");
        c.wrote(Utc::now() + chrono::Duration::seconds(61));
        assert!(c.valid());
        let c = LeaseClock::new(Duration::from_secs(60));
        c.wrote(Utc::now() + chrono::Duration::seconds(59));
        assert!(!c.valid(), "less than one call's time left: no write may start");
        let c = LeaseClock::new(Duration::from_secs(1));
        c.wrote(Utc::now() + chrono::Duration::seconds(100));
        c.lose();
        assert!(!c.valid());
    }

    #[tokio::test]
    async fn a_lease_is_exclusive_renewed_by_cas_and_released_only_by_its_holder() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = ObjPath::from("p/.hcbill/lease");
        let ttl = Duration::from_secs(30);
        let take = |run: &'static str| {
            let (store, path) = (store.clone(), path.clone());
            async move {
                let clock = Arc::new(LeaseClock::new(call_budget(ttl)));
                BucketLease::acquire(store, path, "mem://p", run, ttl, clock, Stop::default()).await
            }
        };
        let a = take("a").await.unwrap();
        assert!(a.clock.valid());
        let refused = take("b").await.err().unwrap().to_string();
        assert!(refused.contains("run a"), "{refused}");
        // b takes over only once a's lease is released.
        a.release().await;
        let b = take("b").await.unwrap();
        // A release with a stale version does not touch b's lease.
        let stale = BucketLease {
            target: Arc::new(Target {
                store: store.clone(),
                path: path.clone(),
                url: "mem://p".into(),
                run_id: "a".into(),
                ttl,
            }),
            mine: Arc::new(tokio::sync::Mutex::new(Mine {
                version: Some(UpdateVersion {
                    e_tag: Some("0".into()),
                    version: None,
                }),
                pending: Vec::new(),
            })),
            clock: Arc::new(LeaseClock::new(call_budget(ttl))),
            renew: None,
        };
        stale.release().await;
        let held: LeaseBody = serde_json::from_slice(&store.get(&path).await.unwrap().bytes().await.unwrap()).unwrap();
        assert_eq!(held.run_id, "b", "a stale release leaves the holder's lease alone");

        // b's last renewal landed with its answer lost (its nonce is pending,
        // its version unknown): the release still lands, over it.
        let landed = LeaseBody {
            run_id: "b".into(),
            host: String::new(),
            expires_at: Utc::now() + chrono::Duration::seconds(30),
            nonce: "lost-answer".into(),
            released: false,
        };
        store
            .put(&path, PutPayload::from(serde_json::to_vec(&landed).unwrap()))
            .await
            .unwrap();
        b.mine.lock().await.pending.push("lost-answer".into());
        b.release().await;
        let held: LeaseBody = serde_json::from_slice(&store.get(&path).await.unwrap().bytes().await.unwrap()).unwrap();
        assert!(held.released && !held.live(), "{held:?}");
        take("c").await.unwrap();
    }
}
