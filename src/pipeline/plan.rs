//! What a run will do: datasets × cycles × accounts as units (one output file
//! each), grouped so that datasets made from the same pages share one fetch.

use chrono::{DateTime, Utc};

use super::accounts::AccountRef;
use super::report::UnitReport;
use super::{Job, Mode};
use crate::cycle::BillCycle;
use crate::sink::manifest::Manifest;
use crate::source::api::Params;
use crate::source::datasets::{DatasetSpec, QueryCtx, canonical_queries};

/// One output file: a dataset's cycle for one account.
pub struct Unit {
    pub spec: &'static DatasetSpec,
    pub cycle: BillCycle,
    pub account: AccountRef,
}

impl Unit {
    /// The unit's key in the checkpoint state.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.spec.name, self.cycle, self.account.key())
    }

    /// The report of this unit before it ran: "failed" until it proves otherwise.
    pub fn blank_report(&self) -> UnitReport {
        UnitReport::failed(
            self.spec.name.to_string(),
            self.cycle.to_string(),
            self.account.key().to_string(),
            self.spec.money_columns.first().copied(),
        )
    }
}

/// Units fed by the same pages: each stream (a root dataset's queries for one
/// cycle and account) is fetched once, and every unit of the group reads the
/// streams it needs from that one fetch.
pub struct Group {
    /// The datasets whose pages are fetched, in order: companions first, so a
    /// dataset knows whether its companion came before its own rows arrive.
    pub streams: Vec<&'static DatasetSpec>,
    pub cycle: BillCycle,
    pub account: AccountRef,
    pub units: Vec<Unit>,
}

impl Group {
    /// The first stream: the one named in logs.
    pub fn name(&self) -> &'static str {
        self.streams.last().map_or("", |s| s.name)
    }

    pub fn stream_index(&self, root: &DatasetSpec) -> Option<usize> {
        self.streams.iter().position(|s| s.name == root.name)
    }
}

