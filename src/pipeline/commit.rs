//! Publishing a unit: its file, then the manifest, then the checkpoint.
//!
//! Crash-safety protocol (each step durable before the next starts):
//! 1. The file is written and fsynced under `.hcbill/staging/` (a bucket's
//!    output: a local spool) with a name with no API text in it; a crash here
//!    leaves garbage the next run deletes.
//! 2. It is renamed over `<dataset>/<key>=…/part-<account>.parquet` and the
//!    directory fsynced (a bucket: one fenced PUT, or a multipart upload
//!    completed only when whole): readers see the old file or the new one,
//!    never a partial one. A file whose served content did not change, and
//!    which is the file the manifest names (its ETag in a bucket, its size and
//!    sha256 on disk), is not touched.
//! 3. The partition's manifest shard records it, with the job that checked it
//!    (atomic write; in a bucket, a put conditional on the version this run
//!    last saw). That entry is the unit's checkpoint: a crash between 2 and 3
//!    leaves a published file the manifest does not name yet, and the next
//!    run extracts and records it again.
//!
//! So the manifest never names a file that is not in place, and a checkpoint
//! never runs ahead of the manifest. Shards are serialised under a lock but
//! written outside it: units of different partitions never queue on one
//! another's fsync or upload, and a shard write already covered by a newer
//! one is skipped. A unit's commit writes its partition's shard only.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::error::UnitError;
use super::plan::Unit;
use super::report::UnitStatus;
use crate::sink::Layout;
use crate::sink::manifest::shard_rel;
use crate::sink::manifest::{FileEntry, Finality, Manifest, Restatement};
use crate::sink::output::{Output, OutputError};
use crate::sink::parquet::StagedFile;

/// One dataset's manifest, with a version number per partition.
struct Slot {
    manifest: Mutex<(Manifest, HashMap<String, u64>)>,
    /// Per partition, the version last written; held while writing it.
    written: Mutex<HashMap<String, Arc<tokio::sync::Mutex<u64>>>>,
}

pub struct Committer {
    pub out: Arc<Output>,
    slots: HashMap<&'static str, Slot>,
    pub run_id: String,
}

/// What a unit produced, ready to be committed.
pub struct Produced {
    pub staged: StagedFile,
    /// What a reader of the file should know (e.g. FOCUS made without amortisation).
    pub notes: Vec<String>,
    pub content_digest: String,
    pub money_totals: BTreeMap<String, String>,
    pub query_digest: String,
    /// The currency the API named for the unit's amounts.
    pub currency: Option<String>,
    pub extracted_at: DateTime<Utc>,
    pub final_at: DateTime<Utc>,
    pub finality: Finality,
}

impl Committer {
    pub fn new(out: Arc<Output>, manifests: HashMap<&'static str, Manifest>, run_id: String) -> Self {
        let slots = manifests
            .into_iter()
            .map(|(k, m)| {
                (
                    k,
                    Slot {
                        manifest: Mutex::new((m, HashMap::new())),
                        written: Mutex::new(HashMap::new()),
                    },
                )
            })
            .collect();
        Self { out, slots, run_id }
    }

    /// Whether this job has done `unit` already (a resumed job skips it).
    pub fn is_done(&self, unit: &Unit) -> bool {
        let g = self.slot(unit.spec.name).manifest.lock().expect("manifest lock");
        g.0.checked_by(&unit.cycle.to_string(), unit.account.key(), &self.run_id)
    }

    /// Units this job has done, over every dataset.
    pub fn done_count(&self) -> usize {
        self.slots
            .values()
            .map(|s| {
                let g = s.manifest.lock().expect("manifest lock");
                g.0.partitions
                    .values()
                    .flat_map(|p| p.files.values())
                    .filter(|f| f.checked_by.as_deref() == Some(self.run_id.as_str()))
                    .count()
            })
            .sum()
    }

    fn slot(&self, dataset: &str) -> &Slot {
        self.slots.get(dataset).expect("a manifest is loaded for every dataset")
    }

    /// A copy of the unit's manifest entry, if any.
    pub fn entry(&self, unit: &Unit) -> Option<FileEntry> {
        let g = self.slot(unit.spec.name).manifest.lock().expect("manifest lock");
        g.0.file(&unit.cycle.to_string(), unit.account.key()).cloned()
    }

    /// A copy of `dataset`'s entry for a cycle and account, if the run reads
    /// that dataset's manifest.
    pub fn entry_of(&self, dataset: &str, cycle: &str, account: &str) -> Option<FileEntry> {
        let slot = self.slots.get(dataset)?;
        let g = slot.manifest.lock().expect("manifest lock");
        g.0.file(cycle, account).cloned()
    }

