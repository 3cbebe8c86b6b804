//! Hostile and broken servers: a stub BSS on 127.0.0.1 answers one cycle
//! (2026-10) badly and the other (2026-09) well. Each case runs the release
//! binary's code path (the built `hcbill`) and checks the exit code, the one
//! error line, that the bad unit published nothing, that the good one did, that
//! nothing was written outside `--out`, and that no other host was contacted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use crate::cli::bin;
use crate::common::*;

const GOOD: &str = "2026-09";
const BAD: &str = "2026-10";

/// What the stub was asked.
#[derive(Clone, Debug)]
pub struct Req {
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
}

impl Req {
    fn q(&self, k: &str) -> &str {
        self.query.get(k).map_or("", String::as_str)
    }

    fn offset(&self) -> u64 {
        self.q("offset").parse().unwrap_or(0)
    }
}

type Handler = Arc<dyn Fn(Req) -> BoxFuture<'static, Response> + Send + Sync>;

/// A BSS stand-in on 127.0.0.1 that counts its requests.
pub struct Stub {
    pub url: String,
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    pub seen: Arc<std::sync::Mutex<Vec<Req>>>,
}

impl Stub {
    pub async fn start(handler: Handler) -> Stub {
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (h, s) = (hits.clone(), seen.clone());
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let (handler, h, s) = (handler.clone(), h.clone(), s.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let query = uri
                    .query()
                    .map(|q| {
                        q.split('&')
                            .filter_map(|kv| kv.split_once('='))
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                let req = Req {
                    path: uri.path().to_string(),
                    query,
                    headers,
                };
                s.lock().unwrap().push(req.clone());
                handler(req).await
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Stub {
            url: format!("http://127.0.0.1:{port}"),
            port,
            hits,
            seen,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    Arc::new(move |r| Box::pin(f(r)))
}

fn json(status: u16, body: String) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

/// One bill_summary row; `amount` is written as the raw JSON token given.
pub fn summary_row(cycle: &str, i: u64, amount: &str) -> String {
    format!(
        r#"{{"bill_cycle":"{cycle}","customer_id":"cust","service_type_code":"hws.service.type.ebs","resource_type_code":"hws.resource.type.volume{i}","charging_mode":3,"bill_type":1,"consume_amount":{amount},"official_amount":1,"measure_id":1}}"#
    )
}

/// A monthly-sum page of `total` rows made by `row(i)`.
pub fn summary_page(req: &Req, total: u64, row: impl Fn(u64) -> String) -> Response {
    let limit: u64 = req.q("limit").parse().unwrap_or(1000);
    let offset = req.offset();
    let rows: Vec<String> = (offset..total.min(offset + limit)).map(row).collect();
    json(
        200,
        format!(
            r#"{{"total_count":{total},"bill_sums":[{}],"currency":"CNY"}}"#,
            rows.join(",")
        ),
    )
}

/// Answers a good cycle well, and the bad cycle with `bad`.
fn summary_stub<F, Fut>(bad: F) -> Handler
where
    F: Fn(Req) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Response> + Send + 'static,
{
    handler(move |req: Req| {
        let bad = bad.clone();
        async move {
            if req.path == "/v2/enterprises/multi-accounts/sub-customers" {
                return json(200, r#"{"total_count":0,"sub_customer_infos":[]}"#.into());
            }
            if req.q("bill_cycle") == BAD {
                bad(req).await
            } else {
                summary_page(&req, 3, |i| summary_row(GOOD, i, "12.5"))
            }
        }
    })
}

/// A scratch root with `out/` inside: anything written beside `out/` escaped.
pub struct Scratch {
    pub root: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("cwd")).unwrap();
        Scratch { root }
    }

    pub fn out(&self) -> PathBuf {
        self.root.path().join("out")
    }

    /// A file the test gives hcbill to read (kept apart from what hcbill writes).
    pub fn input(&self, name: &str, text: &str) -> PathBuf {
        let p = self.root.path().join("inputs").join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Every file under the root that is not under `out/`.
    pub fn escaped(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, acc: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, acc);
                } else {
                    acc.push(p);
                }
            }
        }
        let mut acc = Vec::new();
        for e in std::fs::read_dir(self.root.path()).unwrap().flatten() {
            if e.file_name() != "out" && e.file_name() != "inputs" {
                walk(&e.path(), &mut acc);
            }
        }
        acc
    }

    pub fn published(&self, dataset: &str, cycle: &str, account: &str) -> bool {
        part(&self.out(), dataset, cycle, account).exists()
    }
}

/// Runs the binary against `url` with the test credentials and `extra` env.
pub async fn hcbill(s: &Scratch, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.current_dir(s.root.path().join("cwd"))
        .args(args)
        .args(["--endpoint", url, "--out"])
        .arg(s.out())
        .env("HUAWEICLOUD_SDK_AK", AK)
        .env("HUAWEICLOUD_SDK_SK", SK)
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap()
}

fn backfill<'a>(datasets: &'a str, accounts: &'a str) -> Vec<&'a str> {
    vec![
        "backfill",
        "--from",
        GOOD,
        "--to",
        BAD,
        "--datasets",
        datasets,
        "--accounts",
        accounts,
    ]
}

/// The last stderr line: the one-line verdict. Asserts it is one line, starts
/// with `hcbill:`, contains every needle, and that no secret appears anywhere.
pub fn verdict(o: &Output, code: i32, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(code), "stderr:\n{err}\nstdout:\n{out}");
    assert!(!err.contains(SK) && !out.contains(SK), "the SK leaked");
    let last = err.lines().last().unwrap_or_default().to_string();
    assert!(last.starts_with("hcbill: "), "{err}");
    for n in needles {
        assert!(last.contains(n), "{n:?} missing from the verdict: {last}");
    }
    last
}

