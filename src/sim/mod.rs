//! `hcbill sim`: a simulator of the Huawei Cloud BSS billing API, faithful to
//! the protocol (paths, parameters, JSON keys and types, SDK-HMAC-SHA256
//! verification, error bodies, offset paging, per-API throttling) and serving
//! one deterministic ledger. Fault injection (`fault_rate`, `drift`) exists to
//! test what a real server does on a bad day. (Over 400 lines: the HTTP
//! front — signature verification, throttling, faults — is one protocol.)

pub mod amortization;
pub mod catalogue;
mod handlers;
pub mod ledger;
mod params;
pub mod records;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::cycle::BillCycle;
use crate::source::api::{self, Api};
use crate::source::signer;
use ledger::{Ledger, Rng};
use params::Params;

#[derive(Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub scale: f64,
    pub from: BillCycle,
    pub to: BillCycle,
    pub members: u32,
    pub latency: Duration,
    /// Requests/s per API; `None` = the documented quotas, `Some(0)` = off.
    pub rate_limit: Option<u32>,
    /// Share of requests answered with a fault (500 CBC.0999, 503 HTML,
    /// connection reset, truncated 200 JSON).
    pub fault_rate: f64,
    /// Insert rows at the front of a cycle the first time it is paged past page one.
    pub drift: bool,
    /// The last N members are finance-independent and did not allow the master
    /// to view their bills: `method=sub_customer` for them gets 403 CBC.0151.
    pub denied_members: u32,
    /// Cost Center enabled: off, the amortised breakdown answers 400 CBC.18000014.
    pub cost_center: bool,
    /// The currency every answer names (`CNY` on the China site, `USD` on
    /// the international one); amounts are the same numbers in it.
    pub currency: String,
    pub ak: String,
    pub sk: String,
}

/// Everything but the SK, which never prints.
impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("scale", &self.scale)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("members", &self.members)
            .field("latency", &self.latency)
            .field("rate_limit", &self.rate_limit)
            .field("fault_rate", &self.fault_rate)
            .field("drift", &self.drift)
            .field("denied_members", &self.denied_members)
            .field("cost_center", &self.cost_center)
            .field("currency", &self.currency)
            .field("ak", &self.ak)
            .field("sk", &"<redacted>")
            .finish()
    }
}

impl SimConfig {
    pub fn new(ak: &str, sk: &str) -> Self {
        let now = BillCycle::containing(chrono::Utc::now());
        Self {
            seed: 42,
            scale: 1.0,
            from: now.pred().pred().pred().pred().pred(),
            to: now,
            members: 3,
            latency: Duration::ZERO,
            rate_limit: None,
            fault_rate: 0.0,
            drift: false,
            denied_members: 0,
            cost_center: true,
            currency: "CNY".into(),
            ak: ak.to_string(),
            sk: sk.to_string(),
        }
    }
}

/// Answered pages remembered in order, for tests of the client's schedule.
pub const RECENT: usize = 4096;

/// What the simulator served, for tests and the benchmark.
#[derive(Debug, Default)]
pub struct SimStats {
    pub requests: AtomicU64,
    /// Answered pages by request (path and query or body): a client that asks
    /// for the same page twice shows up here.
    pub served: Mutex<HashMap<String, u32>>,
    /// The last [`RECENT`] answered pages, in the order they were answered
    /// (bounded: a long-running simulator must not grow).
    pub recent: Mutex<std::collections::VecDeque<String>>,
    pub ok: AtomicU64,
    pub throttled: AtomicU64,
    pub auth_failures: AtomicU64,
    pub faults: AtomicU64,
    pub bad_requests: AtomicU64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct AuthFailures {
    consecutive: u32,
    locked_until: Option<Instant>,
}

pub struct SimState {
    pub cfg: SimConfig,
    pub ledger: Ledger,
    pub stats: SimStats,
    buckets: Mutex<HashMap<(Api, String), Bucket>>,
    auth: Mutex<HashMap<String, AuthFailures>>,
    faults: Mutex<Rng>,
    drifted: Mutex<HashSet<(usize, BillCycle)>>,
}

impl SimState {
    pub fn new(cfg: SimConfig) -> Self {
        let ledger = Ledger::new(cfg.seed, cfg.scale, cfg.from, cfg.to, cfg.members);
        let faults = Mutex::new(Rng::new(&[cfg.seed, 0xFA]));
        Self {
            cfg,
            ledger,
            stats: SimStats::default(),
            buckets: Mutex::new(HashMap::new()),
            auth: Mutex::new(HashMap::new()),
            faults,
            drifted: Mutex::new(HashSet::new()),
        }
    }

