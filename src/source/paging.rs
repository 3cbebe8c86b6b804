//! Offset paging shared by every dataset.
//!
//! The first page gives `total_count`; the remaining offsets are then fetched
//! concurrently (the rate limiter, not latency, bounds the run) and handed to
//! the consumer in offset order, so output is deterministic. If the total
//! changes or a page comes back short, the data moved under us: the unit is
//! restarted rather than published with gaps or duplicates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::api::{Api, Param, Params};
use super::client::{BssClient, Scope, WaitBudget};
use super::error::SourceError;

/// One parsed page: the rows stay raw JSON until the normaliser reads them,
/// as spans of the answer's text (no copy per row).
#[derive(Debug)]
pub struct Page {
    pub offset: u64,
    pub total: u64,
    /// The answer's `currency`, when it has one.
    pub currency: Option<String>,
    body: String,
    rows: Vec<(u32, u32)>,
}

impl Page {
    /// A page of rows read before (the member listing, reused as a dataset).
    pub fn from_rows(offset: u64, total: u64, rows: &[String]) -> Page {
        let mut body = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum());
        let mut spans = Vec::with_capacity(rows.len());
        for r in rows {
            let start = body.len() as u32;
            body.push_str(r);
            spans.push((start, body.len() as u32));
            body.push('\n');
        }
        Page {
            offset,
            total,
            currency: None,
            body,
            rows: spans,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Each row's JSON text, in order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.rows.iter().map(|&(a, b)| &self.body[a as usize..b as usize])
    }
}

/// Parses a list response: `total_count` plus the API's list key, in one pass.
pub fn parse_page(body: String, api: Api, offset: u64) -> Result<Page, String> {
    let seed = PageSeed {
        list_key: api.list_key(),
    };
    let mut de = serde_json::Deserializer::from_str(&body);
    let parsed = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|p| de.end().map(|_| p));
    let (total, records, has_list, currency) = parsed.map_err(|e| {
        let start: String = body.chars().take(60).collect();
        format!("{e} (body starts {start:?})")
    })?;
    let total = total.ok_or("no total_count in the answer")?;
    // The rows were borrowed from `body` (read from a &str): keep their place in it.
    let base = body.as_ptr() as usize;
    let rows: Vec<(u32, u32)> = records
        .iter()
        .map(|r| {
            let start = r.get().as_ptr() as usize - base;
            (start as u32, (start + r.get().len()) as u32)
        })
        .collect();
    drop(records);
    if rows.is_empty() && expected_rows(total, offset, u64::MAX) > 0 && !has_list {
        return Err(format!(
            "total_count is {total} but the answer has no {}",
            api.list_key()
        ));
    }
    Ok(Page {
        offset,
        total,
        currency,
        body,
        rows,
    })
}

/// (total_count, rows, whether the list key was present, currency).
type PageParts<'de> = (Option<u64>, Vec<&'de RawValue>, bool, Option<String>);

struct PageSeed {
    list_key: &'static str,
}

impl<'de> serde::de::DeserializeSeed<'de> for PageSeed {
    type Value = PageParts<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<PageParts<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for PageSeed {
    type Value = PageParts<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object with total_count")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<PageParts<'de>, A::Error> {
        let (mut total, mut records, mut has_list, mut currency) = (None, Vec::new(), false, None);
        while let Some(key) = map.next_key::<crate::model::Key<'de>>()? {
            match key.as_str() {
                "total_count" => total = Some(map.next_value::<u64>()?),
                "currency" => currency = map.next_value::<Option<String>>()?,
                k if k == self.list_key => {
                    has_list = true;
                    records = map.next_value::<Option<Vec<&'de RawValue>>>()?.unwrap_or_default();
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok((total, records, has_list, currency))
    }
}

fn expected_rows(total: u64, offset: u64, limit: u64) -> u64 {
    total.saturating_sub(offset).min(limit)
}

#[derive(Debug, thiserror::Error)]
pub enum PagingError<E> {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("data changed while paging ({0}); the unit must be restarted")]
    Drift(String),
    /// A `total_count` that would take more pages than a unit may fetch: a
    /// lying or broken server must not keep a run paging for ever.
    #[error("{api}: total_count {total} needs {pages} pages, more than the {max} a unit may fetch (limits.max_pages)")]
    TooManyPages {
        api: &'static str,
        total: u64,
        pages: u64,
        max: u64,
    },
    #[error(transparent)]
    Consumer(E),
}

#[derive(Debug, Default, Clone, Copy)]
pub struct PagingStats {
    pub pages: u64,
    pub rows: u64,
}

/// What every query of one unit shares: the client, the unit's retry wait
/// budget, and its page allowance. Owned (`Arc`s), so the requests can run in
/// a task of their own.
pub struct Pager {
    pub client: Arc<BssClient>,
    /// Whose bill the unit's requests ask for.
    pub scope: Scope,
    pub budget: Arc<WaitBudget>,
    pub concurrency: usize,
    /// Pages the unit may still fetch, over all its queries.
    pub max_pages: u64,
    pub pages_used: AtomicU64,
    /// Per API: held from the first query of more than one page until that
    /// query's last page is asked for.
    large: Option<Arc<std::collections::HashMap<Api, Arc<Semaphore>>>>,
    permit: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

/// A query's first page, asked for ahead of its turn (dropped: stopped).
pub struct FirstPage(PageTask);

/// A page request running as a task of its own: it goes on while the unit
/// parses and writes earlier pages, and it is stopped when dropped (an error,
/// a deadline), so no request of a unit that has ended keeps running.
struct PageTask(tokio::task::JoinHandle<Result<Page, SourceError>>);

impl std::future::Future for PageTask {
    type Output = Result<Page, SourceError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(page) => page,
            // A panic is the unit's, as if the request had run inline.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(SourceError::Halted(format!("a page request was stopped: {e}"))),
        })
    }
}

