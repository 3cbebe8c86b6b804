//! ListEnterpriseSubCustomers (`sub_customers`): the enterprise's member accounts.

use super::*;
use crate::sim::SimState;
use crate::sim::params::{Checked, Params};
use crate::sim::records::*;
use crate::source::api::Api;

pub(super) fn handle(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let name = p.str("sub_customer_account_name", 64)?;
    let display = p.str("sub_customer_display_name", 64)?;
    let fuzzy = p.int_in("fuzzy_query", 0, 0, 1)? == 1;
    let org = p.str("org_id", 20)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let matches = |field: &str, want: &Option<String>| match want {
        None => true,
        Some(w) if fuzzy => field.contains(w.as_str()),
        Some(w) => field == w,
    };
    let members: Vec<SubCustomerInfoV2> = state
        .ledger
        .accounts
        .iter()
        .skip(1)
        .filter(|a| matches(&a.name, &name) && matches(&a.display_name, &display))
        .filter(|a| org.as_ref().is_none_or(|o| &a.org_id == o))
        .map(|a| SubCustomerInfoV2 {
            id: a.id.clone(),
            name: a.name.clone(),
            display_name: a.display_name.clone(),
            status: a.status,
            org_id: a.org_id.clone(),
            org_name: a.org_name.clone(),
        })
        .collect();
    let page: Vec<_> = members
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .cloned()
        .collect();
    Ok(list_body(api.list_key(), members.len() as u64, &page, &[]))
}
