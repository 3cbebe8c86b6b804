//! The simulator speaks the real protocol: every endpoint, validation, auth, throttling.

use std::time::{Duration, Instant};

use hcbill::source::api::{Api, Param, Params};
use hcbill::source::error::SourceError;
use hcbill::source::paging::parse_page;
use hcbill::source::signer;

use crate::common::*;

async fn get_page(
    c: &hcbill::source::client::BssClient,
    api: Api,
    params: Params,
) -> Result<(u64, usize), SourceError> {
    let scope = if params
        .iter()
        .any(|(k, v)| *k == "method" && v.as_query_value() == "sub_customer")
    {
        hcbill::source::client::Scope::Member
    } else {
        hcbill::source::client::Scope::Caller
    };
    c.call(api, scope, &params, &c.unit_budget(), |b| parse_page(b, api, 0))
        .await
        .map(|p| (p.total, p.len()))
}

fn p(pairs: &[(&'static str, &str)]) -> Params {
    pairs.iter().map(|(k, v)| (*k, Param::from(*v))).collect()
}

/// A GET signed by hand, so tests can send what our client never would.
async fn raw_get(url: &str, path: &str, query: &[(&str, &str)], sk: &str, date: &str) -> (u16, serde_json::Value) {
    let host = url.trim_start_matches("http://").to_string();
    let q = signer::canonical_query(query);
    let headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("host".to_string(), host.clone()),
        ("x-sdk-date".to_string(), date.to_string()),
    ];
    let sig = signer::sign(
        &signer::Request {
            method: "GET",
            path,
            query: &q,
            headers: &headers,
            body: b"",
        },
        sk.as_bytes(),
        None,
    )
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::Client::new()
        .get(format!("{url}{path}?{q}"))
        .header("content-type", "application/json")
        .header("x-sdk-date", date)
        .header("authorization", sig.authorization(AK))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

fn now_date() -> String {
    signer::sdk_date(chrono::Utc::now())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_answers_a_signed_request() {
    let sim = start_sim(|_| {}).await;
    let c = client(&sim.url());
    let member = sim.state.ledger.accounts[1].id.clone();
    let cases: Vec<(Api, Params)> = vec![
        (
            Api::named("monthly-sum"),
            p(&[("bill_cycle", "2026-09"), ("method", "oneself")]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[
                ("cycle", "2026-09"),
                ("statistic_type", "3"),
                ("include_zero_record", "true"),
            ]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[
                ("cycle", "2026-09"),
                ("method", "sub_customer"),
                ("sub_customer_id", &member),
            ]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[
                ("cycle", "2026-09"),
                ("bill_date_begin", "2026-09-03"),
                ("bill_date_end", "2026-09-09"),
            ]),
        ),
        (Api::named("fee-records"), p(&[("bill_cycle", "2026-09")])),
        (Api::named("sub-customers"), p(&[])),
        (
            Api::named("account-change-records"),
            p(&[
                ("balance_type", "BALANCE_TYPE_DEBIT"),
                ("trade_time_begin", "2026-09-01"),
                ("trade_time_end", "2026-09-30"),
            ]),
        ),
        (
            Api::named("usage-summary"),
            p(&[
                ("bill_cycle", "2026-09"),
                ("service_type_code", "hws.service.type.cdn"),
                ("resource_type_code", "hws.resource.type.cdn"),
                ("usage_type", "95Peak"),
            ]),
        ),
    ];
    for (api, params) in cases {
        let (total, n) = get_page(&c, api, params.clone())
            .await
            .unwrap_or_else(|e| panic!("{api}: {e}"));
        assert!(total > 0, "{api} {params:?}: empty");
        assert_eq!(n as u64, total.min(10), "{api}: default limit is 10");
    }
    // POST with a JSON body, DAILY window.
    let mut body = p(&[
        ("cycle", "2026-09"),
        ("query_type", "DAILY"),
        ("bill_cycle_begin", "2026-09-01"),
        ("bill_cycle_end", "2026-09-10"),
    ]);
    body.push(("statistic_type", Param::Int(3)));
    let (daily, _) = get_page(&c, Api::named("res-records"), body).await.unwrap();
    let (month, _) = get_page(
        &c,
        Api::named("res-records"),
        vec![("cycle", Param::from("2026-09")), ("statistic_type", Param::Int(3))],
    )
    .await
    .unwrap();
    assert!(daily > 0 && daily < month, "daily {daily} of {month}");
    // A date window is a consistent slice: both halves add up to the month.
    let half = |b: &'static str, e: &'static str| {
        let c = &c;
        async move {
            get_page(
                c,
                Api::named("res-fee-records"),
                p(&[
                    ("cycle", "2026-09"),
                    ("method", "oneself"),
                    ("bill_date_begin", b),
                    ("bill_date_end", e),
                ]),
            )
            .await
            .unwrap()
            .0
        }
    };
    let whole = get_page(
        &c,
        Api::named("res-fee-records"),
        p(&[("cycle", "2026-09"), ("method", "oneself")]),
    )
    .await
    .unwrap()
    .0;
    assert_eq!(
        half("2026-09-01", "2026-09-14").await + half("2026-09-15", "2026-09-30").await,
        whole
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_parameters_get_cbc_0100() {
    let sim = start_sim(|_| {}).await;
    let c = client(&sim.url());
    let cases: Vec<(Api, Params)> = vec![
        (
            Api::named("monthly-sum"),
            p(&[("bill_cycle", "2026-09"), ("limit", "5000")]),
        ),
        (Api::named("monthly-sum"), p(&[])),
        (Api::named("monthly-sum"), p(&[("bill_cycle", "2026-9")])),
        (
            Api::named("monthly-sum"),
            p(&[("bill_cycle", "2026-09"), ("method", "everyone")]),
        ),
        (
            Api::named("monthly-sum"),
            p(&[("bill_cycle", "2026-09"), ("method", "sub_customer")]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[("cycle", "2026-09"), ("charge_mode", "")]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[("cycle", "2026-09"), ("bill_date_begin", "2026-09-01")]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[
                ("cycle", "2026-09"),
                ("bill_date_begin", "2026-08-01"),
                ("bill_date_end", "2026-09-01"),
            ]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[("cycle", "2026-09"), ("statistic_type", "4")]),
        ),
        (
            Api::named("res-fee-records"),
            p(&[("cycle", "2026-09"), ("include_zero_record", "yes")]),
        ),
        (Api::named("sub-customers"), p(&[("limit", "101")])),
        (Api::named("account-change-records"), p(&[])),
        (Api::named("usage-summary"), p(&[("bill_cycle", "2026-09")])),
        (
            Api::named("res-records"),
            vec![
                ("cycle", Param::from("2026-09")),
                ("query_type", Param::from("DAILY")),
                ("statistic_type", Param::Int(3)),
            ],
        ),
        (
            Api::named("res-records"),
            vec![("cycle", Param::from("2026-09")), ("limit", Param::from("10"))],
        ),
    ];
    for (api, params) in cases {
        match get_page(&c, api, params.clone()).await {
            Err(SourceError::Rejected {
                status: 400,
                code,
                message,
                ..
            }) => {
                assert_eq!(code, "CBC.0100", "{api} {params:?}");
                assert!(!message.is_empty());
            }
            other => panic!("{api} {params:?}: expected 400 CBC.0100, got {other:?}"),
        }
    }
    assert_eq!(c.stats.snapshot().retries, 0, "a 400 is never retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_are_verified() {
    let sim = start_sim(|_| {}).await;
    let url = sim.url();
    let path = Api::named("sub-customers").path();
    let (ok, body) = raw_get(&url, path, &[("limit", "10")], SK, &now_date()).await;
    assert_eq!(ok, 200, "{body}");
    let (status, body) = raw_get(&url, path, &[("limit", "10")], "wrong-secret", &now_date()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_code"], "APIGW.0301");
    // X-Sdk-Date more than 15 minutes off.
    let stale = signer::sdk_date(chrono::Utc::now() - chrono::Duration::minutes(16));
    let (status, body) = raw_get(&url, path, &[("limit", "10")], SK, &stale).await;
    assert_eq!((status, body["error_code"].as_str()), (401, Some("APIGW.0301")));
    let close = signer::sdk_date(chrono::Utc::now() - chrono::Duration::minutes(14));
    assert_eq!(raw_get(&url, path, &[("limit", "10")], SK, &close).await.0, 200);
    // Five consecutive failures lock the AK: even a good signature is refused.
    for _ in 0..5 {
        assert_eq!(raw_get(&url, path, &[], "bad", &now_date()).await.0, 401);
    }
    let (status, body) = raw_get(&url, path, &[], SK, &now_date()).await;
    assert_eq!(status, 401);
    assert!(
        body["error_msg"].as_str().unwrap().contains("reach the limit"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_stops_the_client_after_one_request() {
    let sim = start_sim(|_| {}).await;
    let c = hcbill::source::client::BssClient::new(creds("wrong-secret"), client_config(&sim.url())).unwrap();
    let e = get_page(&c, Api::named("monthly-sum"), p(&[("bill_cycle", "2026-09")]))
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::Auth { status: 401, .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong-secret"));
    let again = get_page(&c, Api::named("monthly-sum"), p(&[("bill_cycle", "2026-09")]))
        .await
        .unwrap_err();
    assert!(matches!(again, SourceError::Halted(_)), "{again:?}");
    assert_eq!(c.stats.snapshot().requests, 1, "no retry storm that would lock the AK");
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_answers_429_with_the_gateway_body() {
    let sim = start_sim(|c| c.rate_limit = Some(2)).await;
    let url = sim.url();
    let path = Api::named("sub-customers").path();
    // Sent at once, so the bucket has no time to refill.
    let date = now_date();
    let answers = futures::future::join_all((0..8).map(|_| raw_get(&url, path, &[], SK, &date))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    let throttled_body = answers.iter().find(|a| a.0 == 429).map(|a| a.1.clone());
    // A bucket of 2, refilled at 2/s while the answers are computed.
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!((2..=3).contains(&ok), "{statuses:?}");
    let b = throttled_body.expect("some requests throttled");
    assert_eq!(b["error_code"], "APIGW.0308");
    assert!(b["error_message"].as_str().unwrap().contains("limit:2,time:1 second"));
    // After a second the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(raw_get(&url, path, &[], SK, &now_date()).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn documented_quotas_per_api_and_configurable_latency() {
    let sim = start_sim(|c| c.latency = Duration::from_millis(150)).await;
    let url = sim.url();
    // res-fee-records allows 30/s, sub-customers 10/s.
    let t = Instant::now();
    let mut ok = 0;
    let futs: Vec<_> = (0..30)
        .map(|_| {
            let url = url.clone();
            async move {
                raw_get(
                    &url,
                    Api::named("res-fee-records").path(),
                    &[("cycle", "2026-09")],
                    SK,
                    &now_date(),
                )
                .await
                .0
            }
        })
        .collect();
    for s in futures::future::join_all(futs).await {
        ok += usize::from(s == 200);
    }
    assert_eq!(ok, 30);
    assert!(t.elapsed() >= Duration::from_millis(150), "latency applied");
    // 40 at once: even spread over 3 s by a loaded machine, more than 10/s allows.
    let futs: Vec<_> = (0..40)
        .map(|_| {
            let url = url.clone();
            async move {
                raw_get(&url, Api::named("sub-customers").path(), &[], SK, &now_date())
                    .await
                    .0
            }
        })
        .collect();
    let throttled = futures::future::join_all(futs)
        .await
        .into_iter()
        .filter(|s| *s == 429)
        .count();
    assert!(
        throttled >= 4,
        "sub-customers is limited to 10/s: {throttled} throttled of 40"
    );
}

/// Every row of an endpoint's cycle, paged by hand.
async fn all_rows(
    url: &str,
    path: &str,
    list: &str,
    query: &[(&str, &str)],
) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut rows = Vec::new();
    loop {
        let offset = rows.len().to_string();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.extend([("offset", offset.as_str()), ("limit", "100")]);
        let (status, body) = raw_get(url, path, &q, SK, &now_date()).await;
        assert_eq!(status, 200, "{path}: {body}");
        let page = body[list].as_array().unwrap().clone();
        let done = page.is_empty() || rows.len() + page.len() >= body["total_count"].as_u64().unwrap() as usize;
        rows.extend(page);
        if done {
            return (rows, body);
        }
    }
}

/// The simulator answers with the whole variety the SDK models document, not
/// only the shapes the extractors expect: every bill type, charging mode and
/// period type, whole machines' parts, several usage types per resource, 抹零,
/// zero quantities and amounts, unassigned projects, a second provider and
/// payment status, deductions of another month, and the currency asked for.
#[tokio::test(flavor = "multi_thread")]
async fn answers_cover_every_documented_shape() {
    let sim = start_sim(|c| {
        c.currency = "USD".into();
        c.scale = 0.6;
        c.rate_limit = Some(0);
    })
    .await;
    let url = sim.url();
    let set = |rows: &[serde_json::Value], k: &str| -> std::collections::BTreeSet<String> {
        rows.iter()
            .map(|r| match &r[k] {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect()
    };
    let (records, body) = all_rows(
        &url,
        "/v2/bills/customer-bills/res-fee-records",
        "fee_records",
        &[
            ("cycle", "2026-09"),
            ("statistic_type", "3"),
            ("include_zero_record", "true"),
            ("method", "oneself"),
        ],
    )
    .await;
    assert_eq!(body["currency"], "USD");
    let bill_types: Vec<i64> = set(&records, "bill_type")
        .iter()
        .map(|b| b.parse().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(bill_types, [1, 2, 3, 4, 5, 8, 9, 14, 16, 18, 20, 23, 24, 25, 103]);
    assert_eq!(
        set(&records, "charge_mode"),
        ["1", "10", "11", "3"].map(String::from).into()
    );
    for p in ["19", "20", "24", "25", "5"] {
        assert!(set(&records, "period_type").contains(p), "period type {p}");
    }
    let dec = |r: &serde_json::Value, k: &str| r[k].to_string().parse::<rust_decimal::Decimal>().unwrap();
    assert!(
        records
            .iter()
            .any(|r| [4, 20, 24, 9].contains(&r["bill_type"].as_i64().unwrap()) && dec(r, "amount").is_sign_negative())
    );
    assert!(
        records
            .iter()
            .any(|r| r["sub_resource_id"].is_string() && r["sub_service_type_code"].is_string())
    );
    assert!(
        records
            .iter()
            .any(|r| r["usage"] == serde_json::json!(0) && !dec(r, "amount").is_zero())
    );
    assert!(records.iter().any(|r| dec(r, "amount").is_zero()));
    assert!(records.iter().any(|r| r["enterprise_project_id"].is_null()));
    assert!(
        records
            .iter()
            .all(|r| r["unit"].as_str().is_none_or(|u| u.starts_with("USD/")))
    );
    let mut usage_types = std::collections::HashMap::<String, std::collections::BTreeSet<String>>::new();
    for r in records.iter().filter(|r| r["usage_type"].is_string()) {
        usage_types
            .entry(r["resource_id"].as_str().unwrap().to_string())
            .or_default()
            .insert(r["usage_type"].as_str().unwrap().to_string());
    }
    assert!(
        usage_types.values().any(|t| t.len() > 1),
        "a resource with several usage types"
    );

    let (trades, _) = all_rows(
        &url,
        "/v2/bills/customer-bills/fee-records",
        "records",
        &[
            ("bill_cycle", "2026-09"),
            ("include_zero_record", "true"),
            ("method", "oneself"),
        ],
    )
    .await;
    assert!(
        trades.iter().any(|t| !dec(t, "erase_amount").is_zero()),
        "抹零 in transactions"
    );
    assert!(trades.iter().all(|t| dec(t, "official_amount")
        == dec(t, "official_discount_amount") + dec(t, "erase_amount") + dec(t, "consume_amount")));
    assert_eq!(set(&trades, "provider_type"), ["1", "2"].map(String::from).into());
    assert!(set(&trades, "status").len() > 1, "more than one payment status");
    assert!(trades.iter().all(|t| t["id"].is_null()), "id is a reserved field");

    let (sums, _) = all_rows(
        &url,
        "/v2/bills/customer-bills/monthly-sum",
        "bill_sums",
        &[("bill_cycle", "2026-09"), ("method", "oneself")],
    )
    .await;
    assert!(
        sums.iter().any(|s| !dec(s, "truncated_amount").is_zero()),
        "抹零 in the monthly summary"
    );
    assert!(sums.iter().all(|s| dec(s, "consume_amount")
        == dec(s, "official_amount") - dec(s, "official_discount_amount") - dec(s, "truncated_amount")));

    let (breakdown, _) = all_rows(
        &url,
        "/v2/costs/cost-analysed-bills/monthly-breakdown",
        "details",
        &[("shared_month", "2026-10"), ("method", "oneself")],
    )
    .await;
    // A whole machine's order: rows alike in resource, order and charge, told apart by their part.
    let mut parts = std::collections::HashMap::<(String, String, String), usize>::new();
    for r in breakdown.iter().filter(|r| r["order_id"].is_string()) {
        *parts
            .entry((
                r["resource_id"].to_string(),
                r["order_id"].to_string(),
                r["bill_cycle"].to_string(),
            ))
            .or_default() += 1;
    }
    assert!(parts.values().any(|n| *n > 1), "an order with one row per part");
    assert!(
        breakdown
            .iter()
            .any(|r| r["cost_unit_pairs"].as_array().is_some_and(|c| !c.is_empty()))
    );

    let (changes, _) = all_rows(
        &url,
        "/v2/accounts/customer-accounts/account-change-records",
        "records",
        &[
            ("balance_type", "BALANCE_TYPE_DEBIT"),
            ("trade_time_begin", "2026-09-01"),
            ("trade_time_end", "2026-10-31"),
        ],
    )
    .await;
    assert!(
        changes
            .iter()
            .any(|c| c["bill_cycle"].as_str().unwrap() < &c["trade_time"].as_str().unwrap()[..7]),
        "a deduction of another month's bill"
    );
}
