//! A bucket lake read as a local one: `verify` and `report` read a local copy
//! of the manifests and of the data files of the cycles they look at, made
//! here one file at a time (memory stays flat) in a temporary directory
//! removed afterwards. A local output is read where it is.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::manifest::SHARDS;
use super::output::{Output, OutputError};
use crate::cycle::BillCycle;
use crate::source::datasets::DatasetSpec;

/// Which data files to copy besides the manifests.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    None,
    All,
    Cycles(&'a BTreeSet<BillCycle>),
}

/// The output as a local directory: itself, or a copy (kept while the
/// returned guard lives).
pub struct Readable {
    pub dir: PathBuf,
    _copy: Option<tempfile::TempDir>,
}

/// Makes `out` readable as a directory for `specs`, with the data files `data` asks for.
pub async fn readable(out: &Output, specs: &[&DatasetSpec], data: Data<'_>) -> Result<Readable, OutputError> {
    if let Some(dir) = out.local_dir() {
        return Ok(Readable {
            dir: dir.to_path_buf(),
            _copy: None,
        });
    }
    let copy = tempfile::Builder::new()
        .prefix("hcbill-read-")
        .tempdir()
        .map_err(|e| OutputError::Sink(super::io_err(&std::env::temp_dir())(e)))?;
    add(out, copy.path(), specs, data).await?;
    Ok(Readable {
        dir: copy.path().to_path_buf(),
        _copy: Some(copy),
    })
}

impl Readable {
    /// Adds data files to the copy (nothing to do for a local output).
    pub async fn add(&self, out: &Output, specs: &[&DatasetSpec], data: Data<'_>) -> Result<(), OutputError> {
        if self._copy.is_some() {
            add(out, &self.dir, specs, data).await?;
        }
        Ok(())
    }
}

async fn add(out: &Output, root: &Path, specs: &[&DatasetSpec], data: Data<'_>) -> Result<(), OutputError> {
    for spec in specs {
        for rel in out.list_tree(spec.name).await? {
            if !wanted(&rel, data) {
                continue;
            }
            let dest = root.join(spec.name).join(&rel);
            if dest.exists() {
                continue;
            }
            let dir = dest.parent().unwrap_or(root);
            std::fs::create_dir_all(dir).map_err(super::io_err(dir))?;
            let copy = out.local_copy(&format!("{}/{rel}", spec.name), dir).await?;
            std::fs::rename(&copy.path, &dest).map_err(super::io_err(&dest))?;
        }
    }
    Ok(())
}

/// Manifests always; Parquet files of the cycles asked for (any partition
/// key, so files a manifest does not name are copied too, for `verify`).
fn wanted(rel: &str, data: Data<'_>) -> bool {
    if rel == "_manifest.json" || rel.starts_with(&format!("{SHARDS}/")) {
        return true;
    }
    if !rel.ends_with(".parquet") {
        return false;
    }
    let cycle = rel
        .split('/')
        .next()
        .and_then(|d| d.split_once('='))
        .and_then(|(_, v)| v.parse::<BillCycle>().ok());
    match data {
        Data::None => false,
        Data::All => true,
        Data::Cycles(c) => cycle.is_none_or(|x| c.contains(&x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_always_and_data_of_the_cycles_asked() {
        let oct: BTreeSet<BillCycle> = ["2026-10".parse().unwrap()].into();
        assert!(wanted("_manifest/2026-09.json", Data::None));
        assert!(wanted("_manifest.json", Data::Cycles(&oct)));
        assert!(!wanted("bill_cycle=2026-10/part-self.parquet", Data::None));
        assert!(wanted("bill_cycle=2026-10/part-self.parquet", Data::Cycles(&oct)));
        assert!(!wanted("bill_cycle=2026-09/part-self.parquet", Data::Cycles(&oct)));
        assert!(wanted("bill_cycle=2026-09/part-self.parquet", Data::All));
        assert!(!wanted("focus_metadata.json", Data::All));
    }
}