    fn quota(&self, api: Api) -> u32 {
        self.cfg.rate_limit.unwrap_or(api.quota())
    }

    /// Token bucket per (API, AK): capacity = quota, refilled at quota/s.
    fn take_token(&self, api: Api, ak: &str) -> bool {
        let q = self.quota(api);
        if q == 0 {
            return true;
        }
        let mut b = self.buckets.lock().expect("bucket lock");
        let now = Instant::now();
        let bucket = b.entry((api, ak.to_string())).or_insert(Bucket {
            tokens: f64::from(q),
            last: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * f64::from(q)).min(f64::from(q));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The first time a cycle is paged past its first page, rows appear at its front.
    pub(crate) fn maybe_drift(&self, accounts: &[usize], cycle: BillCycle, offset: u64) {
        if !self.cfg.drift || offset == 0 {
            return;
        }
        let account = accounts[0];
        if self.drifted.lock().expect("drift lock").insert((account, cycle)) {
            self.ledger.insert_front(account, cycle, 3);
        }
    }
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            ("content-type", "application/json;charset=UTF-8".to_string()),
            ("x-request-id", request_id()),
        ],
        body,
    )
        .into_response()
}

pub(crate) fn error_response(status: StatusCode, code: &str, msg: &str) -> Response {
    // error_msg is at most 1024 characters (fact sheet §1.7).
    let msg: String = msg.chars().take(1024).collect();
    let body = serde_json::json!({"error_code": code, "error_msg": msg, "request_id": request_id()});
    json_response(status, body.to_string())
}

fn throttle_response(limit: u32) -> Response {
    let body = serde_json::json!({
        "status_code": 429,
        "request_id": request_id(),
        "error_code": "APIGW.0308",
        "error_message": format!("The throttling threshold has been reached: policy user over ratelimit,limit:{limit},time:1 second"),
        "encoded_authorization_message": "",
    });
    json_response(StatusCode::TOO_MANY_REQUESTS, body.to_string())
}

/// Verifies SDK-HMAC-SHA256 the way API Gateway does: recompute over the
/// headers the client says it signed; 15-minute clock window; 5 consecutive
/// failures lock the AK for 5 minutes.
fn authenticate(
    state: &SimState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, Box<Response>> {
    let fail = |msg: String| {
        state.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
        Box::new(error_response(
            StatusCode::UNAUTHORIZED,
            "APIGW.0301",
            &format!("Incorrect IAM authentication information: {msg}"),
        ))
    };
    let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(fail("Authorization header is missing".into()));
    };
    let Some(parsed) = signer::parse_authorization(auth) else {
        return Err(fail("unsupported authorization format".into()));
    };
    let ak = parsed.access.to_string();
    {
        let mut a = state.auth.lock().expect("auth lock");
        if let Some(f) = a.get_mut(&ak)
            && let Some(until) = f.locked_until
        {
            if Instant::now() < until {
                drop(a);
                return Err(fail("AK access failed to reach the limit, forbidden".into()));
            }
            f.locked_until = None;
            f.consecutive = 0;
        }
    }
    let record_failure = || {
        let mut a = state.auth.lock().expect("auth lock");
        let f = a.entry(ak.clone()).or_insert(AuthFailures {
            consecutive: 0,
            locked_until: None,
        });
        f.consecutive += 1;
        if f.consecutive >= 5 {
            f.locked_until = Some(Instant::now() + Duration::from_secs(300));
        }
    };
    if ak != state.cfg.ak {
        record_failure();
        return Err(fail("Get secretKey failed".into()));
    }
    let signed = parsed.signed_headers;
    if !signed.split(';').any(|h| h == "host") || !signed.split(';').any(|h| h == "x-sdk-date") {
        record_failure();
        return Err(fail(
            "verify aksk signature fail: host and x-sdk-date must be signed".into(),
        ));
    }
    let header_pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let date = headers
        .get("x-sdk-date")
        .and_then(|v| v.to_str().ok())
        .and_then(signer::parse_sdk_date);
    match date {
        Some(d) if (chrono::Utc::now() - d).num_seconds().abs() <= 15 * 60 => {}
        _ => {
            record_failure();
            return Err(fail(
                "verify aksk signature fail: X-Sdk-Date is missing or more than 15 minutes off".into(),
            ));
        }
    }
    let query = signer::canonical_query(&signer::parse_query(uri.query().unwrap_or("")));
    let req = signer::Request {
        method: method.as_str(),
        path: uri.path(),
        query: &query,
        headers: &header_pairs,
        body,
    };
    match signer::sign(&req, state.cfg.sk.as_bytes(), Some(signed)) {
        Ok(sig) if sig.signature == parsed.signature => {
            state.auth.lock().expect("auth lock").remove(&ak);
            Ok(ak)
        }
        Ok(sig) => {
            record_failure();
            Err(fail(format!(
                "verify aksk signature fail, canonicalRequest: {}",
                sig.canonical_request.replace('\n', "|")
            )))
        }
        Err(e) => {
            record_failure();
            Err(fail(format!("verify aksk signature fail: {e}")))
        }
    }
}

/// A fault, if this request draws one.
fn fault(state: &SimState) -> Option<Response> {
    if state.cfg.fault_rate <= 0.0 {
        return None;
    }
    let (hit, kind) = {
        let mut r = state.faults.lock().expect("fault lock");
        (r.unit() < state.cfg.fault_rate, r.below(4))
    };
    if !hit {
        return None;
    }
    state.stats.faults.fetch_add(1, Ordering::Relaxed);
    Some(match kind {
        0 => error_response(StatusCode::INTERNAL_SERVER_ERROR, "CBC.0999", "Other errors."),
        1 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "text/html")],
            "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n",
        )
            .into_response(),
        2 => {
            // Connection reset: the body stream fails mid-way, so the connection is dropped.
            let parts: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"total_count\":")),
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset")),
            ];
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(futures::stream::iter(parts)),
            )
                .into_response()
        }
        _ => json_response(StatusCode::OK, "{\"total_count\":12,\"fee_records\":[{\"bill_date\":\"20".into()),
    })
}

