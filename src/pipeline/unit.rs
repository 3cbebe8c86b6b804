//! Running one group: which of its units to skip, one shared fetch, restarts
//! when the data moved, the deadline, then each unit's commit.

use std::time::Instant;

use chrono::Utc;

use super::Ctx;
use super::accounts::MemberListing;
use super::error::UnitError;
use super::plan::{self, Group};
use super::report::{UnitReport, UnitStatus};
use super::write::{self, Writer};
use crate::sink::manifest::Finality;
use crate::source::client::WaitBudget;
use crate::source::paging::Pager;

/// When a group must stop, and what to call that moment in its errors.
#[derive(Clone)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub what: String,
}

pub async fn run_group(
    ctx: &Ctx,
    group: &Group,
    deadline: &Deadline,
    listing: Option<&MemberListing>,
) -> Vec<UnitReport> {
    let start = Instant::now();
    let mut reports: Vec<UnitReport> = group.units.iter().map(|u| u.blank_report()).collect();
    if tokio::time::Instant::now() >= deadline.at {
        for r in &mut reports {
            r.error = Some(format!(
                "not started: {} passed; the next run resumes it",
                deadline.what
            ));
        }
        return reports;
    }
    if let Some(why) = ctx.client.stop.reason() {
        for r in &mut reports {
            r.error = Some(format!("not started: stopped ({why}); the next run resumes it"));
        }
        return reports;
    }
    let mut active = Vec::new();
    for (i, unit) in group.units.iter().enumerate() {
        let existing = ctx.committer.entry(unit);
        let report = &mut reports[i];
        // A file made without its companion is made again once it can be whole.
        let remake = existing.as_ref().is_some_and(|e| companion_back(ctx, group, unit, e));
        if ctx.committer.is_done(unit) && !remake {
            report.status = UnitStatus::AlreadyDone;
            if let Some(e) = existing {
                report.finality = Some(e.finality);
                report.rows = e.rows;
                report.bytes = e.bytes;
                report.currency = e.currency.clone();
                report.money_totals = e.money_totals;
            }
            continue;
        }
        let skippable = existing.as_ref().is_some_and(|e| {
            e.finality == Finality::Final
                && !ctx.job.force
                && e.schema_version == unit.spec.version
                && (e.query_digest == plan::query_digest(&ctx.job, unit.spec, unit.cycle)
                    || e.query_digest == plan::legacy_query_digest(&ctx.job, unit.spec, unit.cycle))
                && !remake
        });
        let in_place = match &existing {
            Some(e) if skippable => ctx
                .committer
                .out
                .holds(&format!("{}/{}", unit.spec.name, e.path), e, false)
                .await
                .unwrap_or(false),
            _ => false,
        };
        if let Some(e) = existing.filter(|_| skippable && in_place) {
            report.status = UnitStatus::SkippedFinal;
            report.finality = Some(Finality::Final);
            report.rows = e.rows;
            report.bytes = e.bytes;
            report.currency = e.currency.clone();
            report.money_totals = e.money_totals;
            continue;
        }
        active.push(i);
    }
    if active.is_empty() {
        return reports;
    }
    let budget = std::sync::Arc::new(ctx.client.unit_budget());
    let mut restarts = 0;
    // Keys that repeated, per dataset: met again on the next read, they are
    // rows the key cannot tell apart (that dataset fails alone), not drift.
    let mut repeated: Watch = Watch::new();
    loop {
        let attempt = tokio::time::timeout_at(
            deadline.at,
            extract(
                ctx,
                group,
                &active,
                &budget,
                listing,
                &repeated,
                restarts >= ctx.job.max_restarts,
            ),
        );
        let outcome = attempt
            .await
            .unwrap_or_else(|_| Err(UnitError::Deadline(deadline.what.clone())));
        match outcome {
            Ok(staged) => {
                for (i, r) in active.iter().zip(staged) {
                    let unit = &group.units[*i];
                    let r = match r {
                        Ok(st) => {
                            let (pages, finality, notes) = (st.pages, st.produced.finality, st.produced.notes.clone());
                            ctx.committer
                                .commit(unit, st.produced)
                                .await
                                .map(|(status, entry)| Committed {
                                    status,
                                    finality,
                                    rows: entry.rows,
                                    bytes: entry.bytes,
                                    pages,
                                    money_totals: entry.money_totals,
                                    currency: entry.currency,
                                    notes,
                                })
                        }
                        Err(e) => Err(e),
                    };
                    let report = &mut reports[*i];
                    match r {
                        Ok(c) => {
                            report.status = c.status;
                            report.finality = Some(c.finality);
                            report.rows = c.rows;
                            report.bytes = c.bytes;
                            report.pages = c.pages;
                            report.money_totals = c.money_totals;
                            report.currency = c.currency;
                            report.notes = c.notes;
                        }
                        Err(e) => report.error = Some(e.to_string()),
                    }
                }
                break;
            }
            Err(UnitError::Repeat {
                dataset: Some(dataset),
                hash,
                rows,
                detail,
            }) if restarts < ctx.job.max_restarts => {
                restarts += 1;
                repeated.entry(dataset).or_default().insert(hash, rows);
                tracing::warn!(
                    dataset = group.name(),
                    cycle = group.cycle.to_string(),
                    account = group.account.key(),
                    "reading again: {dataset}: {detail}"
                );
            }
            Err(UnitError::Drift(why)) if restarts < ctx.job.max_restarts => {
                restarts += 1;
                tracing::warn!(
                    dataset = group.name(),
                    cycle = group.cycle.to_string(),
                    account = group.account.key(),
                    "restarting: {why}"
                );
            }
            Err(e) => {
                let msg = e.to_string();
                for i in &active {
                    reports[*i].error = Some(msg.clone());
                }
                break;
            }
        }
    }
    for r in &mut reports {
        r.restarts = restarts;
        r.seconds = start.elapsed().as_secs_f64();
    }
    reports
}