impl Drop for PageTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn fetch_page(
    client: &BssClient,
    api: Api,
    scope: Scope,
    base: &Params,
    offset: u64,
    limit: u32,
    budget: &WaitBudget,
) -> Result<Page, SourceError> {
    let mut params = base.clone();
    params.push(("offset", Param::Int(offset as i64)));
    params.push(("limit", Param::Int(i64::from(limit))));
    client
        .call(api, scope, &params, budget, |body| parse_page(body, api, offset))
        .await
}

impl Pager {
    pub fn new(
        client: Arc<BssClient>,
        scope: Scope,
        budget: Arc<WaitBudget>,
        concurrency: usize,
        max_pages: u64,
    ) -> Self {
        Self {
            client,
            scope,
            budget,
            concurrency,
            max_pages,
            pages_used: AtomicU64::new(0),
            large: None,
            permit: Arc::new(Mutex::new(None)),
        }
    }

    /// Makes a query of more than one page wait for one of its API's
    /// `gates` permits (a large unit) before fetching past its first page.
    pub fn with_large_gates(mut self, gates: Arc<std::collections::HashMap<Api, Arc<Semaphore>>>) -> Self {
        self.large = Some(gates);
        self
    }

    async fn hold_large(&self, api: Api) {
        let Some(gate) = self.large.as_ref().and_then(|g| g.get(&api)) else {
            return;
        };
        if self.permit.lock().expect("permit lock").is_some() {
            return;
        }
        let permit = gate.clone().acquire_owned().await.expect("the gate is never closed");
        *self.permit.lock().expect("permit lock") = Some(permit);
    }

    /// Fetches every page of one query and feeds them, in offset order, to `sink`.
    ///
    /// After the first page, each request runs as a task of its own (at most
    /// `concurrency` at once, handed over in offset order): parsing and
    /// writing a page, or closing a row group, never holds up the requests
    /// already asked for, so the quota stays busy.
    pub async fn page_through<E>(
        &self,
        api: Api,
        base: &Params,
        limit: u32,
        sink: impl FnMut(Page) -> Result<(), E>,
    ) -> Result<PagingStats, PagingError<E>> {
        self.page_through_from(api, base, limit, None, None, sink)
            .await
            .map(|(stats, _)| stats)
    }

    /// Starts the request of a query's first page now, as a task of its own:
    /// a fan-out asks the next query's first page while the current one pages.
    pub fn first_page(&self, api: Api, base: &Params, limit: u32) -> FirstPage {
        let (client, budget, base, scope) = (self.client.clone(), self.budget.clone(), base.clone(), self.scope);
        FirstPage(PageTask(tokio::spawn(async move {
            fetch_page(&client, api, scope, &base, 0, limit, &budget).await
        })))
    }

