//! The signed BSS HTTP client: quota, signing, retries and error typing for
//! one request. Paging lives in `paging`; datasets never see HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use serde::Serialize;

use super::api::{Api, Method, Param};
use super::credentials::{Credentials, scrub};
use super::error::{ErrorBody, SourceError};
use super::limits::Limits;
use super::signer;

pub const DEFAULT_ENDPOINT: &str = "https://bss.myhuaweicloud.com";

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter; a server's Retry-After is a floor.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.cap);
        let jittered = exp.mul_f64(fastrand::f64());
        retry_after.map_or(jittered, |ra| ra.max(jittered))
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: String,
    pub language: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Per-API quota overrides (requests/s); 0 disables client-side limiting.
    pub quotas: HashMap<Api, u32>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            language: "en_US".to_string(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            quotas: HashMap::new(),
        }
    }
}

/// Counters for the run report.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub transport_errors: AtomicU64,
    pub bad_bodies: AtomicU64,
    pub per_api: Mutex<HashMap<Api, u64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub retries: u64,
    pub throttled_429: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub unparseable_bodies: u64,
    pub requests_per_api: std::collections::BTreeMap<String, u64>,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled_429: self.throttled.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            unparseable_bodies: self.bad_bodies.load(Ordering::Relaxed),
            requests_per_api: self
                .per_api
                .lock()
                .expect("stats lock")
                .iter()
                .map(|(a, n)| (a.name().to_string(), *n))
                .collect(),
        }
    }
}

/// Set once by the first fatal error; every later request stops before sending.
#[derive(Debug, Default)]
pub struct Halt(Mutex<Option<String>>);