async fn handle(
    State(state): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    if !state.cfg.latency.is_zero() {
        tokio::time::sleep(state.cfg.latency).await;
    }
    let Some(api) = Api::from_path(uri.path()) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "APIGW.0101",
            "The API does not exist or has not been published in the environment",
        );
    };
    let expected = match api.method() {
        api::Method::Get => Method::GET,
        api::Method::Post => Method::POST,
    };
    if method != expected {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, "APIGW.0101", "method not allowed");
    }
    let ak = match authenticate(&state, &method, &uri, &headers, &body) {
        Ok(ak) => ak,
        Err(r) => return *r,
    };
    if !state.take_token(api, &ak) {
        state.stats.throttled.fetch_add(1, Ordering::Relaxed);
        return throttle_response(state.quota(api));
    }
    if let Some(r) = fault(&state) {
        return r;
    }
    let params = match api.method() {
        api::Method::Get => Params::from_query(signer::parse_query(uri.query().unwrap_or(""))),
        api::Method::Post => {
            let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
            if !ct.starts_with("application/json") {
                Err(params::Invalid("Content-Type must be application/json".into()))
            } else {
                Params::from_body(&body)
            }
        }
    };
    let params = match params {
        Ok(p) => p,
        Err(params::Invalid(msg)) => {
            state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            return error_response(
                StatusCode::BAD_REQUEST,
                "CBC.0100",
                &format!("Invalid parameter: {msg}"),
            );
        }
    };
    if !state.cfg.cost_center && api == Api(&crate::source::datasets::amortized_costs::API) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "CBC.18000014",
            "Cost Center is not enabled. Enable it in the console before querying cost data.",
        );
    }
    if handlers::denied(&state, &params) {
        return error_response(
            StatusCode::FORBIDDEN,
            "CBC.0151",
            "Access denied. The member has not allowed its consumption information to be viewed.",
        );
    }
    let served_key = format!(
        "{}?{}{}",
        api.path(),
        uri.query().unwrap_or(""),
        String::from_utf8_lossy(&body)
    );
    let result = handlers::dispatch(&state, api, &params);
    match result {
        Ok(body) => {
            state.stats.ok.fetch_add(1, Ordering::Relaxed);
            {
                let mut recent = state.stats.recent.lock().expect("recent lock");
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(served_key.clone());
            }
            *state
                .stats
                .served
                .lock()
                .expect("served lock")
                .entry(served_key)
                .or_default() += 1;
            json_response(StatusCode::OK, body)
        }
        Err(params::Invalid(msg)) => {
            state.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            error_response(
                StatusCode::BAD_REQUEST,
                "CBC.0100",
                &format!("Invalid parameter: {msg}"),
            )
        }
    }
}

pub fn router(state: Arc<SimState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

/// A running simulator.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<SimState>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the simulator on `addr` (port 0 picks a free port).
pub async fn start(cfg: SimConfig, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(SimState::new(cfg));
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Running { addr, state, task })
}
