//! Whose bills a run covers: the caller's own, enterprise members, or both.
//! Member ids come from the API, pipeline files and flags and end up in file
//! names, so each is checked where it enters.

use super::error::RunError;
use super::{Accounts, Job};
use crate::source::api::{Api, Param, Params};
use crate::source::client::{BssClient, Scope};
use crate::source::datasets::sub_customers;
use crate::source::error::SourceError;
use crate::source::paging::{Pager, PagingError};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AccountRef {
    Own,
    Member(String),
}

impl AccountRef {
    /// The account's key in file names, manifests and reports.
    pub fn key(&self) -> &str {
        match self {
            AccountRef::Own => "self",
            AccountRef::Member(id) => id,
        }
    }

    /// The parameters that scope a member-scoped API to this account.
    pub fn params(&self) -> Params {
        match self {
            AccountRef::Own => vec![("method", Param::from("oneself"))],
            AccountRef::Member(id) => vec![
                ("method", Param::from("sub_customer")),
                ("sub_customer_id", Param::Str(id.clone())),
            ],
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            AccountRef::Own => Scope::Caller,
            AccountRef::Member(_) => Scope::Member,
        }
    }
}

/// An account id that is not a Huawei account id.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}: {reason}")]
pub struct AccountIdError {
    pub source_name: String,
    pub reason: String,
}

/// Checks that `id` is a Huawei account id (`[A-Za-z0-9_-]{1,64}`): ids reach
/// file names, so anything else (`..`, `/`, spaces) is refused where it enters.
/// `self` names the caller's own file and cannot name a member.
pub fn check_account_id(id: &str) -> Result<(), String> {
    let shown: String = id.chars().take(70).filter(|c| !c.is_control()).collect();
    if id.is_empty() || id.len() > 64 {
        return Err(format!("{shown:?} is not an account id (1 to 64 characters)"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!(
            "{shown:?} is not an account id (only letters, digits, - and _)"
        ));
    }
    if id.eq_ignore_ascii_case("self") {
        return Err(format!(
            "{shown:?} cannot name a member: \"self\" is the caller's own account"
        ));
    }
    Ok(())
}

/// Validates member ids and refuses two that would share a file (ids that
/// differ only in case collide on case-insensitive file systems).
pub fn check_members(ids: &[String], source_name: &str) -> Result<(), AccountIdError> {
    let mut seen = std::collections::HashMap::new();
    for id in ids {
        check_account_id(id).map_err(|reason| AccountIdError {
            source_name: source_name.to_string(),
            reason,
        })?;
        if let Some(other) = seen.insert(id.to_ascii_lowercase(), id)
            && other != id
        {
            return Err(AccountIdError {
                source_name: source_name.to_string(),
                reason: format!("{other:?} and {id:?} differ only in case and would share one file"),
            });
        }
    }
    Ok(())
}

/// The enterprise member listing, fetched once per run: its ids drive the
/// fan-out, and its rows are the `sub_customers` dataset.
#[derive(Debug, Default)]
pub struct MemberListing {
    pub ids: Vec<String>,
    pub records: Vec<String>,
    pub pages: u64,
}

/// Lists the enterprise's members (fact sheet #7), each id checked.
pub async fn list_members(client: &Arc<BssClient>, job: &Job) -> Result<MemberListing, RunError> {
    let api = Api(&sub_customers::API);
    let budget = Arc::new(client.unit_budget());
    let pager = Pager::new(
        client.clone(),
        Scope::Caller,
        budget,
        job.page_concurrency,
        job.max_pages,
    );
    let mut listing = MemberListing::default();
    let r = pager
        .page_through(api, &Vec::new(), api.max_limit(), |page| {
            for rec in page.records() {
                #[derive(serde::Deserialize)]
                struct Member {
                    id: String,
                }
                let m: Member = serde_json::from_str(rec).map_err(|e| format!("member record: {e}"))?;
                listing.ids.push(m.id);
                listing.records.push(rec.to_string());
            }
            Ok::<(), String>(())
        })
        .await;
    match r {
        Ok(stats) => {
            listing.pages = stats.pages;
            check_members(&listing.ids, "the enterprise member listing")?;
            Ok(listing)
        }
        Err(PagingError::Source(e)) => Err(RunError::Members(e)),
        Err(e) => Err(RunError::Members(SourceError::Exhausted {
            api: api.name(),
            attempts: 1,
            last: e.to_string(),
        })),
    }
}

/// The accounts a run covers, and the member listing if one was made (the
/// `sub_customers` dataset then uses its rows instead of asking again).
pub async fn resolve(job: &Job, client: &Arc<BssClient>) -> Result<(Vec<AccountRef>, Option<MemberListing>), RunError> {
    let mut listing = None;
    let mut accounts = vec![AccountRef::Own];
    match &job.accounts {
        Accounts::Own => {}
        Accounts::Members(ids) => {
            check_members(ids, "--accounts")?;
            accounts = ids.iter().cloned().map(AccountRef::Member).collect();
        }
        Accounts::All => {
            let l = list_members(client, job).await?;
            accounts.extend(l.ids.iter().cloned().map(AccountRef::Member));
            listing = Some(l);
        }
        Accounts::Auto => match list_members(client, job).await {
            Ok(l) => {
                accounts.extend(l.ids.iter().cloned().map(AccountRef::Member));
                listing = Some(l);
            }
            Err(RunError::Members(e)) if !e.is_fatal() => {
                tracing::info!("no enterprise members listed ({e}); extracting the caller's own account only")
            }
            Err(e) => return Err(e),
        },
    }
    let mut seen = std::collections::HashSet::new();
    accounts.retain(|a| seen.insert(a.clone()));
    Ok((accounts, listing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_checked_where_they_enter() {
        for ok in ["0123456789abcdef0123456789abcdef", "m-1", "M_2", &"a".repeat(64)] {
            assert!(check_account_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a.b",
            "a b",
            "self",
            "SELF",
            "é",
            &"a".repeat(65),
            "a/b",
            "a\0b",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_members(&["a".into(), "b".into()], "x").is_ok());
        let e = check_members(&["Ab".into(), "aB".into()], "x").unwrap_err().to_string();
        assert!(e.contains("differ only in case"), "{e}");
    }

    #[test]
    fn scopes_and_params_name_the_account_explicitly() {
        assert_eq!(AccountRef::Own.scope(), Scope::Caller);
        let m = AccountRef::Member("m1".into());
        assert_eq!(m.scope(), Scope::Member);
        assert!(m.params().contains(&("sub_customer_id", Param::from("m1"))));
    }
}
