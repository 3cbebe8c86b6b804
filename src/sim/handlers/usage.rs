//! ListResourceUsageSummary and ListResourceUsage (`usage_95_*`): 95th-percentile bandwidth, per resource and per 5-minute point.

use chrono::{Duration, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::cycle::{BillCycle, local_midnight_utc};
use crate::sim::SimState;
use crate::sim::ledger::{Ledger, utc};
use crate::sim::params::{Checked, Invalid, Params};
use crate::sim::records::*;
use crate::source::api::Api;

const USAGE_SERVICES: &[&str] = &[
    "hws.service.type.cdn",
    "hws.service.type.obs",
    "hws.service.type.vpc",
    "hws.service.type.iec",
];
const USAGE_RESOURCES: &[&str] = &[
    "hws.resource.type.cdn",
    "hws.resource.type.obs",
    "hws.resource.type.bandwidth",
    "hws.resource.type.edgebandwidth",
];
const USAGE_TYPES: &[&str] = &["95Peak", "95peak_1000", "95Peak_1000", "bandwidth95peak", "95peak_plus"];
/// Mbit/s (the simulator's choice; real ids come from /v2/bases/measurements).
const MBPS: i64 = 33;

struct UsageQuery {
    cycle: BillCycle,
    resources: Vec<String>,
    current: bool,
}

fn usage_query(state: &SimState, p: &Params) -> Checked<UsageQuery> {
    let cycle = p.cycle("bill_cycle")?;
    let service = p.one_of("service_type_code", USAGE_SERVICES)?;
    let rtype = p.one_of("resource_type_code", USAGE_RESOURCES)?;
    let usage = p.one_of("usage_type", USAGE_TYPES)?;
    let (Some(service), Some(rtype), Some(usage)) = (service, rtype, usage) else {
        return Err(Invalid(
            "bill_cycle, service_type_code, resource_type_code and usage_type are required".into(),
        ));
    };
    let resources = state
        .ledger
        .usage_resources(cycle, &format!("{service}|{rtype}"), &usage);
    Ok(UsageQuery {
        cycle,
        resources,
        current: cycle == BillCycle::containing(Utc::now()),
    })
}

fn points(cycle: BillCycle) -> u64 {
    u64::from(cycle.days()) * 288
}

/// Billed bandwidth: the 95th percentile of the 5-minute samples.
fn p95(l: &Ledger, resource: &str, cycle: BillCycle) -> Decimal {
    let mut v: Vec<Decimal> = (0..points(cycle)).map(|k| l.usage_point(resource, cycle, k)).collect();
    v.sort();
    let idx = ((v.len() as f64) * 0.95).ceil() as usize;
    v[idx.saturating_sub(1).min(v.len() - 1)]
}

fn summary_info(l: &Ledger, q: &UsageQuery, resource: &str) -> StatUsageSummaryInfo {
    // The current month reports only resource ids (fact sheet §5).
    let (days, bw, measure) = if q.current {
        (String::new(), String::new(), None)
    } else {
        (
            format!("{}", q.cycle.days()),
            p95(l, resource, q.cycle).to_string(),
            Some(MBPS),
        )
    };
    StatUsageSummaryInfo {
        resource_id: resource.to_string(),
        actual_days: days,
        band_width: bw,
        monthly_guaranteed_band_width: String::new(),
        monthly_peak_band_width: String::new(),
        band_width_measure_id: measure,
    }
}

pub(super) fn summary(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let q = usage_query(state, p)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    let rows: Vec<StatUsageSummaryInfo> = q
        .resources
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|r| summary_info(&state.ledger, &q, r))
        .collect();
    Ok(list_body(api.list_key(), q.resources.len() as u64, &rows, &[]))
}

pub(super) fn details(state: &SimState, api: Api, p: &Params) -> Checked<String> {
    let q = usage_query(state, p)?;
    let resource = p.req_str("resource_id", 64)?;
    let (offset, limit) = p.page(api.max_limit().into())?;
    if !q.resources.contains(&resource) {
        return Ok(list_body::<StatUsageInfo>("usage_info_list", 0, &[], &[]));
    }
    let l = &state.ledger;
    let n = if q.current { 0 } else { points(q.cycle) };
    let start = local_midnight_utc(q.cycle.first_day());
    let rows: Vec<StatUsageInfo> = (offset..n.min(offset + limit))
        .map(|k| StatUsageInfo {
            stat_time: utc(start + Duration::minutes(5 * k as i64)),
            guaranteed_band_width: String::new(),
            usage: l.usage_point(&resource, q.cycle, k).to_string(),
            measure_id: MBPS,
        })
        .collect();
    let s = summary_info(l, &q, &resource);
    let extra = [
        ("actual_days", serde_json::to_string(&s.actual_days).expect("string")),
        ("band_width", serde_json::to_string(&s.band_width).expect("string")),
        ("monthly_guaranteed_band_width", "\"\"".to_string()),
        ("monthly_peak_band_width", "\"\"".to_string()),
        (
            "band_width_measure_id",
            s.band_width_measure_id.map_or("null".into(), |m| m.to_string()),
        ),
    ];
    Ok(list_body(api.list_key(), n, &rows, &extra))
}