/// The dataset whose pages a dataset is made from (following derivations).
pub fn root_of(spec: &'static DatasetSpec) -> &'static DatasetSpec {
    match spec.derives {
        Some(d) => root_of(d.from()),
        None => spec,
    }
}

/// The streams a dataset reads: its companion's root first, then its own root.
pub fn streams_of(spec: &'static DatasetSpec) -> Vec<&'static DatasetSpec> {
    let mut v = Vec::new();
    if let Some(c) = spec.companion {
        v.push(root_of(c.from));
    }
    v.push(root_of(spec));
    v
}

/// The cycles of one dataset: those asked for, plus (nightly) every partition
/// of that dataset still provisional; a snapshot dataset has only the current one.
pub fn dataset_cycles(job: &Job, spec: &'static DatasetSpec, manifest: &Manifest, now: BillCycle) -> Vec<BillCycle> {
    if spec.snapshot {
        return vec![now];
    }
    let mut cycles: Vec<BillCycle> = job.cycles.clone();
    if job.mode == Mode::Nightly {
        cycles.extend(
            manifest
                .provisional_cycles()
                .filter_map(|c| c.parse::<BillCycle>().ok()),
        );
    }
    // Partitions of another schema version are rewritten whatever the mode:
    // one run brings the dataset to one shape.
    let stale: Vec<BillCycle> = manifest
        .stale_cycles(spec.version)
        .filter_map(|c| c.parse::<BillCycle>().ok())
        .filter(|c| !cycles.contains(c))
        .collect();
    // Not past what a source keeps: extracted again, FOCUS of a month older
    // than the cost center's 18 would lose its amortisation.
    let kept = streams_of(spec)
        .iter()
        .filter_map(|s| s.max_age_months)
        .min()
        .map(|m| oldest_cycle(now, m));
    let (stale, too_old): (Vec<BillCycle>, Vec<BillCycle>) =
        stale.into_iter().partition(|c| kept.is_none_or(|oldest| *c >= oldest));
    if let Some(first) = too_old.first() {
        tracing::warn!(
            dataset = spec.name,
            "{} partitions from {first} written with another schema version are left as they are: \
             their sources no longer answer for them",
            too_old.len()
        );
    }
    if !stale.is_empty() {
        tracing::info!(
            dataset = spec.name,
            "{} more {} rewritten: written with another schema version ({}…)",
            stale.len(),
            if stale.len() == 1 { "partition" } else { "partitions" },
            stale[0]
        );
        cycles.extend(stale);
    }
    cycles.sort();
    cycles.dedup();
    if let Some(months) = spec.max_age_months {
        let oldest = oldest_cycle(now, months);
        let too_old = cycles.iter().filter(|c| **c < oldest).count();
        if too_old > 0 {
            tracing::warn!(
                dataset = spec.name,
                "{too_old} cycles before {oldest} skipped: the API keeps the last {months} months"
            );
            cycles.retain(|c| *c >= oldest);
        }
    }
    cycles
}

/// The oldest cycle an API that keeps `months` months (this one included) answers for.
pub fn oldest_cycle(now: BillCycle, months: u32) -> BillCycle {
    (1..months).fold(now, |c, _| c.pred())
}

/// Groups the units of `job` over `accounts`, in catalogue, cycle and account
/// order. Datasets that share a stream (directly, or through a chain) land in
/// one group per cycle and account.
pub fn groups(
    job: &Job,
    accounts: &[AccountRef],
    cycles_of: impl Fn(&'static DatasetSpec) -> Vec<BillCycle>,
) -> Vec<Group> {
    // Components of datasets linked by shared streams.
    let mut comps: Vec<Vec<&'static DatasetSpec>> = Vec::new();
    for &spec in &job.datasets {
        let mine = streams_of(spec);
        let (linked, rest): (Vec<_>, Vec<_>) = comps.into_iter().partition(|c| {
            c.iter()
                .any(|d| streams_of(d).iter().any(|s| mine.iter().any(|m| m.name == s.name)))
        });
        comps = rest;
        let mut merged: Vec<&'static DatasetSpec> = linked.into_iter().flatten().collect();
        merged.push(spec);
        comps.push(merged);
    }
    let comp_of = |spec: &DatasetSpec| comps.iter().position(|c| c.iter().any(|d| d.name == spec.name));
    let mut groups: Vec<(usize, Group)> = Vec::new();
    for &spec in &job.datasets {
        let comp = comp_of(spec).expect("every dataset is in a component");
        let root = root_of(spec);
        for cycle in cycles_of(spec) {
            for account in accounts {
                if !root.member_scoped() && *account != AccountRef::Own {
                    continue;
                }
                let unit = Unit {
                    spec,
                    cycle,
                    account: account.clone(),
                };
                match groups
                    .iter_mut()
                    .find(|(c, g)| *c == comp && g.cycle == cycle && g.account == *account)
                {
                    Some((_, g)) => g.units.push(unit),
                    None => groups.push((
                        comp,
                        Group {
                            streams: Vec::new(),
                            cycle,
                            account: account.clone(),
                            units: vec![unit],
                        },
                    )),
                }
            }
        }
    }
    for (_, g) in &mut groups {
        // Companion streams first, then the others, each in catalogue order.
        let mut companions: Vec<&'static DatasetSpec> = Vec::new();
        let mut mains: Vec<&'static DatasetSpec> = Vec::new();
        for u in &g.units {
            let s = streams_of(u.spec);
            let (own, before) = s.split_last().expect("a dataset has a stream");
            for c in before {
                if !companions.iter().any(|x| x.name == c.name) {
                    companions.push(c);
                }
            }
            if !mains.iter().any(|x| x.name == own.name) {
                mains.push(own);
            }
        }
        mains.retain(|m| !companions.iter().any(|c| c.name == m.name));
        g.streams = companions.into_iter().chain(mains).collect();
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

/// The queries of `spec` for one cycle, with its options.
pub fn queries(job: &Job, spec: &DatasetSpec, cycle: BillCycle) -> Vec<Params> {
    let options = job.options_of(spec);
    (spec.queries)(&QueryCtx {
        cycle,
        options: &options,
    })
}

/// Identifies what was asked of the API for a unit (statistic_type, windows…).
pub fn query_digest(job: &Job, spec: &DatasetSpec, cycle: BillCycle) -> String {
    let text = canonical_queries(&queries(job, spec, cycle));
    crate::source::signer::sha256_hex(text.as_bytes())[..16].to_string()
}

/// The digest earlier versions wrote (of the queries' Debug text): a final
/// file asked for the same way is not extracted again after an upgrade.
pub fn legacy_query_digest(job: &Job, spec: &DatasetSpec, cycle: BillCycle) -> String {
    let text = format!("{:?}", queries(job, spec, cycle));
    crate::source::signer::sha256_hex(text.as_bytes())[..16].to_string()
}

/// The cycle's finality time and whether a file extracted at `at` is final.
pub fn is_final(job: &Job, cycle: BillCycle, at: DateTime<Utc>) -> (DateTime<Utc>, bool) {
    let final_at = cycle.final_at(job.grace);
    (final_at, at >= final_at)
}

/// What identifies a job for resuming: same command, endpoint, accounts
/// setting, options, datasets and cycles. The member list is not part of it:
/// units start before the listing returns, and a member added meanwhile is
/// simply one more unit of the same job.
pub fn fingerprint_of(job: &Job, cycles: &[(&'static str, Vec<BillCycle>)]) -> String {
    let mut parts = vec![
        job.command.clone(),
        job.endpoint.clone(),
        format!("{:?}", job.accounts),
        format!("force={} grace={}", job.force, job.grace),
    ];
    for (name, o) in &job.options {
        let set: Vec<String> = o.iter().map(|(k, v)| format!("{name}.{k}={v}")).collect();
        parts.push(set.join(","));
    }
    for (name, cs) in cycles {
        let cs: Vec<String> = cs.iter().map(ToString::to_string).collect();
        parts.push(format!("{name}:{}", cs.join(",")));
    }
    crate::state::fingerprint(&parts)
}

/// The cycles of `spec` in a [`cycles_of_job`] list.
pub fn cycles_in(cycles: &[(&'static str, Vec<BillCycle>)], spec: &DatasetSpec) -> Vec<BillCycle> {
    cycles
        .iter()
        .find(|(n, _)| *n == spec.name)
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

/// Each dataset's cycles (see [`dataset_cycles`]), in the job's order.
pub fn cycles_of_job(
    job: &Job,
    manifests: &std::collections::HashMap<&'static str, Manifest>,
    now: BillCycle,
) -> Vec<(&'static str, Vec<BillCycle>)> {
    job.datasets
        .iter()
        .map(|spec| (spec.name, dataset_cycles(job, spec, &manifests[spec.name], now)))
        .collect()
}