fn assert_good_published_bad_not(s: &Scratch) {
    assert!(s.published("bill_summary", GOOD, "self"), "the good unit was published");
    assert!(
        !s.published("bill_summary", BAD, "self"),
        "nothing of the bad unit was published"
    );
    let manifest = manifest_text(&s.out().join("bill_summary"));
    assert!(!manifest.contains(&format!("bill_cycle={BAD}")), "{manifest}");
    assert!(s.escaped().is_empty(), "written outside --out: {:?}", s.escaped());
}

#[tokio::test(flavor = "multi_thread")]
async fn money_that_does_not_fit_fails_its_unit_with_the_token_named() {
    for (token, why) in [
        ("79228162514264337593543950335", "does not fit decimal(38,10)"),
        ("1e28", "does not fit decimal(38,10)"),
        ("1e30", "too large"),
        ("0.12345678901234567890123456789", "more than 28 fractional digits"),
        ("1234567890.12345678901234567891", "more than 28 significant digits"),
        ("123456789012345678901234567890", "significant digits"),
        ("\"NaN\"", "expected an exact decimal"),
    ] {
        let tok = token.to_string();
        let stub = Stub::start(summary_stub(move |req: Req| {
            let tok = tok.clone();
            async move { summary_page(&req, 2, move |i| summary_row(BAD, i, if i == 1 { &tok } else { "1" })) }
        }))
        .await;
        let s = Scratch::new();
        let o = hcbill(&s, &stub.url, &backfill("bill_summary", "self"), &[]).await;
        let shown = token.trim_matches('"');
        verdict(
            &o,
            1,
            &[
                "bill_summary",
                BAD,
                "self",
                "consume_amount",
                why,
                &shown[..shown.len().min(20)],
            ],
        );
        assert_good_published_bad_not(&s);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_capped_and_counted_against_the_units_budget() {
    let stub = Stub::start(summary_stub(|_req: Req| async {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "100000")],
            r#"{"error_code":"APIGW.0308","error_message":"throttled"}"#,
        )
            .into_response()
    }))
    .await;
    let s = Scratch::new();
    let pipeline = s.input(
        "p.toml",
        "[limits]\nretry_wait_secs = 3\nbackoff_base_ms = 10\nbackoff_cap_ms = 20\n",
    );
    let t = std::time::Instant::now();
    let pipeline = pipeline.display().to_string();
    let mut args = vec!["run", pipeline.as_str()];
    args.extend(&backfill("bill_summary", "self")[1..]);
    let o = hcbill(&s, &stub.url, &args, &[]).await;
    verdict(&o, 1, &["bill_summary", BAD, "gave up after waiting", "budget is 3 s"]);
    // The 100000 s Retry-After was never slept: capped to 60 s, which the 3 s budget refuses.
    assert!(t.elapsed() < Duration::from_secs(50), "{:?}", t.elapsed());
    assert_good_published_bad_not(&s);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_deadline_stops_cleanly_and_the_next_run_resumes() {
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = slow.clone();
    let stub = Stub::start(summary_stub(move |req: Req| {
        let slow = flag.load(Ordering::SeqCst);
        async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            summary_page(&req, 2, |i| summary_row(BAD, i, "2"))
        }
    }))
    .await;
    let s = Scratch::new();
    // One unit at a time, in order: the good cycle is done before the bad one hangs.
    let pipeline = s.input("p.toml", "[limits]\nunits = 1\n").display().to_string();
    let mut args = vec!["run", pipeline.as_str()];
    args.extend(&backfill("bill_summary", "self")[1..]);
    args.extend(["--deadline", "2s"]);
    let t = std::time::Instant::now();
    let o = hcbill(&s, &stub.url, &args, &[]).await;
    verdict(&o, 1, &["bill_summary", BAD, "deadline of 2s"]);
    assert!(t.elapsed() < Duration::from_secs(25), "{:?}", t.elapsed());
    assert_good_published_bad_not(&s);
    let staging: Vec<_> = std::fs::read_dir(s.out().join(".hcbill/staging"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "the dropped unit left {staging:?}");

    slow.store(false, Ordering::SeqCst);
    let before = stub.hits();
    args.truncate(args.len() - 2);
    let o = hcbill(&s, &stub.url, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("(resumed)"));
    assert!(s.published("bill_summary", BAD, "self"));
    // Only the unfinished unit was fetched again (one page, no member listing: accounts=self).
    assert_eq!(stub.hits() - before, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enormous_total_count_fails_without_paging_for_ever() {
    let stub = Stub::start(summary_stub(|req: Req| async move {
        summary_page(&req, 1_000_000_000_000_000_000, |i| summary_row(BAD, i, "1"))
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(&s, &stub.url, &backfill("bill_summary", "self"), &[]).await;
    verdict(
        &o,
        1,
        &["bill_summary", BAD, "total_count 1000000000000000000", "max_pages"],
    );
    assert_good_published_bad_not(&s);
    assert!(stub.hits() < 10, "{} requests", stub.hits());
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_never_followed_and_credentials_stay_home() {
    let elsewhere = Stub::start(handler(|req: Req| async move {
        summary_page(&req, 2, |i| summary_row(BAD, i, "666"))
    }))
    .await;
    for status in [301u16, 302, 307, 308] {
        let target = format!(
            "http://localhost:{}/v2/bills/customer-bills/monthly-sum",
            elsewhere.port
        );
        let stub = Stub::start(summary_stub(move |_req: Req| {
            let target = target.clone();
            async move {
                Response::builder()
                    .status(status)
                    .header("location", target)
                    .body(Body::empty())
                    .unwrap()
            }
        }))
        .await;
        let s = Scratch::new();
        let o = hcbill(
            &s,
            &stub.url,
            &backfill("bill_summary", "self"),
            &[
                ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TOKEN-that-must-stay-home"),
                ("HUAWEICLOUD_SDK_DOMAIN_ID", "0123456789abcdef"),
            ],
        )
        .await;
        verdict(&o, 1, &["bill_summary", BAD, "redirected", "localhost", "not followed"]);
        // The token was sent to our endpoint, so following the redirect would have carried it on.
        assert!(
            stub.seen
                .lock()
                .unwrap()
                .iter()
                .all(|r| r.headers.contains_key("x-security-token"))
        );
        assert!(!String::from_utf8_lossy(&o.stderr).contains("TOKEN-that-must-stay-home"));
        assert_good_published_bad_not(&s);
    }
    assert_eq!(elsewhere.hits(), 0, "a request reached the other host");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_from_the_environment_never_sees_loopback_traffic() {
    let proxy = Stub::start(handler(|req: Req| async move {
        summary_page(&req, 2, |i| summary_row(BAD, i, "666"))
    }))
    .await;
    let stub = Stub::start(summary_stub(|req: Req| async move {
        summary_page(&req, 2, |i| summary_row(BAD, i, "2"))
    }))
    .await;
    let s = Scratch::new();
    let p = proxy.url.clone();
    let o = hcbill(
        &s,
        &stub.url,
        &backfill("bill_summary", "self"),
        &[
            ("HTTP_PROXY", &p),
            ("http_proxy", &p),
            ("ALL_PROXY", &p),
            ("all_proxy", &p),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(proxy.hits(), 0, "the proxy saw the simulator's signed requests");
    assert!(s.published("bill_summary", BAD, "self"));
    let total = dec_sum(&read(&part(&s.out(), "bill_summary", BAD, "self")), "consume_amount");
    assert_eq!(total.to_string(), "4", "the stub's answer, not the proxy's");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_callers_own_units_do_not_wait_for_the_member_listing() {
    // The listing takes two seconds; the caller's bills are there at once.
    let stub = Stub::start(handler(|req: Req| async move {
        if req.path == "/v2/enterprises/multi-accounts/sub-customers" {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let row = serde_json::json!({ "id": "m1", "name": "m" }).to_string();
            return json(200, format!(r#"{{"total_count":1,"sub_customer_infos":[{row}]}}"#));
        }
        let cycle = req.q("bill_cycle").to_string();
        summary_page(&req, 2, move |i| summary_row(&cycle, i, "1"))
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(&s, &stub.url, &backfill("bill_summary", "all"), &[]).await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let own = err.find("account=\"self\"").expect("the caller's units are logged");
    let listed = err.find("accounts covered").expect("the listing is logged");
    assert!(own < listed, "the caller's units waited for the listing:\n{err}");
    for cycle in [GOOD, BAD] {
        assert!(s.published("bill_summary", cycle, "self") && s.published("bill_summary", cycle, "m1"));
    }
    // The run report says which API bounded the run and how close it came.
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::fs::read_dir(s.out().join(".hcbill/reports"))
                .unwrap()
                .flatten()
                .next()
                .unwrap()
                .path(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(report["quota"]["critical_api"], "monthly-sum");
    assert!(report["quota"]["wall_over_bound"].as_f64().unwrap() > 1.0);
}

/// A stub whose member listing returns `ids` and whose bills are good.
fn members_stub(ids: Vec<String>) -> Handler {
    handler(move |req: Req| {
        let ids = ids.clone();
        async move {
            if req.path == "/v2/enterprises/multi-accounts/sub-customers" {
                let rows: Vec<String> = ids
                    .iter()
                    .map(|id| serde_json::json!({ "id": id, "name": "m" }).to_string())
                    .collect();
                return json(
                    200,
                    format!(
                        r#"{{"total_count":{},"sub_customer_infos":[{}]}}"#,
                        ids.len(),
                        rows.join(",")
                    ),
                );
            }
            let cycle = req.q("bill_cycle").to_string();
            summary_page(&req, 2, move |i| summary_row(&cycle, i, "1"))
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn member_ids_never_reach_the_file_system_unchecked() {
    let escape = format!("hcbill-escape-{}", uuid::Uuid::new_v4().simple());
    let traversal = format!("../../../../../../../../tmp/{escape}");
    for (ids, needle) in [
        (vec![traversal.clone()], "not an account id"),
        (vec!["a.b".to_string(), "a_b".to_string()], "not an account id"),
        (vec!["self".to_string()], "own account"),
        (vec!["Abc".to_string(), "abc".to_string()], "differ only in case"),
        (vec!["x".repeat(65)], "1 to 64"),
    ] {
        let stub = Stub::start(members_stub(ids)).await;
        let s = Scratch::new();
        let o = hcbill(&s, &stub.url, &backfill("bill_summary", "all"), &[]).await;
        verdict(&o, 1, &["member listing", needle]);
        assert!(s.escaped().is_empty(), "{:?}", s.escaped());
        assert!(!Path::new("/tmp").join(&escape).exists());
        // The caller's own units run beside the listing; no member's file
        // exists, and nothing was fetched for a refused id: the listing and
        // at most the caller's own two cycles.
        for cycle in [GOOD, BAD] {
            let dir = s.out().join("bill_summary").join(format!("bill_cycle={cycle}"));
            let names: Vec<String> = std::fs::read_dir(&dir)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().to_string())
                        .collect()
                })
                .unwrap_or_default();
            assert!(names.iter().all(|n| n == "part-self.parquet"), "{names:?}");
        }
        assert!(stub.hits() <= 3, "{} requests", stub.hits());
    }
    // On the command line the same ids are bad input: exit 2 before any request.
    let stub = Stub::start(members_stub(vec![])).await;
    for bad in [traversal.as_str(), "a.b", "m1,self", "x y", "Abc,abc"] {
        let s = Scratch::new();
        let o = hcbill(&s, &stub.url, &backfill("bill_summary", bad), &[]).await;
        verdict(&o, 2, &["--accounts"]);
        assert!(!s.out().exists(), "nothing written for bad input");
    }
    assert_eq!(stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_pages_restart_the_unit_then_fail_it() {
    let stub = Stub::start(summary_stub(|req: Req| async move {
        // 1500 rows; the second page starts 10 rows early with the total unchanged.
        let off = req.offset();
        let shift = if off > 0 { 10 } else { 0 };
        let limit: u64 = req.q("limit").parse().unwrap();
        let rows: Vec<String> = (off - shift..(off - shift + limit).min(1500 - shift))
            .map(|i| summary_row(BAD, i, "1"))
            .collect();
        json(
            200,
            format!(r#"{{"total_count":1500,"bill_sums":[{}]}}"#, rows.join(",")),
        )
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(&s, &stub.url, &backfill("bill_summary", "self"), &[]).await;
    // Read again, the same rows repeat the same way: not data moving but rows
    // the key cannot tell apart (here, identical ones), said in one line.
    verdict(&o, 1, &["bill_summary", BAD, "cannot tell apart", "they are identical"]);
    assert_good_published_bad_not(&s);
    let bad_requests = stub
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.q("bill_cycle") == BAD)
        .count();
    assert_eq!(bad_requests, 2 * 2, "one read and one re-read of two pages");
}

/// A page of two consumption records of `cycle` (the group FOCUS and the
/// amortised costs share).
fn records_page(cycle: &str) -> Response {
    let rows: Vec<String> = (0..2)
        .map(|i| {
            format!(
                r#"{{"id":"r{i}","customer_id":"cust","trade_id":"t{i}","bill_date":"{cycle}-05","resource_id":"vm-1","cloud_service_type":"hws.service.type.ec2","amount":1.5,"official_amount":2,"discount_amount":0.5,"charge_mode":"3","bill_type":5}}"#
            )
        })
        .collect();
    json(
        200,
        format!(
            r#"{{"total_count":2,"fee_records":[{}],"currency":"CNY"}}"#,
            rows.join(",")
        ),
    )
}

/// A monthly-breakdown page of `rows` claiming `total`.
fn breakdown_page(total: u64, rows: &[String]) -> Response {
    json(
        200,
        format!(
            r#"{{"total_count":{total},"details":[{}],"currency":"CNY"}}"#,
            rows.join(",")
        ),
    )
}

/// consumption_records, focus and amortized_costs of both cycles, own account.
async fn backfill_focus_group(s: &Scratch, stub: &Stub) -> Output {
    hcbill(
        s,
        &stub.url,
        &backfill("consumption_records,focus,amortized_costs", "self"),
        &[],
    )
    .await
}

/// Two breakdown rows the documented key cannot tell apart, on every read:
/// `amortized_costs` fails alone, with one line naming how the rows differ;
/// the consumption records and FOCUS that share the group's fetch are published.
#[tokio::test(flavor = "multi_thread")]
async fn rows_the_key_cannot_tell_apart_fail_their_dataset_alone() {
    let stub = Stub::start(handler(|req: Req| async move {
        if req.path.ends_with("/res-fee-records") {
            return records_page(req.q("cycle"));
        }
        let cycle = req.q("shared_month").to_string();
        let row = |amount: &str| {
            format!(
                r#"{{"shared_month":"{cycle}","bill_cycle":"{cycle}","customer_id":"cust","resource_id":"vm-1","sub_resource_id":"disk-1","usage_type":"capacity","charging_mode":3,"bill_type":5,"consume_amount":{amount},"current_month_amortized_amount":{amount}}}"#
            )
        };
        let rows = if cycle == BAD { vec![row("1"), row("2")] } else { vec![row("1")] };
        breakdown_page(rows.len() as u64, &rows)
    }))
    .await;
    let s = Scratch::new();
    let o = backfill_focus_group(&s, &stub).await;
    verdict(
        &o,
        1,
        &[
            "amortized_costs",
            BAD,
            "the API returned 2 rows that amortized_costs's key cannot tell apart",
            "sub_resource_id=disk-1",
            "they differ in consume_amount, current_month_amortized_amount",
        ],
    );
    for (dataset, key) in [("consumption_records", "bill_cycle"), ("focus", "bill_cycle")] {
        let f = s
            .out()
            .join(dataset)
            .join(format!("{key}={BAD}"))
            .join("part-self.parquet");
        assert!(f.exists(), "{dataset} is published whatever happens to amortized_costs");
    }
    assert!(
        !s.out()
            .join("amortized_costs")
            .join(format!("shared_month={BAD}"))
            .exists()
    );
    assert!(
        s.out()
            .join("amortized_costs")
            .join(format!("shared_month={GOOD}"))
            .exists()
    );
    let reads = stub
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with("/monthly-breakdown") && r.q("shared_month") == BAD)
        .count();
    assert_eq!(reads, 2, "one read, one re-read");
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_bodies_are_refused_without_being_held() {
    let stub = Stub::start(summary_stub(|_req: Req| async {
        // 65 MiB streamed in 1 MiB chunks, with no Content-Length.
        let chunk = axum::body::Bytes::from(vec![b' '; 1 << 20]);
        let stream = futures::stream::iter((0..65).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        Response::builder().status(200).body(Body::from_stream(stream)).unwrap()
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(&s, &stub.url, &backfill("bill_summary", "self"), &[]).await;
    verdict(&o, 1, &["bill_summary", BAD, "larger than 67108864 bytes"]);
    assert_good_published_bad_not(&s);
    // Refused at once, not retried.
    assert_eq!(
        stub.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.q("bill_cycle") == BAD)
            .count(),
        1
    );
}

/// A stub that serves bill_summary well and answers usage-summary with `status`.
fn permission_stub(status: u16, code: &'static str, echo: String) -> Handler {
    handler(move |req: Req| {
        let echo = echo.clone();
        async move {
            if req.path.ends_with("/usage/summary") || (status == 401 && req.q("bill_cycle") == BAD) {
                return json(
                    status,
                    format!(r#"{{"error_code":"{code}","error_msg":"denied {echo}"}}"#),
                );
            }
            let cycle = req.q("bill_cycle").to_string();
            summary_page(&req, 2, move |i| summary_row(&cycle, i, "1"))
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_permission_fails_only_the_datasets_of_that_api() {
    // A 1 MB error body echoing the security token many times: scrubbed, and cheap.
    let echo = "x-security-token:TOKEN-secret-value|".repeat(30_000);
    let stub = Stub::start(permission_stub(403, "CBC.0155", echo)).await;
    let s = Scratch::new();
    // Ten cycles: twenty units on the refused API, at most four in flight.
    let args = [
        "backfill",
        "--from",
        "2026-01",
        "--to",
        BAD,
        "--datasets",
        "bill_summary,usage_95_summary,usage_95_details",
        "--accounts",
        "self",
    ];
    let o = hcbill(
        &s,
        &stub.url,
        &args,
        &[("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TOKEN-secret-value")],
    )
    .await;
    verdict(
        &o,
        1,
        &["usage_95", "permission refused", "billing:resourcePackages:view"],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(!all.contains("TOKEN-secret-value"), "the token leaked");
    for c in [GOOD, BAD] {
        assert!(s.published("bill_summary", c, "self"), "{c}");
        assert!(!s.published("usage_95_summary", c, "self"), "{c}");
    }
    // After the first 403 the API is not asked again.
    let usage = stub
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.contains("/usage/"))
        .count();
    assert!(
        (1..=4).contains(&usage),
        "{usage} requests: after the first 403, only those already in flight"
    );
    assert!(s.escaped().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_credentials_stop_the_run_after_one_request() {
    let stub = Stub::start(handler(|_req: Req| async {
        json(
            401,
            r#"{"error_code":"APIGW.0301","error_msg":"verify aksk signature fail"}"#.into(),
        )
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(
        &s,
        &stub.url,
        &backfill("bill_summary,consumption_records", "self"),
        &[],
    )
    .await;
    verdict(&o, 3, &["authentication"]);
    assert_eq!(stub.hits(), 1);
    assert!(!s.published("bill_summary", GOOD, "self"));
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_default_to_every_member_when_there_are_any() {
    let stub = Stub::start(members_stub(vec!["m-one".into(), "m_two".into()])).await;
    let s = Scratch::new();
    let args = ["backfill", "--from", GOOD, "--to", GOOD, "--datasets", "bill_summary"];
    let o = hcbill(&s, &stub.url, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    for a in ["self", "m-one", "m_two"] {
        assert!(s.published("bill_summary", GOOD, a), "{a}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("accounts: self and 2 enterprise members"), "{stdout}");

    // A listing that is refused (not an enterprise master) means the own account only.
    let refused = Stub::start(handler(|req: Req| async move {
        if req.path.contains("sub-customers") {
            return json(
                403,
                r#"{"error_code":"CBC.0151","error_msg":"not an enterprise"}"#.into(),
            );
        }
        summary_page(&req, 2, |i| summary_row(GOOD, i, "1"))
    }))
    .await;
    let s = Scratch::new();
    let o = hcbill(&s, &refused.url, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(s.published("bill_summary", GOOD, "self"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("accounts: self only"));
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn bookkeeping_is_private_and_a_readable_credentials_file_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let stub = Stub::start(summary_stub(|req: Req| async move {
        summary_page(&req, 2, |i| summary_row(BAD, i, "1"))
    }))
    .await;
    let s = Scratch::new();
    let creds = s.input("credentials", &format!("[global]\nak = {AK}\nsk = {SK}\n"));
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = bin();
    c.current_dir(s.root.path().join("cwd"))
        .args(backfill("bill_summary", "self"))
        .args(["--endpoint", &stub.url, "--out"])
        .arg(s.out())
        .env("HUAWEICLOUD_SDK_CREDENTIALS_FILE", &creds);
    let o = tokio::task::spawn_blocking(move || c.output()).await.unwrap().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(SK));
    let mode = std::fs::metadata(s.out().join(".hcbill")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// A companion stream that keeps moving (the breakdown's total changes between
/// its pages on every read): after the re-reads, `amortized_costs` fails alone,
/// FOCUS is made without amortisation and says so, and the consumption records
/// are published.
#[tokio::test(flavor = "multi_thread")]
async fn a_companion_that_keeps_moving_fails_only_its_own_dataset() {
    // Once calm, the breakdown answers steadily: the next run makes FOCUS whole.
    let calm = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let still = calm.clone();
    let stub = Stub::start(handler(move |req: Req| {
        let calm = still.load(Ordering::SeqCst);
        async move {
            if req.path.ends_with("/res-fee-records") {
                return records_page(req.q("cycle"));
            }
            let cycle = req.q("shared_month").to_string();
            let off = req.offset();
            let limit: u64 = req.q("limit").parse().unwrap();
            // In the bad month every page tells another total: the data moves.
            let total = if cycle == BAD && !calm { 1500 + off } else { 3 };
            let rows: Vec<String> = (off..(off + limit).min(total))
                .map(|i| {
                    format!(
                        r#"{{"shared_month":"{cycle}","bill_cycle":"{cycle}","customer_id":"cust","resource_id":"vm-{i}","charging_mode":3,"bill_type":5,"consume_amount":1,"current_month_amortized_amount":1}}"#
                    )
                })
                .collect();
            breakdown_page(total, &rows)
        }
    }))
    .await;
    let s = Scratch::new();
    let o = backfill_focus_group(&s, &stub).await;
    verdict(&o, 1, &["amortized_costs", BAD, "kept changing"]);
    let last = String::from_utf8_lossy(&o.stderr).lines().last().unwrap().to_string();
    assert!(
        !last.contains("consumption_records") && !last.contains("focus "),
        "{last}"
    );
    for dataset in ["consumption_records", "focus"] {
        let f = s
            .out()
            .join(dataset)
            .join(format!("bill_cycle={BAD}"))
            .join("part-self.parquet");
        assert!(f.exists(), "{dataset} is published whatever happens to amortized_costs");
    }
    let m = manifest_text(&s.out().join("focus"));
    assert!(m.contains("made without amortized_costs"), "{m}");
    let amortized = s.out().join("amortized_costs").join(format!("shared_month={BAD}"));
    assert!(!amortized.exists());

    // The month is final, yet FOCUS is made again once its companion can be had.
    calm.store(true, Ordering::SeqCst);
    let o = backfill_focus_group(&s, &stub).await;
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let m = manifest_text(&s.out().join("focus"));
    assert!(!m.contains("made without amortized_costs"), "{m}");
    assert!(amortized.exists());
}
