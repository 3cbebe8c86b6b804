//! A local directory as an output: files published by one rename, the
//! bookkeeping under `.hcbill/`, one writer at a time by an `flock`
//! (`lease::OutputLock`). No stale writer can outlive the lock (the kernel
//! releases it with the process), so nothing here is fenced.

use std::path::{Path, PathBuf};

use super::error::OutputError;
use super::manifest::FileEntry;
use super::remote::Head;
use super::{Layout, SinkError};

pub struct Local {
    pub layout: Layout,
}

impl Local {
    fn path(&self, rel: &str) -> PathBuf {
        self.layout.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, OutputError> {
        match std::fs::read(self.path(rel)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(super::io_err(&self.path(rel))(e).into()),
        }
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), OutputError> {
        Ok(super::atomic_write(&self.path(rel), bytes)?)
    }

    pub fn head(&self, rel: &str) -> Option<Head> {
        std::fs::metadata(self.path(rel)).ok().map(|m| Head {
            size: m.len(),
            e_tag: None,
        })
    }

    /// Its size; with `deep` its sha256 too (hashed off the async workers).
    pub async fn holds(&self, rel: &str, entry: &FileEntry, deep: bool) -> bool {
        let path = self.path(rel);
        let size_ok = std::fs::metadata(&path).is_ok_and(|m| m.len() == entry.bytes);
        if !size_ok || !deep {
            return size_ok;
        }
        let want = entry.sha256.clone();
        let hashed = tokio::task::spawn_blocking(move || super::parquet::file_sha256(&path));
        hashed.await.is_ok_and(|h| h.is_ok_and(|(_, s)| s == want))
    }

    pub fn list(&self, rel_dir: &str) -> Vec<String> {
        std::fs::read_dir(self.path(rel_dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect()
    }

    /// A hard link (a copy where links are refused) published by one rename.
    pub fn copy(&self, from: &str, to: &str) -> Result<(), OutputError> {
        let (src, dest) = (self.path(from), self.path(to));
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

    pub fn delete(&self, rel: &str) -> Result<(), OutputError> {
        match std::fs::remove_file(self.path(rel)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SinkError::Io {
                path: self.path(rel).display().to_string(),
                source: e,
            }
            .into()),
            _ => Ok(()),
        }
    }

    pub fn list_tree(&self, rel_dir: &str) -> Vec<String> {
        let root = self.path(rel_dir);
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
        out
    }

    pub fn remove_empty_dir(&self, rel: &str) {
        let _ = std::fs::remove_dir(self.path(rel));
    }

    pub fn publish(&self, staged: &Path, rel: &str) -> Result<(), OutputError> {
        Ok(super::publish(staged, &self.path(rel))?)
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path(rel)
    }
}