    /// [`Self::page_through`], with the first page already asked for by
    /// [`Self::first_page`] (same `api`, `base` and `limit`). With `then`, the
    /// first page of that next query (same `api` and `limit`) is asked for
    /// once this query's last page is, and returned: the API stays busy
    /// between queries, and no page is much older than the others of its query
    /// (what the drift checks compare).
    pub async fn page_through_from<E>(
        &self,
        api: Api,
        base: &Params,
        limit: u32,
        first: Option<FirstPage>,
        then: Option<&Params>,
        mut sink: impl FnMut(Page) -> Result<(), E>,
    ) -> Result<(PagingStats, Option<FirstPage>), PagingError<E>> {
        let scope = self.scope;
        let first = match first {
            Some(FirstPage(task)) => task.await?,
            None => fetch_page(&self.client, api, scope, base, 0, limit, &self.budget).await?,
        };
        let total = first.total;
        let pages = total.div_ceil(u64::from(limit.max(1))).max(1);
        let used = self
            .pages_used
            .fetch_add(pages, Ordering::Relaxed)
            .saturating_add(pages);
        if used > self.max_pages {
            return Err(PagingError::TooManyPages {
                api: api.name(),
                total,
                pages,
                max: self.max_pages,
            });
        }
        if pages > 1 {
            self.hold_large(api).await;
        }
        // However the query ends, its large-unit permit is not kept.
        let _release = Release(&self.permit);
        let mut stats = PagingStats::default();
        let mut accept = |page: Page, stats: &mut PagingStats| -> Result<(), PagingError<E>> {
            if page.total != total {
                return Err(PagingError::Drift(format!(
                    "total_count went from {total} to {} at offset {}",
                    page.total, page.offset
                )));
            }
            let want = expected_rows(total, page.offset, u64::from(limit));
            if page.len() as u64 != want {
                return Err(PagingError::Drift(format!(
                    "page at offset {} has {} rows, expected {want} of {total}",
                    page.offset,
                    page.len()
                )));
            }
            stats.pages += 1;
            stats.rows += want;
            sink(page).map_err(PagingError::Consumer)
        };
        accept(first, &mut stats)?;
        if pages == 1 {
            return Ok((stats, then.map(|q| self.first_page(api, q, limit))));
        }
        let offsets = (u64::from(limit)..total).step_by(limit as usize);
        let last = offsets.clone().last();
        let mut next = None;
        let mut pages = futures::stream::iter(offsets)
            .map(|offset| {
                // The last page is asked for: the next large unit may start,
                // its requests filling the quota while ours are answered, and
                // so may the next query.
                if Some(offset) == last {
                    self.permit.lock().expect("permit lock").take();
                    next = then.map(|q| self.first_page(api, q, limit));
                }
                let (client, budget, base) = (self.client.clone(), self.budget.clone(), base.clone());
                PageTask(tokio::spawn(async move {
                    fetch_page(&client, api, scope, &base, offset, limit, &budget).await
                }))
            })
            .buffered(self.concurrency.max(1));
        while let Some(page) = pages.next().await {
            accept(page?, &mut stats)?;
        }
        drop(pages);
        Ok((stats, next))
    }
}

/// Drops a query's large-unit permit when the query ends, an error included.
struct Release<'a>(&'a Mutex<Option<OwnedSemaphorePermit>>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.lock().expect("permit lock").take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pages_and_refuses_broken_ones() {
        let p = parse_page(
            r#"{"total_count":3,"fee_records":[{"a":1}, {"a":2}],"currency":"CNY"}"#.into(),
            Api::named("res-fee-records"),
            0,
        )
        .unwrap();
        assert_eq!((p.total, p.len()), (3, 2));
        assert_eq!(p.records().collect::<Vec<_>>(), [r#"{"a":1}"#, r#"{"a":2}"#]);
        let listed = Page::from_rows(0, 2, &[r#"{"a":1}"#.into(), r#"{"b":"x"}"#.into()]);
        assert_eq!(listed.records().collect::<Vec<_>>(), [r#"{"a":1}"#, r#"{"b":"x"}"#]);
        let empty = parse_page(
            r#"{"total_count":0,"currency":"CNY"}"#.into(),
            Api::named("res-fee-records"),
            0,
        )
        .unwrap();
        assert!(empty.is_empty());
        // Truncated JSON, HTML and a missing list are errors, never empty pages.
        assert!(
            parse_page(
                r#"{"total_count":3,"fee_records":[{"a":1}"#.into(),
                Api::named("res-fee-records"),
                0
            )
            .is_err()
        );
        assert!(parse_page("<html>oops</html>".into(), Api::named("res-fee-records"), 0).is_err());
        assert!(parse_page(r#"{"total_count":3}"#.into(), Api::named("res-fee-records"), 0).is_err());
        assert!(parse_page(r#"{"fee_records":[]}"#.into(), Api::named("res-fee-records"), 0).is_err());
        assert!(
            parse_page(
                r#"{"total_count":-1,"fee_records":[]}"#.into(),
                Api::named("res-fee-records"),
                0
            )
            .is_err()
        );
    }
}
