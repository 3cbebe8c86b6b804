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
use crate::source::datasets::{Derivation, Transform, TransformCtx, sub_customers};
use crate::source::paging::{Page, Pager};

/// Rows accumulated before a record batch is cut.
const BATCH_ROWS: usize = 8192;

/// How a unit reads its group's pages.
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
    role: Role,
    norm: Normalizer,
    file: StagedWriter,
    pub pages: u64,
    /// A failure of this unit alone; the group's pages go on for the others.
    pub failed: Option<UnitError>,
    /// Fan-out ids collected per root query.
    ids: Vec<Vec<String>>,
}

/// What a finished writer hands to the commit.
pub struct Finished {
    pub staged: StagedFile,
    pub content_digest: String,
    pub money_totals: std::collections::BTreeMap<String, String>,
    pub pages: u64,
}

impl<'u> Writer<'u> {
    pub fn new(ctx: &Ctx, group: &Group, unit: &'u Unit, extracted_at: DateTime<Utc>) -> Result<Self, UnitError> {
        let spec = unit.spec;
        let role = if spec.name == group.root.name {
            Role::Rows
        } else {
            match spec.derives {
                Some(Derivation::Rows { transform, .. }) => Role::Transformed(transform),
                Some(Derivation::FanOut { id_key, param, .. }) => Role::FanOut { id_key, param },
                None => unreachable!("a unit in another dataset's group is derived from it"),
            }
        };
        let lineage = Lineage {
            account_id: match &unit.account {
                super::AccountRef::Own => ctx.client.domain_id().unwrap_or("self").to_string(),
                super::AccountRef::Member(id) => id.clone(),
            },
            run_id: ctx.committer.run_id.clone(),
            extracted_at_micros: extracted_at.timestamp_micros(),
        };
        let schema = spec.schema();
        let norm = Normalizer::new(schema.clone(), spec.columns, spec.money_columns, lineage)
            .with_unique_key(spec.key_columns);
        // Staging names carry no text from the API or the command line.
        let staging = ctx.committer.layout.staging_dir().join(format!(
            "{}-{}-{}.parquet",
            spec.name,
            unit.cycle,
            uuid::Uuid::new_v4()
        ));
        let file = StagedWriter::create(staging, schema)?;
        Ok(Self {
            unit,
            role,
            norm,
            file,
            pages: 0,
            failed: None,
            ids: Vec::new(),
        })
    }

    fn alive(&self) -> bool {
        self.failed.is_none()
    }

    fn set_params(&mut self, params: &Params) {
        self.norm.set_params(
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_query_value()))
                .collect(),
        );
    }

    /// One row of a page this writer reads. A shared error (a repeated key:
    /// the pages moved) is returned; one of this writer's own is kept.
    fn push(&mut self, rec: &RawValue, tctx: &TransformCtx<'_>, offset: u64) -> Result<(), UnitError> {
        let r = match self.role {
            Role::Rows => self.norm.push(rec).map_err(|e| UnitError::data(offset, e)),
            Role::Transformed(t) => t(rec, tctx)
                .map_err(|reason| UnitError::Transform { offset, reason })
                .and_then(|row| self.norm.push(&row).map_err(|e| UnitError::data(offset, e))),
            Role::FanOut { id_key, .. } => {
                let id = serde_json::from_str::<std::collections::HashMap<&str, &RawValue>>(rec.get())
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

    /// Keeps an error of this writer's own; returns a shared one.
    fn keep(&mut self, r: Result<(), UnitError>) -> Result<(), UnitError> {
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
            pages: self.pages,
        })
    }
}

/// Feeds one page to every writer still alive.
fn feed(writers: &mut [Writer<'_>], page: &Page, tctx: &TransformCtx<'_>) -> Result<(), UnitError> {
    for w in writers.iter_mut() {
        if !w.alive() {
            continue;
        }
        if !matches!(w.role, Role::FanOut { .. }) {
            w.pages += 1;
        }
        for rec in &page.records {
            w.push(rec, tctx, page.offset)?;
            if !w.alive() {
                break;
            }
        }
    }
    if writers.iter().all(|w| !w.alive()) {
        return Err(UnitError::Abandoned);
    }
    Ok(())
}

/// Fetches the group's pages once into every writer, then the fan-out
/// queries of the writers that have them.
pub async fn fetch(
    ctx: &Ctx,
    group: &Group,
    writers: &mut [Writer<'_>],
    pager: &Pager<'_>,
    listing: Option<&MemberListing>,
) -> Result<(), UnitError> {
    let root = group.root;
    let mut queries = plan::queries(&ctx.job, root, group.cycle);
    if root.member_scoped() {
        for q in &mut queries {
            q.extend(group.account.params());
        }
    }
    let payer = ctx.client.domain_id();
    for params in &queries {
        for w in writers.iter_mut() {
            match w.role {
                Role::FanOut { .. } => w.ids.push(Vec::new()),
                _ => w.set_params(params),
            }
        }
        // The member listing made for the accounts is the sub_customers dataset:
        // it is not asked for twice.
        if let Some(l) = listing.filter(|_| root.api == Api(&sub_customers::API) && params.is_empty()) {
            let page = Page {
                offset: 0,
                total: l.records.len() as u64,
                currency: None,
                records: l.records.clone(),
            };
            let tctx = TransformCtx {
                cycle: group.cycle,
                currency: None,
                payer,
            };
            feed(writers, &page, &tctx)?;
            for w in writers.iter_mut() {
                w.pages = l.pages;
            }
            continue;
        }
        pager
            .page_through(root.api, params, root.page_size(), |page| {
                let tctx = TransformCtx {
                    cycle: group.cycle,
                    currency: page.currency.as_deref(),
                    payer,
                };
                feed(writers, &page, &tctx)
            })
            .await?;
    }
    for w in writers.iter_mut() {
        let Role::FanOut { param, .. } = w.role else { continue };
        let api = w.unit.spec.api;
        w.pages = 0;
        let ids = std::mem::take(&mut w.ids);
        for (base, ids) in queries.iter().zip(ids) {
            for id in ids {
                if !w.alive() {
                    break;
                }
                let mut q = base.clone();
                q.push((param, Param::Str(id)));
                w.set_params(&q);
                let stats = pager
                    .page_through(api, &q, api.max_limit(), |page| {
                        for rec in &page.records {
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
                    Ok(s) => w.pages += s.pages,
                    // The fan-out's own API failing fails this unit, not its source's.
                    Err(e) => match UnitError::from(e) {
                        UnitError::Drift(d) => return Err(UnitError::Drift(d)),
                        e => w.failed = Some(e),
                    },
                }
            }
        }
    }
    Ok(())
}
