//! The local directory where Parquet files wait for their upload to a bucket.
//! One per output (named after its URL), not one per run: a crashed run's
//! files are removed by the next run of the same output, once it holds the
//! lease, instead of piling up in the temp directory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

pub struct Spool {
    dir: PathBuf,
    /// Set once this run holds the output: only then is the spool cleared,
    /// and removed when the run ends (a run refused the lease leaves the
    /// holder's files alone).
    owned: AtomicBool,
}

/// Where spools live: the user's cache directory (`$XDG_CACHE_HOME`,
/// `~/.cache`), not a shared temp directory where another user could take the
/// name first; the temp directory when there is no home.
pub fn base_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("hcbill"))
        .unwrap_or_else(std::env::temp_dir)
}

impl Spool {
    /// The spool of `url`, under `base` ([`base_dir`]).
    pub fn for_output(base: &Path, url: &str) -> Self {
        let digest = hex::encode(&Sha256::digest(url.as_bytes())[..8]);
        Spool {
            dir: base.join(format!("hcbill-spool-{digest}")),
            owned: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Called once the output is this run's: what a dead run left is removed.
    pub fn claim(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        super::create_private_dir(&self.dir).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.owned.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if self.owned.load(Ordering::SeqCst) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_is_reclaimed_by_the_next_run_and_left_alone_by_a_refused_one() {
        let tmp = tempfile::tempdir().unwrap();
        let a = Spool::for_output(tmp.path(), "s3://b/p");
        assert_eq!(a.dir(), Spool::for_output(tmp.path(), "s3://b/p").dir());
        assert_ne!(a.dir(), Spool::for_output(tmp.path(), "s3://b/q").dir());
        a.claim().unwrap();
        std::fs::write(a.dir().join("left.parquet"), b"x").unwrap();
        std::mem::forget(a); // a crash: nothing cleaned up
        let refused = Spool::for_output(tmp.path(), "s3://b/p");
        drop(refused);
        let next = Spool::for_output(tmp.path(), "s3://b/p");
        assert!(
            next.dir().join("left.parquet").exists(),
            "a run without the lease touches nothing"
        );
        next.claim().unwrap();
        assert!(!next.dir().join("left.parquet").exists(), "the next holder clears it");
        let dir = next.dir().to_path_buf();
        drop(next);
        assert!(!dir.exists());
    }
}
