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
//! Order, so that a kill at any point is resumed by the next run: each file is
//! moved (one rename on disk; copy then delete in a bucket), then the manifest
//! is rewritten with the new paths, then the emptied directories go. An entry
//! whose old file is gone but whose new one is in place was moved by a killed
//! run. A Parquet file in an old-layout directory that the manifest does not
//! name is not guessed at: the run refuses with one line.

use super::Layout;
use super::manifest::Manifest;
use super::output::{Output, OutputError};
use crate::cycle::BillCycle;
use crate::source::datasets::DatasetSpec;

/// Moves `spec`'s files that its manifest `m` places under another partition
/// key to `spec.partition_key`; returns the manifest as written.
pub async fn to_current_layout(out: &Output, spec: &DatasetSpec, mut m: Manifest) -> Result<Manifest, OutputError> {
    let want = format!("{}=", spec.partition_key);
    let known: std::collections::BTreeSet<String> = m
        .partitions
        .values()
        .flat_map(|p| p.files.values().map(|f| f.path.clone()))
        .collect();
    let stray: Vec<String> = out
        .list_tree(spec.name)
        .await?
        .into_iter()
        .filter(|rel| rel.ends_with(".parquet") && rel.contains('/') && !rel.starts_with(&want))
        .filter(|rel| !known.contains(rel))
        .collect();
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
    let mut moved = 0;
    let mut old_dirs = std::collections::BTreeSet::new();
    for (cycle, p) in m.partitions.iter_mut() {
        let c: BillCycle = cycle
            .parse()
            .map_err(|e| OutputError::Layout(format!("{}: manifest partition {cycle:?}: {e}", spec.name)))?;
        let mut lost = Vec::new();
        for (account, e) in p.files.iter_mut().filter(|(_, e)| !e.path.starts_with(&want)) {
            let new = Layout::file_rel(spec.partition_key, c, account);
            let (old_abs, new_abs) = (format!("{}/{}", spec.name, e.path), format!("{}/{new}", spec.name));
            if let Some(dir) = e.path.split('/').next() {
                old_dirs.insert(format!("{}/{dir}", spec.name));
            }
            if out.exists(&old_abs).await? {
                out.rename(&old_abs, &new_abs).await?;
            } else if !out.exists(&new_abs).await? {
                // Gone from both places: extracted again by this run.
                lost.push(account.clone());
                continue;
            }
            e.path = new;
            moved += 1;
        }
        for a in lost {
            tracing::warn!(
                dataset = spec.name,
                cycle,
                account = a,
                "a file of the old layout is missing; extracting it again"
            );
            p.files.remove(&a);
        }
    }
    if moved == 0 && old_dirs.is_empty() {
        return Ok(m);
    }
    m.partitions.retain(|_, p| !p.files.is_empty());
    out.write(&Layout::manifest_rel(spec.name), &m.to_bytes(chrono::Utc::now()), true)
        .await?;
    for d in &old_dirs {
        out.remove_empty_dir(d);
    }
    tracing::info!(
        dataset = spec.name,
        "moved {moved} files to the {} partitions of this version's layout",
        spec.partition_key
    );
    Ok(m)
}