/// Whether a file made without its companion (FOCUS without the cost
/// center's months) can now be made whole: the companion's own unit runs in
/// this group, or was extracted after the file.
fn companion_back(ctx: &Ctx, group: &Group, unit: &plan::Unit, e: &crate::sink::manifest::FileEntry) -> bool {
    let Some(c) = unit.spec.companion.filter(|_| !e.notes.is_empty()) else {
        return false;
    };
    match ctx
        .committer
        .entry_of(c.from.name, &unit.cycle.to_string(), unit.account.key())
    {
        Some(ce) => ce.extracted_at > e.extracted_at || ce.finality != Finality::Final,
        None => group.units.iter().any(|u| u.spec.name == c.from.name),
    }
}

/// Keys of one dataset that repeated on an earlier read: hash → (first, again) rows.
pub type Watched = std::collections::HashMap<u64, (u64, u64)>;

/// Repeated keys per dataset, from the group's earlier reads.
type Watch = std::collections::HashMap<&'static str, Watched>;

/// A committed unit, for its report.
struct Committed {
    status: UnitStatus,
    finality: Finality,
    rows: u64,
    bytes: u64,
    pages: u64,
    money_totals: std::collections::BTreeMap<String, String>,
    currency: Option<String>,
    notes: Vec<String>,
}

/// A unit's finished staging file, waiting for its commit.
struct Staged {
    produced: super::commit::Produced,
    pages: u64,
}

/// One try at the group: every active unit staged from one fetch. An error
/// shared by the pages is returned for the whole group; a unit's own error is
/// its entry in the result. Commits happen after, outside the deadline, so a
/// deadline never cuts one short.
async fn extract(
    ctx: &Ctx,
    group: &Group,
    active: &[usize],
    budget: &std::sync::Arc<WaitBudget>,
    listing: Option<&MemberListing>,
    repeated: &Watch,
    last_try: bool,
) -> Result<Vec<Result<Staged, UnitError>>, UnitError> {
    let extracted_at = Utc::now();
    let mut writers = Vec::with_capacity(active.len());
    for &i in active {
        let unit = &group.units[i];
        let watch = repeated.get(unit.spec.name).cloned().unwrap_or_default();
        writers.push(Writer::new(ctx, group, unit, extracted_at, watch)?);
    }
    let pager = Pager::new(
        ctx.client.clone(),
        group.account.scope(),
        budget.clone(),
        ctx.job.page_concurrency,
        ctx.job.max_pages,
    )
    .with_large_gates(ctx.large.clone());
    // On an error (or the deadline dropping this future) the writers' drop
    // removes their staging files: nothing of the group is published.
    match write::fetch(ctx, group, &mut writers, &pager, listing, last_try).await {
        Ok(()) | Err(UnitError::Abandoned) => {}
        Err(e) => return Err(e),
    }
    for w in &mut writers {
        match w.check_keys() {
            // Out of re-reads: the repeat fails the writer that saw it, not its group.
            Err(e @ UnitError::Repeat { .. }) if last_try => w.failed = Some(UnitError::Shared(e.to_string())),
            r => r?,
        }
    }
    let (final_at, is_final) = plan::is_final(&ctx.job, group.cycle, extracted_at);
    let finality = if is_final {
        Finality::Final
    } else {
        Finality::Provisional
    };
    let mut out = Vec::with_capacity(writers.len());
    for w in writers {
        let unit = w.unit;
        out.push(w.finish().map(|f| Staged {
            produced: super::commit::Produced {
                notes: f.notes.clone(),
                currency: f.currency.clone(),
                staged: f.staged,
                content_digest: f.content_digest,
                money_totals: f.money_totals,
                query_digest: plan::query_digest(&ctx.job, unit.spec, unit.cycle),
                extracted_at,
                final_at,
                finality,
            },
            pages: f.pages,
        }));
    }
    Ok(out)
}
