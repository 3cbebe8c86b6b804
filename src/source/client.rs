//! The signed BSS HTTP client: quota, signing, retries and error typing for
//! one request. Paging lives in `paging`; datasets never see HTTP. (About
//! 450 lines without its tests: a request's whole life — quota, signing,
//! capped reading, error typing — reads best in one place.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Url;

use super::api::{Api, Method, Param};
use super::credentials::{Credentials, scrub};
use super::error::{ErrorBody, SourceError};
use super::limits::Limits;
pub use super::retry::{RetryPolicy, WaitBudget};
use super::signer;
pub use super::stats::{Halt, Stats, StatsSnapshot};

pub const DEFAULT_ENDPOINT: &str = "https://bss.myhuaweicloud.com";

/// The largest answer read: a month's page is ~1–2 MB; anything near this is hostile.
pub const MAX_BODY: usize = 64 << 20;

/// Whose bill a request asks for: a member's refusal (403 for
/// `method=sub_customer`) fails that member, not the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Caller,
    Member,
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub endpoint: String,
    pub language: String,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Per-API quota overrides (requests/s); 0 disables client-side limiting.
    pub quotas: HashMap<Api, u32>,
    /// Answers larger than this are refused.
    pub max_body: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            language: "en_US".to_string(),
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            quotas: HashMap::new(),
            max_body: MAX_BODY,
        }
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
    /// Tripped by a signal or a lost lease: no request is sent after it, and
    /// one in flight is dropped.
    pub stop: crate::stop::Stop,
    /// Until one request has been accepted, requests go one at a time: bad
    /// credentials then cost exactly one request, not one per concurrent task.
    verified: std::sync::atomic::AtomicBool,
    /// Set with `verified`, for callers that wait for it.
    verified_tx: tokio::sync::watch::Sender<bool>,
    first: tokio::sync::Mutex<()>,
    /// APIs answered 403 (a missing IAM permission): later calls fail at once.
    denied: Mutex<HashMap<Api, SourceError>>,
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
        let loopback = is_loopback(base.host_str().unwrap_or_default());
        // Never follow a redirect: signed headers (security token, domain id)
        // would go to whatever host the answer names.
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none());
        if loopback {
            // A proxy from the environment must not see the simulator's traffic;
            // HTTPS_PROXY / NO_PROXY still apply to real endpoints.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| SourceError::Endpoint(e.to_string()))?;
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
            stop: crate::stop::Stop::default(),
            verified: std::sync::atomic::AtomicBool::new(false),
            verified_tx: tokio::sync::watch::Sender::new(false),
            first: tokio::sync::Mutex::new(()),
            denied: Mutex::new(HashMap::new()),
        })
    }

    /// Returns once a request has been answered past authentication: what
    /// may wait for the first request to go through the one-at-a-time gate.
    pub async fn verified(&self) {
        let mut rx = self.verified_tx.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh retry wait budget for one unit.
    pub fn unit_budget(&self) -> WaitBudget {
        WaitBudget::new(self.cfg.retry.unit_wait)
    }

    pub fn domain_id(&self) -> Option<&str> {
        self.creds.domain_id.as_deref()
    }

    /// Calls `api` with `params` and hands the 200 body to `parse`. A body that
    /// does not parse is retried like a transient fault: a truncated answer is
    /// never taken for an empty page.
    ///
    /// Waits between retries are booked against `budget` (the unit's): once it
    /// is spent, the call gives up instead of waiting on.
    pub async fn call<T>(
        &self,
        api: Api,
        scope: Scope,
        params: &[(&'static str, Param)],
        budget: &WaitBudget,
        parse: impl Fn(String) -> Result<T, String>,
    ) -> Result<T, SourceError> {
        let call = self.call_until_stopped(api, scope, params, budget, parse);
        self.stop
            .guard(call)
            .await
            .unwrap_or_else(|why| Err(SourceError::Stopped(why)))
    }

    async fn call_until_stopped<T>(
        &self,
        api: Api,
        scope: Scope,
        params: &[(&'static str, Param)],
        budget: &WaitBudget,
        parse: impl Fn(String) -> Result<T, String>,
    ) -> Result<T, SourceError> {
        let account = self.creds.ak.clone();
        let mut last = String::new();
        for attempt in 0..self.cfg.retry.max_attempts {
            if let Some(why) = self.halt.reason() {
                return Err(SourceError::Halted(why));
            }
            if let Some(e) = self.denied.lock().expect("denied lock").get(&api) {
                return Err(e.clone());
            }
            self.limits.acquire(api, &account).await;
            if let Some(why) = self.halt.reason() {
                return Err(SourceError::Halted(why));
            }
            // A 403 may have come while this request waited for its turn.
            if let Some(e) = self.denied.lock().expect("denied lock").get(&api) {
                return Err(e.clone());
            }
            let gate = if self.verified.load(Ordering::Acquire) {
                None
            } else {
                let g = self.first.lock().await;
                if let Some(why) = self.halt.reason() {
                    return Err(SourceError::Halted(why));
                }
                if let Some(e) = self.denied.lock().expect("denied lock").get(&api) {
                    return Err(e.clone());
                }
                (!self.verified.load(Ordering::Acquire)).then_some(g)
            };
            let outcome = self.attempt(api, scope, params, &parse).await;
            // Any answer past authentication proves the credentials.
            if matches!(&outcome, Attempt::Done(_)) || matches!(&outcome, Attempt::Fail(e) if !e.is_fatal()) {
                self.verified.store(true, Ordering::Release);
                self.verified_tx.send_replace(true);
            }
            drop(gate);
            match outcome {
                Attempt::Done(v) => return Ok(v),
                Attempt::Fail(e) => {
                    if e.is_fatal() {
                        self.halt.trip(&e.to_string());
                    }
                    if matches!(e, SourceError::Denied { .. }) {
                        self.denied.lock().expect("denied lock").entry(api).or_insert(e.clone());
                    }
                    return Err(e);
                }
                Attempt::Retry { why, after } => {
                    tracing::debug!(api = api.name(), attempt, "retrying: {why}");
                    last = why;
                    if attempt + 1 < self.cfg.retry.max_attempts {
                        let delay = self.cfg.retry.delay(attempt, after);
                        if !budget.take(delay) {
                            return Err(SourceError::OutOfTime {
                                api: api.name(),
                                waited_s: budget.spent().as_secs(),
                                budget_s: budget.limit().as_secs(),
                                last,
                            });
                        }
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        Stats::bump(&self.stats.retries_per_api, api);
                        tokio::time::sleep(delay).await;
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
        scope: Scope,
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
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map_or_else(|| "no location".to_string(), location_host);
            return Attempt::Fail(SourceError::Redirected {
                api: api.name(),
                status,
                location,
            });
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(86_400)));
        let body = match read_capped(response, self.cfg.max_body).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return Attempt::Fail(SourceError::TooLarge {
                    api: api.name(),
                    limit: self.cfg.max_body,
                });
            }
            Err(BodyError::Transport(e)) => {
                self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry {
                    why: scrub(&format!("reading the body: {}", transport_error(&e)), &secrets),
                    after: None,
                };
            }
        };
        // Strict UTF-8 (the API's charset): invalid bytes are an unparseable answer.
        let body = match String::from_utf8(body) {
            Ok(s) => s,
            Err(_) => {
                self.stats.bad_bodies.fetch_add(1, Ordering::Relaxed);
                return Attempt::Retry {
                    why: "the answer is not UTF-8".into(),
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
        // Only the start of an error answer is kept; scrub it before anything
        // is cut short, so no fragment of a secret survives.
        let (code, message) = ErrorBody::parse(status, &scrub(error_window(&body, &secrets), &secrets));
        let throttled = status == 429 || code.ends_with(".0308") || code == "CBC.0250";
        if throttled {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            Stats::bump(&self.stats.throttled_per_api, api);
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
        // A member's bills refused (e.g. a finance-independent member that did not
        // allow viewing) fails that member's unit, not the whole run.
        let member_scoped = scope == Scope::Member;
        // Credentials refused (401, or an expired token) stop the run; a 403 is a
        // missing permission for this API only.
        if status == 401 || (status == 403 && code == "CBC.0154") {
            return Attempt::Fail(SourceError::Auth {
                api: api.name(),
                status,
                code,
                message,
            });
        }
        if status == 403 && !member_scoped {
            return Attempt::Fail(SourceError::Denied {
                api: api.name(),
                status,
                code,
                message,
                action: api.iam_action(),
            });
        }
        Attempt::Fail(SourceError::Rejected {
            api: api.name(),
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

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body chunk by chunk, refusing it once it passes `cap`: a hostile
/// answer cannot make the client hold more than that.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The part of an error answer worth keeping: 64 KiB, plus room for a secret
/// that starts inside it, so scrubbing stays linear in what is kept.
fn error_window<'a>(body: &'a str, secrets: &[&str]) -> &'a str {
    let longest = secrets.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut end = (64 << 10) + longest;
    if end >= body.len() {
        return body;
    }
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    &body[..end]
}

/// The host a redirect points to (never the whole URL: it may carry a token).
fn location_host(location: &str) -> String {
    match Url::parse(location) {
        Ok(u) => u.host_str().unwrap_or("an unnamed host").to_string(),
        Err(_) => "a relative location on the same host".to_string(),
    }
}

pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

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
    fn error_windows_and_redirect_hosts() {
        let big = "é".repeat(100_000);
        let w = error_window(&big, &["SECRET"]);
        assert!(w.len() <= (64 << 10) + 6 && w.len() > 60_000);
        assert_eq!(error_window("short", &["SECRET"]), "short");
        assert_eq!(location_host("http://evil.example:8080/x?token=1"), "evil.example");
        assert_eq!(location_host("/elsewhere"), "a relative location on the same host");
    }
}