    /// A copy of a dataset's manifest (for its sidecar).
    pub fn manifest(&self, dataset: &str) -> Manifest {
        self.slot(dataset).manifest.lock().expect("manifest lock").0.clone()
    }

    /// Restatements this run recorded, over every dataset.
    pub fn restatements(&self) -> usize {
        self.slots
            .values()
            .map(|s| {
                let g = s.manifest.lock().expect("manifest lock");
                g.0.partitions
                    .values()
                    .flat_map(|p| &p.restatements)
                    .filter(|r| r.run_id == self.run_id)
                    .count()
            })
            .sum()
    }

    /// Steps 2 and 3 of the protocol for one unit. Returns the status and the entry recorded.
    pub async fn commit(&self, unit: &Unit, p: Produced) -> Result<(UnitStatus, FileEntry), UnitError> {
        let spec = unit.spec;
        let cycle = unit.cycle.to_string();
        let account = unit.account.key();
        let rel = Layout::file_rel(spec.partition_key, unit.cycle, account);
        let dest = format!("{}/{rel}", spec.name);
        let previous = self.entry(unit);
        let same = previous
            .as_ref()
            .filter(|e| e.content_digest == p.content_digest && e.schema_version == spec.version);
        // The file in place must be the one the manifest describes (a crash or
        // a late writer may have left another) before it is kept.
        let unchanged = match same {
            Some(e) => self.out.holds(&dest, e, true).await.map_err(UnitError::output)?,
            None => false,
        };
        let entry = match previous {
            Some(mut e) if unchanged => {
                // The file stays as it was, lineage included; only its finality may advance.
                let _ = std::fs::remove_file(&p.staged.path);
                e.finality = p.finality;
                e.query_digest = p.query_digest;
                e.notes = p.notes;
                e.currency = p.currency;
                // Same rows; totals of money columns added since are filled in.
                e.money_totals = p.money_totals;
                e.checked_by = Some(self.run_id.clone());
                if e.e_tag.is_none() {
                    // Recorded before ETags were: from now on, fenced like any other.
                    e.e_tag = self
                        .out
                        .head(&dest)
                        .await
                        .map_err(UnitError::output)?
                        .and_then(|h| h.e_tag);
                }
                e
            }
            previous => {
                // Fenced: only the object the manifest names is replaced.
                let replaces = previous.and_then(|e| e.e_tag);
                let e_tag = self
                    .out
                    .publish(&p.staged.path, &dest, replaces.as_deref())
                    .await
                    .map_err(UnitError::output)?;
                FileEntry {
                    path: rel,
                    rows: p.staged.rows,
                    bytes: p.staged.bytes,
                    sha256: p.staged.sha256,
                    content_digest: p.content_digest,
                    money_totals: p.money_totals,
                    schema_version: spec.version,
                    query_digest: p.query_digest,
                    finality: p.finality,
                    extracted_at: p.extracted_at,
                    run_id: self.run_id.clone(),
                    notes: p.notes,
                    currency: p.currency,
                    e_tag,
                    checked_by: Some(self.run_id.clone()),
                }
            }
        };
        let restated = self
            .record(spec.name, &cycle, account, p.final_at, entry.clone())
            .await
            .map_err(UnitError::output)?;
        if let Some(r) = restated {
            tracing::warn!(
                dataset = spec.name,
                cycle,
                "final partition restated: {} rows before, {} now",
                r.previous_rows,
                r.new_rows
            );
        }
        let status = if unchanged {
            UnitStatus::Unchanged
        } else {
            UnitStatus::Published
        };
        Ok((status, entry))
    }

    /// Records an entry and makes its partition's shard durable before returning.
    async fn record(
        &self,
        dataset: &str,
        cycle: &str,
        account: &str,
        final_at: DateTime<Utc>,
        entry: FileEntry,
    ) -> Result<Option<Restatement>, OutputError> {
        let slot = self.slot(dataset);
        let (restated, bytes, seq) = {
            let mut g = slot.manifest.lock().expect("manifest lock");
            let restated = g.0.record(cycle, account, final_at, entry);
            let bytes = g.0.shard_bytes(cycle, Utc::now()).expect("the partition just recorded");
            let seq = g.1.entry(cycle.to_string()).or_default();
            *seq += 1;
            (restated, bytes, *seq)
        };
        let lock = slot
            .written
            .lock()
            .expect("written lock")
            .entry(cycle.to_string())
            .or_default()
            .clone();
        let mut written = lock.lock().await;
        // A newer version (which includes this entry) may already be written.
        if *written < seq {
            self.out.write(&shard_rel(dataset, cycle), &bytes, true).await?;
            *written = seq;
        }
        Ok(restated)
    }
}
