//! Moving a dataset written by an older version to its current partition key.
//!
//! `amortized_costs` was partitioned by `bill_cycle=<shared month>` while its
//! `bill_cycle` column holds each charge's own cycle, and `account_changes`
//! by `bill_cycle=<trade month>` beside a `bill_cycle` column that may name
//! another month: every Hive reader replaced the column with the directory's
//! value. They are now partitioned by `shared_month=` and `trade_month=`. The
//! files themselves are unchanged (same rows, same partition values), so a
//! lake in the old layout is moved, not extracted again.
//!
//! Order, so that the manifest never names a file that is not in place and a
//! kill at any point is finished by the next run: each file is copied to its
//! new path (whole or not at all), then the manifest is rewritten with the new
//! paths, then the old copies are deleted. An old file whose new path the
//! manifest already names is the leftover of a stopped migration and goes. A
//! Parquet file in an old-layout directory that the manifest does not name
//! otherwise is not guessed at: the run refuses with one line.
//!
//! A manifest kept as one `_manifest.json` (before shards) is split into its
//! partitions' shards the same way: shards first, then the old file deleted.

use super::Layout;
use super::manifest::{Manifest, shard_rel};
use super::output::{Output, OutputError};
use crate::cycle::BillCycle;
use crate::source::datasets::DatasetSpec;

/// The partition key every dataset had before datasets declared their own.
const FORMER_KEY: &str = "bill_cycle";

/// `k=v/file` under `key` instead: `key=v/file`.
fn under_key(rel: &str, key: &str) -> Option<String> {
    let (dir, file) = rel.split_once('/')?;
    let (_, value) = dir.split_once('=')?;
    Some(format!("{key}={value}/{file}"))
}

/// Moves `spec`'s files that its manifest `m` places under another partition
/// key to `spec.partition_key`; returns the manifest as written.
pub async fn to_current_layout(out: &Output, spec: &DatasetSpec, mut m: Manifest) -> Result<Manifest, OutputError> {
    if spec.partition_key == FORMER_KEY {
        split_legacy(out, spec, &mut m, &[]).await?;
        return Ok(m);
    }
    let want = format!("{}=", spec.partition_key);
    let known: std::collections::BTreeSet<String> = m
        .partitions
        .values()
        .flat_map(|p| p.files.values().map(|f| f.path.clone()))
        .collect();
    let old: Vec<String> = out
        .list_tree(spec.name)
        .await?
        .into_iter()
        .filter(|rel| rel.ends_with(".parquet") && rel.contains('/') && !rel.starts_with(&want))
        .filter(|rel| !known.contains(rel))
        .collect();
    let (leftovers, stray): (Vec<String>, Vec<String>) = old
        .into_iter()
        .partition(|rel| under_key(rel, spec.partition_key).is_some_and(|n| known.contains(&n)));
    if let Some(first) = stray.first() {
        return Err(OutputError::Layout(format!(
            "{}/{}/{first} is in an older layout and not in the dataset's manifest ({} such files): \
             move them away, then run again ({} is now partitioned by {})",
            out.url(),
            spec.name,
            stray.len(),
            spec.name,
            spec.partition_key
        )));
    }
    let mut to_delete = leftovers;
    let (mut copied, mut changed) = (0, false);
    for (cycle, p) in m.partitions.iter_mut() {
        let c: BillCycle = cycle
            .parse()
            .map_err(|e| OutputError::Layout(format!("{}: manifest partition {cycle:?}: {e}", spec.name)))?;
        let mut lost = Vec::new();
        for (account, e) in p.files.iter_mut().filter(|(_, e)| !e.path.starts_with(&want)) {
            let new = Layout::file_rel(spec.partition_key, c, account);
            let (old_abs, new_abs) = (format!("{}/{}", spec.name, e.path), format!("{}/{new}", spec.name));
            // A stopped migration may have copied it already.
            if out.head(&new_abs).await?.map(|h| h.size) != Some(e.bytes) {
                if !out.exists(&old_abs).await? {
                    lost.push(account.clone());
                    continue;
                }
                out.copy(&old_abs, &new_abs).await?;
                copied += 1;
            }
            // A copy may carry another ETag (a multipart object's does).
            e.e_tag = out.head(&new_abs).await?.and_then(|h| h.e_tag);
            to_delete.push(e.path.clone());
            e.path = new;
            changed = true;
        }
        changed |= !lost.is_empty();
        for a in lost {
            tracing::warn!(
                dataset = spec.name,
                cycle,
                account = a,
                "a file of the old layout is missing: dropped from the manifest, extracted again by a run that covers its cycle"
            );
            p.files.remove(&a);
        }
    }
    let emptied: Vec<String> = m
        .partitions
        .iter()
        .filter(|(_, p)| p.files.is_empty())
        .map(|(c, _)| c.clone())
        .collect();
    m.partitions.retain(|_, p| !p.files.is_empty());
    if changed && !m.legacy {
        save_all(out, &mut m, &emptied).await?;
    }
    split_legacy(out, spec, &mut m, &emptied).await?;
    for rel in &to_delete {
        out.delete(&format!("{}/{rel}", spec.name)).await?;
        if let Some((dir, _)) = rel.split_once('/') {
            out.remove_empty_dir(&format!("{}/{dir}", spec.name));
        }
    }
    if !to_delete.is_empty() {
        tracing::info!(
            dataset = spec.name,
            "moved {} files ({copied} copied now) to the {} partitions of this version's layout",
            to_delete.len(),
            spec.partition_key
        );
    }
    Ok(m)
}

/// Writes every shard of `m`, and deletes those of the partitions `emptied`.
async fn save_all(out: &Output, m: &mut Manifest, emptied: &[String]) -> Result<(), OutputError> {
    let now = chrono::Utc::now();
    let cycles: Vec<String> = m.partitions.keys().cloned().collect();
    for c in cycles {
        let bytes = m.shard_bytes(&c, now).expect("a partition held");
        out.write(&shard_rel(&m.dataset, &c), &bytes, true).await?;
    }
    for c in emptied {
        out.delete(&shard_rel(&m.dataset, c)).await?;
    }
    Ok(())
}

/// A manifest read from one `_manifest.json` becomes shards, then the file goes.
async fn split_legacy(
    out: &Output,
    spec: &DatasetSpec,
    m: &mut Manifest,
    emptied: &[String],
) -> Result<(), OutputError> {
    if !m.legacy {
        return Ok(());
    }
    save_all(out, m, emptied).await?;
    out.delete(&Layout::manifest_rel(spec.name)).await?;
    m.legacy = false;
    tracing::info!(dataset = spec.name, "manifest split into one shard per partition");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_move_under_the_new_key() {
        assert_eq!(
            under_key("bill_cycle=2026-10/part-self.parquet", "shared_month").as_deref(),
            Some("shared_month=2026-10/part-self.parquet")
        );
        assert_eq!(under_key("part-self.parquet", "k"), None);
    }
}
