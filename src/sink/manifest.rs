//! The per-dataset manifest: what each partition holds, how final it is, and
//! when a final partition was restated.
//!
//! It is kept as one small file per partition, `<dataset>/_manifest/<cycle>.json`
//! (a *shard*), rewritten atomically after every file published in that
//! partition: so it never describes a file that is not in place, and a unit's
//! commit costs the size of its partition, not of the lake (an 18-month,
//! 200-account backfill no longer uploads the whole manifest per unit).
//! Manifests written before shards (`<dataset>/_manifest.json`) are read,
//! and split into shards by the next run that writes.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{SinkError, atomic_write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finality {
    /// Huawei may still change the cycle (before the 3rd, 10:00 UTC+8, of the next month, plus grace).
    Provisional,
    Final,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the dataset directory.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// Digest of the served rows (not of the file, which carries lineage).
    pub content_digest: String,
    /// Exact sums as decimal strings.
    pub money_totals: BTreeMap<String, String>,
    pub schema_version: u32,
    /// Digest of the queries that produced the file (e.g. its statistic_type):
    /// a final file asked for differently is extracted again.
    pub query_digest: String,
    /// Final when extracted after the cycle closed.
    pub finality: Finality,
    pub extracted_at: DateTime<Utc>,
    pub run_id: String,
    /// What a reader of the file should know (e.g. FOCUS made without amortisation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The currency the API named for the file's amounts (`CNY`, `USD`);
    /// absent for data without money and for files recorded before hcbill
    /// kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// The bucket object's ETag as written: an object with another one is not
    /// this file (a late writer's, say) and is written again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    /// The job (run id) that last extracted this unit and found the file
    /// right: how a resumed job knows which units it has done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_by: Option<String>,
}

/// How a file's currency is shown when the manifest does not record one.
pub const UNRECORDED: &str = "currency not recorded";

/// Sums of `column` over `files`, per currency: amounts in two currencies are
/// never added together. A file without a recorded currency counts in
/// `unrecorded_as` (the manifest's one currency, see [`Manifest::sole_currency`]).
pub fn totals_by_currency<'a>(
    files: impl IntoIterator<Item = &'a FileEntry>,
    column: &str,
    unrecorded_as: Option<&str>,
) -> BTreeMap<String, rust_decimal::Decimal> {
    let mut out = BTreeMap::new();
    for f in files {
        if let Some(v) = f
            .money_totals
            .get(column)
            .and_then(|v| v.parse::<rust_decimal::Decimal>().ok())
        {
            *out.entry(currency_of(f, unrecorded_as)).or_default() += v;
        }
    }
    out
}

/// The currency of a file's amounts, as reports name it.
pub fn currency_of(f: &FileEntry, unrecorded_as: Option<&str>) -> String {
    f.currency
        .as_deref()
        .or(unrecorded_as)
        .unwrap_or(UNRECORDED)
        .to_string()
}