impl Halt {
    pub fn trip(&self, why: &str) {
        let mut g = self.0.lock().expect("halt lock");
        if g.is_none() {
            *g = Some(why.to_string());
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.0.lock().expect("halt lock").clone()
    }
}

pub struct BssClient {
    http: reqwest::Client,
    base: Url,
    host: String,
    creds: Credentials,
    cfg: ClientConfig,
    limits: Limits,
    pub stats: Stats,
    pub halt: Halt,
    /// Until one request has been accepted, requests go one at a time: bad
    /// credentials then cost exactly one request, not one per concurrent task.
    verified: std::sync::atomic::AtomicBool,
    first: tokio::sync::Mutex<()>,
}

enum Attempt<T> {
    Done(T),
    Retry { why: String, after: Option<Duration> },
    Fail(SourceError),
}

impl BssClient {
    pub fn new(creds: Credentials, cfg: ClientConfig) -> Result<Self, SourceError> {
        // reqwest is built without a default crypto provider (no C build); install ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(&cfg.endpoint).map_err(|e| SourceError::Endpoint(format!("{}: {e}", cfg.endpoint)))?;
        let host_only = base.host_str().unwrap_or_default().to_string();
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&host_only) => {}
            "http" => {
                return Err(SourceError::Endpoint(format!(
                    "{}: plain http is only accepted for loopback hosts",
                    cfg.endpoint
                )));
            }
            s => {
                return Err(SourceError::Endpoint(format!(
                    "{}: unsupported scheme {s}",
                    cfg.endpoint
                )));
            }
        }
        if host_only.is_empty() {
            return Err(SourceError::Endpoint(format!("{}: no host", cfg.endpoint)));
        }
        let host = match base.port() {
            Some(p) => format!("{host_only}:{p}"),
            None => host_only,
        };
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| SourceError::Endpoint(e.to_string()))?;
        let limits = Limits::new(&cfg.quotas);
        Ok(Self {
            http,
            base,
            host,
            creds,
            cfg,
            limits,
            stats: Stats::default(),
            halt: Halt::default(),
            verified: std::sync::atomic::AtomicBool::new(false),
            first: tokio::sync::Mutex::new(()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn account_key(&self) -> &str {
        &self.creds.ak
    }

    pub fn domain_id(&self) -> Option<&str> {
        self.creds.domain_id.as_deref()
    }

    /// Calls `api` with `params` and hands the 200 body to `parse`. A body that
    /// does not parse is retried like a transient fault: a truncated answer is
    /// never taken for an empty page.
    pub async fn call<T>(
        &self,
        api: Api,
        params: &[(&'static str, Param)],
        parse: impl Fn(String) -> Result<T, String>,
    ) -> Result<T, SourceError> {
        let account = self.creds.ak.clone();
        let mut last = String::new();
        for attempt in 0..self.cfg.retry.max_attempts {
            if let Some(why) = self.halt.reason() {
                return Err(SourceError::Halted(why));
            }
            self.limits.acquire(api, &account).await;
            if let Some(why) = self.halt.reason() {
                return Err(SourceError::Halted(why));
            }
            let gate = if self.verified.load(Ordering::Acquire) {
                None
            } else {
                let g = self.first.lock().await;
                if let Some(why) = self.halt.reason() {
                    return Err(SourceError::Halted(why));
                }
                (!self.verified.load(Ordering::Acquire)).then_some(g)
            };
            let outcome = self.attempt(api, params, &parse).await;
            // Any answer past authentication proves the credentials.
            if matches!(&outcome, Attempt::Done(_)) || matches!(&outcome, Attempt::Fail(e) if !e.is_fatal()) {
                self.verified.store(true, Ordering::Release);
            }
            drop(gate);
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => {
                    if e.is_fatal() {
                        self.halt.trip(&e.to_string());
                    }
                    return Err(e);
                }
                Attempt::Retry { why, after } => {
                    tracing::debug!(api = api.name(), attempt, "retrying: {why}");
                    last = why;
                    if attempt + 1 < self.cfg.retry.max_attempts {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.cfg.retry.delay(attempt, after)).await;
                    }
                }
            }
        }
        Err(SourceError::Exhausted {
            api: api.name(),
            attempts: self.cfg.retry.max_attempts,
            last,
        })
    }

    async fn attempt<T>(
        &self,
        api: Api,
        params: &[(&'static str, Param)],
        parse: &impl Fn(String) -> Result<T, String>,
    ) -> Attempt<T> {
        let request = match self.build(api, params) {
            Ok(r) => r,
            Err(e) => return Attempt::Fail(e),
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        *self.stats.per_api.lock().expect("stats lock").entry(api).or_default() += 1;
        let secrets = self.creds.secrets();
        let response = match self.http.execute(request).await {
            Ok(r) => r,
            Err(e) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry {
                    why: scrub(&transport_error(&e), &secrets),
                    after: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // Strict UTF-8 (the API's charset): invalid bytes are an unparseable answer.
        let body = match response.bytes().await {
            Ok(b) => match String::from_utf8(b.to_vec()) {
                Ok(s) => s,
                Err(_) => {
                    self.stats.bad_bodies.fetch_add(1, Ordering::Relaxed);
                    return Attempt::Retry {
                        why: "the answer is not UTF-8".into(),
                        after: None,
                    };
                }
            },
            Err(e) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry {
                    why: scrub(&format!("reading the body: {}", transport_error(&e)), &secrets),
                    after: None,
                };
            }
        };
        if status == 200 {
            return match parse(body) {
                Ok(v) => Attempt::Done(v),
                Err(why) => {
                    self.stats.bad_bodies.fetch_add(1, Ordering::Relaxed);
                    Attempt::Retry {
                        why: format!("unparseable 200 body: {why}"),
                        after: None,
                    }
                }
            };
        }
        // Scrub before anything is cut short, so no fragment of a secret survives.
        let (code, message) = ErrorBody::parse(status, &scrub(&body, &secrets));
        let throttled = status == 429 || code.ends_with(".0308") || code == "CBC.0250";
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            let rate = self.limits.throttled(api, &self.creds.ak);
            tracing::warn!(
                api = api.name(),
                rate,
                "throttled by the server ({code}); lowering the client quota"
            );
            return Attempt::Retry {
                why: format!("HTTP {status} {code}: {message}"),
                after: retry_after,
            };
        }
        if status >= 500 || code == "CBC.0999" {
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            return Attempt::Retry {
                why: format!("HTTP {status} {code}: {message}"),
                after: retry_after,
            };
        }
        let api = api.name();
        // A member's bills refused (e.g. a finance-independent member that did not
        // allow viewing) fails that member's unit, not the whole run.
        let member_scoped = params
            .iter()
            .any(|(k, v)| *k == "method" && *v == Param::from("sub_customer"));
        if status == 401 || (status == 403 && !member_scoped) {
            return Attempt::Fail(SourceError::Auth {
                api,
                status,
                code,
                message,
            });
        }
        Attempt::Fail(SourceError::Rejected {
            api,
            status,
            code,
            message,
        })
    }

    /// Builds and signs one request. The URL query is the canonical query
    /// string itself, so what is signed is what is sent.
    fn build(&self, api: Api, params: &[(&'static str, Param)]) -> Result<reqwest::Request, SourceError> {
        let (method, query, body) = match api.method() {
            Method::Get => {
                let pairs: Vec<(&str, String)> = params.iter().map(|(k, v)| (*k, v.as_query_value())).collect();
                (reqwest::Method::GET, signer::canonical_query(&pairs), Vec::new())
            }
            Method::Post => {
                let obj: serde_json::Map<String, serde_json::Value> =
                    params.iter().map(|(k, v)| (k.to_string(), v.to_json())).collect();
                let body = serde_json::to_vec(&obj).expect("a JSON map serialises");
                (reqwest::Method::POST, String::new(), body)
            }
        };
        let mut url = self.base.clone();
        url.set_path(api.path());
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        let mut headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/json".into()),
            ("Host".into(), self.host.clone()),
            ("User-Agent".into(), format!("hcbill/{}", env!("CARGO_PKG_VERSION"))),
            ("X-Sdk-Date".into(), signer::sdk_date(chrono::Utc::now())),
            ("X-Language".into(), self.cfg.language.clone()),
        ];
        if let Some(d) = &self.creds.domain_id {
            headers.push(("X-Domain-Id".into(), d.clone()));
        }
        if let Some(t) = &self.creds.security_token {
            headers.push(("X-Security-Token".into(), t.expose().to_string()));
        }
        let sig = signer::sign(
            &signer::Request {
                method: method.as_str(),
                path: api.path(),
                query: &query,
                headers: &headers,
                body: &body,
            },
            self.creds.sk.expose().as_bytes(),
            None,
        )
        .map_err(|e| SourceError::Endpoint(e.to_string()))?;
        let mut builder = self.http.request(method, url);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        builder = builder.header("Authorization", sig.authorization(&self.creds.ak));
        if !body.is_empty() {
            builder = builder.body(body);
        }
        builder.build().map_err(|e| SourceError::Endpoint(e.to_string()))
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    // The URL carries no secret, but keep messages short and source-chained.
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

pub type SharedClient = Arc<BssClient>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::credentials::Secret;

    fn creds() -> Credentials {
        Credentials {
            ak: "AK".into(),
            sk: Secret::new("SK"),
            domain_id: None,
            security_token: None,
        }
    }

    #[test]
    fn plain_http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "https://bss.example.com",
        ] {
            let cfg = ClientConfig {
                endpoint: ok.into(),
                ..Default::default()
            };
            assert!(BssClient::new(creds(), cfg).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1",
            "http://bss.myhuaweicloud.com",
            "ftp://x",
            "not a url",
        ] {
            let cfg = ClientConfig {
                endpoint: bad.into(),
                ..Default::default()
            };
            assert!(BssClient::new(creds(), cfg).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for attempt in 0..30 {
            assert!(p.delay(attempt, None) <= Duration::from_secs(1));
        }
        assert!(p.delay(0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
