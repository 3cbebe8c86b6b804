//! Rows → normaliser → staged Parquet file, for every unit of a group, from
//! one fetch of the root dataset's pages: each page is requested once however
//! many datasets are made from it.

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use super::Ctx;
use super::accounts::MemberListing;
use super::error::UnitError;
use super::plan::{self, Group, Unit};
use crate::model::{Lineage, Normalizer};
use crate::sink::parquet::{StagedFile, StagedWriter};
use crate::source::api::{Api, Param, Params};
use crate::source::datasets::{DatasetSpec, Derivation, Transform, TransformCtx, sub_customers};
use crate::source::paging::{Page, Pager};

/// Rows accumulated before a record batch is cut: Arrow builders for ~60
/// columns hold about 1 KB a row, so a small batch keeps a writer's memory
/// small; the Parquet writer pages and groups rows on its own.
const BATCH_ROWS: usize = 2048;

/// How a unit reads one of its group's streams.
#[derive(Clone, Copy)]
enum Role {
    /// The root's rows as they are.
    Rows,
    /// The root's rows rewritten.
    Transformed(Transform),
    /// One query of its own API per root row, keyed by the row's `id_key`.
    FanOut { id_key: &'static str, param: &'static str },
}

/// One unit's output in the making.
pub struct Writer<'u> {
    pub unit: &'u Unit,
    /// (stream index, role, optional): what the unit reads, in stream order.
    reads: Vec<(usize, Role, bool)>,
    norm: Normalizer,
    file: StagedWriter,
    extracted_at: DateTime<Utc>,
    pub pages: u64,
    /// A failure of this unit alone; the group's pages go on for the others.
    pub failed: Option<UnitError>,
    /// Fan-out ids collected per root query.
    ids: Vec<Vec<String>>,
    /// Whether the unit's companion was read (None: it has none).
    companion: Option<bool>,
    /// What a reader of the output should know (a companion that was missing).
    pub notes: Vec<String>,
    /// Keys of this unit that repeated on an earlier read of the group, with
    /// the rows that held them.
    watch: super::unit::Watched,
    /// The currency its own pages named (every one must name the same).
    currency: Option<String>,
}

/// What a finished writer hands to the commit.
pub struct Finished {
    pub staged: StagedFile,
    pub content_digest: String,
    pub money_totals: std::collections::BTreeMap<String, String>,
    /// The currency its pages named.
    pub currency: Option<String>,
    pub pages: u64,
    pub notes: Vec<String>,
}

impl<'u> Writer<'u> {
    /// `watch`: keys of this unit that repeated on an earlier read; if one
    /// repeats again it is no drift but rows the key cannot tell apart.
    pub fn new(
        ctx: &Ctx,
        group: &Group,
        unit: &'u Unit,
        extracted_at: DateTime<Utc>,
        watch: super::unit::Watched,
    ) -> Result<Self, UnitError> {
        let spec = unit.spec;
        let own = group
            .stream_index(plan::root_of(spec))
            .expect("a unit's own stream is in its group");
        let role = if spec.name == group.streams[own].name {
            Role::Rows
        } else {
            match spec.derives {
                Some(Derivation::Rows { transform, .. }) => Role::Transformed(transform),
                Some(Derivation::FanOut { id_key, param, .. }) => Role::FanOut { id_key, param },
                None => unreachable!("a unit in another dataset's stream is derived from it"),
            }
        };
        let mut reads = Vec::new();
        if let Some(c) = spec.companion {
            let i = group
                .stream_index(plan::root_of(c.from))
                .expect("a companion's stream is in the group");
            reads.push((i, Role::Transformed(c.transform), true));
        }
        reads.push((own, role, false));
        let (mut norm, file) = Self::outputs(ctx, unit, extracted_at)?;
        norm.watch(watch.keys().copied());
        Ok(Self {
            unit,
            reads,
            norm,
            file,
            extracted_at,
            pages: 0,
            failed: None,
            ids: Vec::new(),
            companion: spec.companion.map(|_| false),
            notes: Vec::new(),
            watch,
            currency: None,
        })
    }