/// `1234.5 CNY; 12 USD`.
pub fn currency_text<V: std::fmt::Display>(totals: &BTreeMap<String, V>) -> String {
    totals
        .iter()
        .map(|(c, v)| format!("{v} {c}"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restatement {
    pub account: String,
    pub detected_at: DateTime<Utc>,
    pub run_id: String,
    pub previous_digest: String,
    pub new_digest: String,
    pub previous_rows: u64,
    pub new_rows: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub bill_cycle: String,
    /// Final only when every file of the partition is.
    pub finality: Finality,
    /// When the cycle becomes final (including the configured grace).
    pub final_at: DateTime<Utc>,
    pub rows: u64,
    /// One file per account, keyed by account.
    pub files: BTreeMap<String, FileEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restatements: Vec<Restatement>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset: String,
    pub schema_version: u32,
    pub updated_at: DateTime<Utc>,
    pub partitions: BTreeMap<String, Partition>,
    /// Read from a manifest written before shards: the next run splits it.
    #[serde(skip)]
    pub legacy: bool,
}

/// One partition's part of a manifest, as stored.
#[derive(Serialize, Deserialize)]
struct Shard {
    dataset: String,
    schema_version: u32,
    updated_at: DateTime<Utc>,
    partition: Partition,
}

/// Where a partition's shard lives, relative to the output.
pub fn shard_rel(dataset: &str, cycle: &str) -> String {
    format!("{dataset}/{SHARDS}/{cycle}.json")
}

/// The directory of a dataset's shards.
pub const SHARDS: &str = "_manifest";

impl Manifest {
    pub fn new(dataset: &str, schema_version: u32) -> Self {
        Self {
            dataset: dataset.to_string(),
            schema_version,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            partitions: BTreeMap::new(),
            legacy: false,
        }
    }

    /// Adds a shard read from `name`: its partition replaces any of a legacy file.
    pub fn add_shard(&mut self, bytes: &[u8], name: &str) -> Result<(), SinkError> {
        let s: Shard = serde_json::from_slice(bytes).map_err(|e| SinkError::Manifest {
            path: name.to_string(),
            reason: e.to_string(),
        })?;
        self.updated_at = self.updated_at.max(s.updated_at);
        self.schema_version = self.schema_version.max(s.schema_version);
        self.partitions.insert(s.partition.bill_cycle.clone(), s.partition);
        Ok(())
    }

    /// The shard of `cycle` as stored (stamped `now`): serialised under the
    /// caller's lock, written after it is released.
    pub fn shard_bytes(&mut self, cycle: &str, now: DateTime<Utc>) -> Option<Vec<u8>> {
        self.updated_at = now;
        let p = self.partitions.get_mut(cycle)?;
        p.rows = p.files.values().map(|f| f.rows).sum();
        let shard = Shard {
            dataset: self.dataset.clone(),
            schema_version: self.schema_version,
            updated_at: now,
            partition: p.clone(),
        };
        let mut text = serde_json::to_vec_pretty(&shard).expect("a shard serialises");
        text.push(b'\n');
        Some(text)
    }

    /// Whether the unit of `cycle` and `account` was done by job `run_id`.
    pub fn checked_by(&self, cycle: &str, account: &str, run_id: &str) -> bool {
        self.file(cycle, account)
            .is_some_and(|f| f.checked_by.as_deref() == Some(run_id))
    }

    /// A manifest written before shards, read from `bytes` (`None`: there is none).
    pub fn from_bytes(bytes: Option<&[u8]>, dataset: &str, schema_version: u32, name: &str) -> Result<Self, SinkError> {
        match bytes {
            Some(b) => {
                let mut m: Manifest = serde_json::from_slice(b).map_err(|e| SinkError::Manifest {
                    path: name.to_string(),
                    reason: e.to_string(),
                })?;
                m.legacy = true;
                Ok(m)
            }
            None => Ok(Self::new(dataset, schema_version)),
        }
    }

    /// The manifest of the dataset directory `dir` on disk: its shards, over a
    /// legacy `_manifest.json` if one is left (`None`: neither exists).
    pub fn load(dir: &Path, dataset: &str, schema_version: u32) -> Result<Option<Self>, SinkError> {
        let read = |path: &Path| match std::fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SinkError::Io {
                path: path.display().to_string(),
                source,
            }),
        };
        let legacy_path = dir.join("_manifest.json");
        let legacy = read(&legacy_path)?;
        let mut m = Self::from_bytes(
            legacy.as_deref(),
            dataset,
            schema_version,
            &legacy_path.display().to_string(),
        )?;
        let mut found = legacy.is_some();
        let mut names: Vec<_> = std::fs::read_dir(dir.join(SHARDS))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        for p in names {
            if let Some(b) = read(&p)? {
                m.add_shard(&b, &p.display().to_string())?;
                found = true;
            }
        }
        Ok(found.then_some(m))
    }

    /// Writes every shard of the manifest under the dataset directory `dir`
    /// (tests and tools that edit a local lake).
    pub fn save(&mut self, dir: &Path, now: DateTime<Utc>) -> Result<(), SinkError> {
        let cycles: Vec<String> = self.partitions.keys().cloned().collect();
        for c in cycles {
            let bytes = self.shard_bytes(&c, now).expect("a partition held");
            atomic_write(&dir.join(SHARDS).join(format!("{c}.json")), &bytes)?;
        }
        Ok(())
    }

    /// The one currency the manifest records, if it records exactly one:
    /// files written before hcbill recorded currencies are in it too (an
    /// output holds one site's bills unless accounts of two were written to it).
    pub fn sole_currency(&self) -> Option<String> {
        let mut seen = self
            .partitions
            .values()
            .flat_map(|p| p.files.values())
            .filter_map(|f| f.currency.as_deref());
        let first = seen.next()?;
        seen.all(|c| c == first).then(|| first.to_string())
    }

    pub fn file(&self, cycle: &str, account: &str) -> Option<&FileEntry> {
        self.partitions.get(cycle)?.files.get(account)
    }

    /// Cycles with a file that is still provisional.
    pub fn provisional_cycles(&self) -> impl Iterator<Item = &str> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.finality == Finality::Provisional)
            .map(|(c, _)| c.as_str())
    }

    /// Cycles holding a file written with a schema version other than
    /// `version`: a dataset whose shape changed (FOCUS 1.2 → 1.3) is brought
    /// to one schema, so a reader never meets two in one table.
    pub fn stale_cycles(&self, version: u32) -> impl Iterator<Item = &str> {
        self.partitions
            .iter()
            .filter(move |(_, p)| p.files.values().any(|f| f.schema_version != version))
            .map(|(c, _)| c.as_str())
    }

    /// Records a published (or confirmed unchanged) file. A final partition
    /// whose content changed gets a restatement entry.
    pub fn record(
        &mut self,
        cycle: &str,
        account: &str,
        final_at: DateTime<Utc>,
        entry: FileEntry,
    ) -> Option<Restatement> {
        let part = self.partitions.entry(cycle.to_string()).or_insert_with(|| Partition {
            bill_cycle: cycle.to_string(),
            finality: entry.finality,
            final_at,
            rows: 0,
            files: BTreeMap::new(),
            restatements: Vec::new(),
        });
        let mut restated = None;
        if let Some(prev) = part.files.get(account)
            && prev.finality == Finality::Final
            && prev.content_digest != entry.content_digest
            // Rewritten in another shape (FOCUS 1.2 → 1.3) is not Huawei restating the cycle.
            && prev.schema_version == entry.schema_version
        {
            let r = Restatement {
                account: account.to_string(),
                detected_at: entry.extracted_at,
                run_id: entry.run_id.clone(),
                previous_digest: prev.content_digest.clone(),
                new_digest: entry.content_digest.clone(),
                previous_rows: prev.rows,
                new_rows: entry.rows,
            };
            part.restatements.push(r.clone());
            restated = Some(r);
        }
        part.final_at = final_at;
        self.schema_version = entry.schema_version;
        part.files.insert(account.to_string(), entry);
        part.finality = if part.files.values().all(|f| f.finality == Finality::Final) {
            Finality::Final
        } else {
            Finality::Provisional
        };
        part.rows = part.files.values().map(|f| f.rows).sum();
        restated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, rows: u64, finality: Finality) -> FileEntry {
        FileEntry {
            path: "bill_cycle=2026-01/part-self.parquet".into(),
            rows,
            bytes: 10,
            sha256: "x".into(),
            content_digest: digest.into(),
            money_totals: BTreeMap::new(),
            schema_version: 1,
            query_digest: "q".into(),
            finality,
            extracted_at: Utc::now(),
            run_id: "r".into(),
            notes: Vec::new(),
            currency: Some("CNY".into()),
            e_tag: None,
            checked_by: None,
        }
    }

    #[test]
    fn restatement_only_for_changed_final_partitions() {
        let mut m = Manifest::new("d", 1);
        let at = Utc::now();
        assert!(
            m.record("2026-01", "self", at, entry("a", 1, Finality::Provisional))
                .is_none()
        );
        assert!(
            m.record("2026-01", "self", at, entry("b", 2, Finality::Final))
                .is_none(),
            "was provisional"
        );
        assert!(
            m.record("2026-01", "self", at, entry("b", 2, Finality::Final))
                .is_none(),
            "unchanged"
        );
        let r = m.record("2026-01", "self", at, entry("c", 3, Finality::Final)).unwrap();
        assert_eq!((r.previous_rows, r.new_rows), (2, 3));
        assert_eq!(m.partitions["2026-01"].restatements.len(), 1);
        assert_eq!(m.partitions["2026-01"].rows, 3);
        // A member's provisional file keeps the partition provisional.
        m.record("2026-01", "m1", at, entry("d", 1, Finality::Provisional));
        assert_eq!(m.partitions["2026-01"].finality, Finality::Provisional);
        assert_eq!(m.provisional_cycles().collect::<Vec<_>>(), ["2026-01"]);
        m.record("2026-01", "m1", at, entry("d", 1, Finality::Final));
        assert_eq!(m.partitions["2026-01"].finality, Finality::Final);
    }

    #[test]
    fn a_schema_change_is_stale_until_rewritten_and_no_restatement() {
        let mut m = Manifest::new("d", 1);
        let at = Utc::now();
        m.record("2026-01", "self", at, entry("a", 1, Finality::Final));
        m.record("2026-02", "self", at, entry("b", 1, Finality::Final));
        assert_eq!(m.stale_cycles(1).count(), 0);
        assert_eq!(m.stale_cycles(2).collect::<Vec<_>>(), ["2026-01", "2026-02"]);
        let mut v2 = entry("a-in-v2", 1, Finality::Final);
        v2.schema_version = 2;
        assert!(
            m.record("2026-01", "self", at, v2).is_none(),
            "another shape of the same rows is not a restatement"
        );
        assert_eq!(m.stale_cycles(2).collect::<Vec<_>>(), ["2026-02"]);
        assert_eq!(m.schema_version, 2);
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        assert!(Manifest::load(&d, "d", 1).unwrap().is_none());
        let mut m = Manifest::new("d", 1);
        m.record("2026-01", "self", Utc::now(), entry("a", 5, Finality::Final));
        m.record("2026-02", "self", Utc::now(), entry("b", 6, Finality::Provisional));
        m.save(&d, Utc::now()).unwrap();
        assert!(d.join("_manifest/2026-01.json").exists() && d.join("_manifest/2026-02.json").exists());
        assert_eq!(Manifest::load(&d, "d", 1).unwrap().unwrap(), m);
        // A legacy manifest is read, and a shard wins over its partition.
        let mut old = Manifest::new("d", 1);
        old.record("2026-01", "self", Utc::now(), entry("old", 1, Finality::Final));
        old.record("2025-12", "self", Utc::now(), entry("z", 2, Finality::Final));
        std::fs::write(d.join("_manifest.json"), serde_json::to_vec(&old).unwrap()).unwrap();
        let both = Manifest::load(&d, "d", 1).unwrap().unwrap();
        assert!(both.legacy);
        assert_eq!(both.partitions.len(), 3);
        assert_eq!(both.file("2026-01", "self").unwrap().content_digest, "a");
        std::fs::write(d.join("_manifest/2026-01.json"), "{").unwrap();
        assert!(Manifest::load(&d, "d", 1).is_err());
    }
}