    /// A fresh normaliser and staging file for the unit.
    fn outputs(ctx: &Ctx, unit: &Unit, extracted_at: DateTime<Utc>) -> Result<(Normalizer, StagedWriter), UnitError> {
        let spec = unit.spec;
        let lineage = Lineage {
            account_id: match &unit.account {
                super::AccountRef::Own => ctx.client.domain_id().unwrap_or("self").to_string(),
                super::AccountRef::Member(id) => id.clone(),
            },
            run_id: ctx.committer.run_id.clone(),
            extracted_at_micros: extracted_at.timestamp_micros(),
        };
        let schema = spec.schema();
        // Staging names carry no text from the API or the command line.
        let staging = ctx.committer.out.staging_file(&format!(
            "{}-{}-{}.parquet",
            spec.name,
            unit.cycle,
            uuid::Uuid::new_v4()
        ));
        let norm = Normalizer::new(schema.clone(), spec.columns, spec.money_columns, lineage)
            .with_unique_key(&spec.key_columns(), staging.parent().map(Into::into))
            .pin(spec.partition_key, &unit.cycle.to_string());
        let file = StagedWriter::create(staging, schema)?;
        Ok((norm, file))
    }

    fn alive(&self) -> bool {
        self.failed.is_none()
    }

    /// This writer's role on stream `si`, if it reads it.
    fn role(&self, si: usize) -> Option<(Role, bool)> {
        self.reads.iter().find(|(i, _, _)| *i == si).map(|(_, r, o)| (*r, *o))
    }

    fn reads(&self, si: usize) -> bool {
        self.alive() && self.role(si).is_some()
    }

    fn set_params(&mut self, params: &Params) {
        self.norm.set_params(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_query_value()))
                .collect(),
        );
    }

    /// One row of stream `si`. A shared error (a repeated key: the pages
    /// moved) is returned; one of this writer's own is kept.
    fn push(&mut self, si: usize, rec: &str, tctx: &TransformCtx<'_>, offset: u64) -> Result<(), UnitError> {
        let Some((role, optional)) = self.role(si) else {
            return Ok(());
        };
        // A repeated key in a companion's rewritten rows is this writer's own
        // problem, not the pages moving (its own stream says that).
        let own = |offset: u64, e: crate::model::ModelError| {
            if optional {
                UnitError::Data { offset, source: e }
            } else {
                UnitError::data(offset, e)
            }
        };
        let tctx = TransformCtx {
            companion: self.companion.unwrap_or(false),
            ..*tctx
        };
        self.norm.set_companion(optional);
        let r = match role {
            Role::Rows => self.norm.push(rec).map_err(|e| UnitError::data(offset, e)),
            Role::Transformed(t) => t(rec, &tctx)
                .map_err(|reason| UnitError::Transform { offset, reason })
                .and_then(|row| match row {
                    Some(row) => self.norm.push(row.get()).map_err(|e| own(offset, e)),
                    None => Ok(()),
                }),
            Role::FanOut { id_key, .. } => {
                let id = serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(rec)
                    .ok()
                    .and_then(|row| {
                        row.get(id_key)
                            .and_then(|v| crate::model::value::string(v).ok().flatten())
                    })
                    .filter(|id| !id.is_empty());
                match id {
                    Some(id) => {
                        self.ids.last_mut().expect("a query started").push(id);
                        Ok(())
                    }
                    None => Err(UnitError::FanOut(format!("a row without {id_key}"))),
                }
            }
        };
        self.keep(r)?;
        self.flush(offset)
    }

    /// Records the currency of a page of its own; a unit whose pages name two
    /// currencies fails (its totals would add them up).
    fn note_currency(&mut self, currency: Option<&str>, offset: u64) -> Result<(), UnitError> {
        let Some(c) = currency.filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        match &self.currency {
            None => self.currency = Some(c.to_string()),
            Some(had) if had != c => {
                let e = UnitError::Transform {
                    offset,
                    reason: format!(
                        "the API answered in {had} and then in {c} within one query: amounts in two currencies are never added up"
                    ),
                };
                return self.keep(Err(e));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Keeps an error of this writer's own; returns a shared one. A repeated
    /// key is shared (the pages moved) unless it repeated on the last read too.
    fn keep(&mut self, r: Result<(), UnitError>) -> Result<(), UnitError> {
        let r = match r {
            // The same key between the same rows as on the last read: no drift.
            Err(UnitError::Repeat { hash, rows, detail, .. }) if self.watch.get(&hash) == Some(&rows) => {
                Err(UnitError::KeyNotUnique(self.indistinct(hash, &detail)))
            }
            Err(UnitError::Repeat { hash, rows, detail, .. }) => Err(UnitError::Repeat {
                dataset: Some(self.unit.spec.name),
                hash,
                rows,
                detail,
            }),
            other => other,
        };
        match r {
            Err(e) if !e.is_shared() || matches!(e, UnitError::FanOut(_)) => {
                self.failed = Some(e);
                Ok(())
            }
            other => other,
        }
    }

    fn flush(&mut self, offset: u64) -> Result<(), UnitError> {
        if self.alive() && self.norm.pending() >= BATCH_ROWS {
            let r = self
                .norm
                .take_batch()
                .map_err(|e| UnitError::data(offset, e))
                .and_then(|b| self.file.write(&b).map_err(UnitError::from));
            self.keep(r)?;
        }
        Ok(())
    }

    /// The companion stream could not be read: start the output over without
    /// it (nothing else has been written yet: companions come first).
    fn without_companion(&mut self, ctx: &Ctx, why: &str) -> Result<(), UnitError> {
        let (mut norm, file) = Self::outputs(ctx, self.unit, self.extracted_at)?;
        norm.watch(self.watch.keys().copied());
        self.norm = norm;
        self.file = file;
        self.companion = Some(false);
        self.notes.push(format!(
            "made without {}: {why}",
            self.unit.spec.companion.map_or("its companion", |c| c.from.name)
        ));
        Ok(())
    }

    /// Looks for a repeated key over all the unit's rows. A repeat among its
    /// own pages means they moved (returned, for a restart); one involving a
    /// companion's rows is this writer's own failure.
    pub fn check_keys(&mut self) -> Result<(), UnitError> {
        if !self.alive() {
            return Ok(());
        }
        let r = match self.norm.check_keys() {
            Ok(()) => Ok(()),
            Err(crate::model::ModelError::Duplicate {
                companion: false,
                hash,
                row,
                first,
                key,
            }) => Err(UnitError::Repeat {
                dataset: None,
                hash,
                rows: (first, row),
                detail: format!("row {row} repeats the key ({key}) of row {first}"),
            }),
            Err(e) => Err(UnitError::Keys(e)),
        };
        self.keep(r)
    }

    /// The one line that says a key repeated twice the same way.
    fn indistinct(&self, hash: u64, detail: &str) -> String {
        let name = self.unit.spec.name;
        match self.norm.indistinct(hash) {
            Some(i) => format!(
                "the API returned {} rows that {name}'s key cannot tell apart: ({}); {}",
                i.rows,
                i.key,
                if i.differ.is_empty() {
                    "they are identical".to_string()
                } else {
                    format!("they differ in {}", i.differ.join(", "))
                }
            ),
            None => format!("the API returned rows that {name}'s key cannot tell apart, on two reads: {detail}"),
        }
    }

    pub fn finish(mut self) -> Result<Finished, UnitError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let batch = self.norm.take_batch().map_err(UnitError::Batch)?;
        self.file.write(&batch)?;
        let staged = self.file.finish()?;
        if !self.norm.unknown_keys.is_empty() {
            tracing::warn!(
                dataset = self.unit.spec.name,
                "the API returned fields this version does not know (kept out of the output): {:?}",
                self.norm.unknown_keys
            );
        }
        Ok(Finished {
            staged,
            content_digest: self.norm.content_digest(),
            money_totals: self
                .norm
                .money_totals()
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect(),
            currency: self.currency,
            pages: self.pages,
            notes: self.notes,
        })
    }
}

/// Feeds one page of stream `si` to every writer that reads it.
fn feed(writers: &mut [Writer<'_>], si: usize, page: &Page, tctx: &TransformCtx<'_>) -> Result<(), UnitError> {
    for w in writers.iter_mut() {
        if !w.reads(si) {
            continue;
        }
        if !matches!(w.role(si), Some((Role::FanOut { .. }, _))) {
            w.pages += 1;
        }
        // Every page of its own names the currency, an empty one too.
        if matches!(w.role(si), Some((_, false))) {
            w.note_currency(tctx.currency, page.offset)?;
            if !w.alive() {
                continue;
            }
        }
        for rec in page.records() {
            w.push(si, rec, tctx, page.offset)?;
            if !w.alive() {
                break;
            }
        }
    }
    if !writers.iter().any(|w| w.reads(si)) {
        return Err(UnitError::Abandoned);
    }
    Ok(())
}

/// Fetches each of the group's streams once into every writer that reads it;
/// a fan-out asks for each source query's ids as soon as that query is read.
/// Only a change of
/// the data under the pages (drift) is returned for the whole group, so it is
/// read again; every other failure is kept by the writers it concerns. On the
/// `last_try`, drift too is kept by the writers of the stream it hit: a
/// companion stream that keeps moving never fails the datasets that only
/// borrow it.
pub async fn fetch(
    ctx: &Ctx,
    group: &Group,
    writers: &mut [Writer<'_>],
    pager: &Pager,
    listing: Option<&MemberListing>,
    last_try: bool,
) -> Result<(), UnitError> {
    let payer = ctx.client.domain_id();
    let now = crate::cycle::BillCycle::containing(Utc::now());
    for (si, root) in group.streams.iter().enumerate() {
        let mut queries = plan::queries(&ctx.job, root, group.cycle);
        if root.member_scoped() {
            for q in &mut queries {
                q.extend(group.account.params());
            }
        }
        if !writers.iter().any(|w| w.reads(si)) {
            continue;
        }
        let too_old = root
            .max_age_months
            .is_some_and(|m| group.cycle < plan::oldest_cycle(now, m));
        let outcome = if too_old {
            Err(UnitError::Shared(format!(
                "{} keeps the last {} months only",
                root.api,
                root.max_age_months.unwrap_or_default()
            )))
        } else {
            stream(group, si, root, &queries, writers, pager, listing, payer, last_try).await
        };
        match outcome {
            Ok(()) | Err(UnitError::Abandoned) => {
                for w in writers.iter_mut() {
                    if matches!(w.role(si), Some((_, true))) && w.alive() {
                        w.companion = Some(true);
                    }
                }
            }
            Err(e @ (UnitError::Drift(_) | UnitError::Repeat { .. })) if !last_try => return Err(e),
            Err(e) => {
                let why = e.to_string();
                for w in writers.iter_mut().filter(|w| w.reads(si)) {
                    match w.role(si) {
                        Some((_, true)) => w.without_companion(ctx, &why)?,
                        _ => w.failed = Some(UnitError::Shared(why.clone())),
                    }
                }
            }
        }
    }
    Ok(())
}

/// One query of the fan-out's API per id of a source query (`base` plus the
/// id), into writer `w`. The next id's first page is asked for while this
/// one pages, so the fan-out's API is not left idle between ids.
async fn fan_out(
    w: &mut Writer<'_>,
    pager: &Pager,
    base: &Params,
    ids: Vec<String>,
    last_try: bool,
) -> Result<(), UnitError> {
    let Some(&(_, Role::FanOut { param, .. }, _)) = w.reads.iter().find(|r| matches!(r.1, Role::FanOut { .. })) else {
        return Ok(());
    };
    let api = w.unit.spec.api;
    // Fan-out rows are the unit's own, never a companion's.
    w.norm.set_companion(false);
    let query = |id: &str| {
        let mut q = base.clone();
        q.push((param, Param::Str(id.to_string())));
        q
    };
    let mut next = None;
    for (k, id) in ids.iter().enumerate() {
        if !w.alive() {
            break;
        }
        let q = query(id);
        let then = ids.get(k + 1).map(|id| query(id));
        w.set_params(&q);
        let stats = pager
            .page_through_from(api, &q, api.max_limit(), next.take(), then.as_ref(), |page| {
                for rec in page.records() {
                    let r = w.norm.push(rec).map_err(|e| UnitError::data(page.offset, e));
                    w.keep(r)?;
                    if !w.alive() {
                        break;
                    }
                }
                w.flush(page.offset)
            })
            .await;
        match stats {
            Ok((s, prefetched)) => {
                w.pages += s.pages;
                next = prefetched;
            }
            // The fan-out's own API failing fails this unit, not its source's.
            Err(e) => match UnitError::from(e) {
                e @ (UnitError::Drift(_) | UnitError::Repeat { .. }) if !last_try => return Err(e),
                e @ (UnitError::Drift(_) | UnitError::Repeat { .. }) => {
                    w.failed = Some(UnitError::Shared(e.to_string()))
                }
                e => w.failed = Some(e),
            },
        }
    }
    Ok(())
}

/// Pages every query of stream `si` into the writers that read it.
#[allow(clippy::too_many_arguments)]
async fn stream(
    group: &Group,
    si: usize,
    root: &DatasetSpec,
    queries: &[Params],
    writers: &mut [Writer<'_>],
    pager: &Pager,
    listing: Option<&MemberListing>,
    payer: Option<&str>,
    last_try: bool,
) -> Result<(), UnitError> {
    // The member listing made for the accounts is the sub_customers dataset:
    // it is not asked for twice.
    let listed = |params: &Params| listing.filter(|_| root.api == Api(&sub_customers::API) && params.is_empty());
    // The next query's first page is asked for as this one's last page is,
    // unless a fan-out runs in between (it would be an old page by then).
    let fans_out = writers
        .iter()
        .any(|w| matches!(w.role(si), Some((Role::FanOut { .. }, _))));
    let mut next = None;
    for (k, params) in queries.iter().enumerate() {
        let first = next.take();
        let then = queries.get(k + 1).filter(|q| !fans_out && listed(q).is_none());
        for w in writers.iter_mut().filter(|w| w.reads(si)) {
            match w.role(si) {
                Some((Role::FanOut { .. }, _)) => w.ids.push(Vec::new()),
                _ => w.set_params(params),
            }
        }
        if let Some(l) = listed(params) {
            let page = Page::from_rows(0, l.records.len() as u64, &l.records);
            let tctx = TransformCtx {
                cycle: group.cycle,
                currency: None,
                payer,
                companion: false,
            };
            feed(writers, si, &page, &tctx)?;
            for w in writers.iter_mut().filter(|w| w.reads(si)) {
                w.pages = l.pages;
            }
            continue;
        }
        let (_, prefetched) = pager
            .page_through_from(root.api, params, root.page_size(), first, then, |page| {
                let tctx = TransformCtx {
                    cycle: group.cycle,
                    currency: page.currency.as_deref(),
                    payer,
                    companion: false,
                };
                feed(writers, si, &page, &tctx)
            })
            .await?;
        next = prefetched;
        // A fan-out asks for this query's ids now, not after the last query:
        // its API (the critical one of a 95th-percentile month) starts early.
        for w in writers
            .iter_mut()
            .filter(|w| matches!(w.role(si), Some((Role::FanOut { .. }, _))))
        {
            let ids = w.ids.last_mut().map(std::mem::take).unwrap_or_default();
            fan_out(w, pager, params, ids, last_try).await?;
        }
    }
    Ok(())
}
