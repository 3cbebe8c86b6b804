//! Reaching a bucket through object_store: the client, whose every call is
//! bounded, and what its answers mean to hcbill.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3ConditionalPut};
use object_store::{ClientConfigKey, ObjectStore, RetryConfig, UpdateVersion};

use super::error::OutputError;
use super::location::{Scheme, StoreConfig};

/// The longest one store call may take: every request of a bucket output is
/// bounded by this (request timeout and retries), so the lease's validity ends
/// this long before its expiry.
pub fn call_budget(ttl: Duration) -> Duration {
    (ttl / 3).min(Duration::from_secs(60))
}

pub fn store_error(url: &str, e: object_store::Error) -> OutputError {
    let reason = e.to_string();
    let lower = reason.to_ascii_lowercase();
    let first: String = reason.lines().next().unwrap_or("").chars().take(300).collect();
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || lower.contains("accessdenied")
        || lower.contains("signaturedoesnotmatch")
        || lower.contains("invalidaccesskeyid")
    {
        OutputError::Denied {
            url: url.to_string(),
            reason: first.chars().take(200).collect(),
        }
    } else {
        OutputError::Store {
            url: url.to_string(),
            reason: first,
        }
    }
}

/// The version a conditional update of an object just read must name.
pub fn version_of(meta: &object_store::ObjectMeta) -> UpdateVersion {
    UpdateVersion {
        e_tag: meta.e_tag.clone(),
        version: meta.version.clone(),
    }
}

/// A store for `bucket`, every call of which ends within the lease's call
/// budget, and the endpoint it talks to.
pub fn build_store(
    scheme: Scheme,
    bucket: &str,
    cfg: &StoreConfig,
    url: &str,
) -> Result<(Arc<dyn ObjectStore>, String), OutputError> {
    // Built without a default TLS provider (no C build): install ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // object_store checks `retry_timeout` before its backoff sleep: the last
    // try may start a backoff later and last a request timeout. So a call
    // ends within timeout + backoff + retry_timeout = 7/8 of the budget.
    // Readers (verify, report) hold no lease: their long downloads get time.
    let budget = if cfg.for_reading {
        Duration::from_secs(600)
    } else {
        call_budget(cfg.lease_ttl)
    };
    let retry = RetryConfig {
        max_retries: 8,
        retry_timeout: budget * 5 / 8,
        backoff: object_store::BackoffConfig {
            max_backoff: budget / 8,
            ..Default::default()
        },
    };
    // Set as options, not a whole `ClientOptions`: that would drop what the
    // environment set (AWS_ALLOW_HTTP…).
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let timeouts = [
        (ClientConfigKey::Timeout, ms(budget / 4)),
        (
            ClientConfigKey::ConnectTimeout,
            ms(Duration::from_secs(5).min(budget / 4)),
        ),
    ];
    let builder = match scheme {
        // Any S3-compatible store: the usual AWS chain (AWS_ACCESS_KEY_ID…,
        // AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP).
        Scheme::S3 => AmazonS3Builder::from_env(),
        Scheme::Obs => {
            let region = cfg.obs_region.clone().unwrap_or_else(|| "cn-north-4".to_string());
            let base = cfg
                .obs_endpoint
                .clone()
                .unwrap_or_else(|| format!("https://obs.{region}.myhuaweicloud.com"));
            // Virtual-hosted style: the bucket is the first label of the host,
            // and object_store takes such an endpoint as given.
            let endpoint = match base.split_once("://") {
                Some((scheme, host)) if !host.starts_with(&format!("{bucket}.")) => {
                    format!("{scheme}://{bucket}.{}", host.trim_end_matches('/'))
                }
                _ => base.trim_end_matches('/').to_string(),
            };
            let mut b = AmazonS3Builder::new()
                .with_region(region)
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(true);
            if let Some((ak, sk, token)) = &cfg.obs_keys {
                b = b.with_access_key_id(ak).with_secret_access_key(sk);
                if let Some(t) = token {
                    b = b.with_token(t);
                }
            }
            b
        }
    };
    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .unwrap_or_else(|| "aws".to_string());
    let builder = timeouts
        .into_iter()
        .fold(builder, |b, (k, v)| b.with_config(AmazonS3ConfigKey::Client(k), v));
    let store = builder
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch)
        .with_retry(retry)
        .build()
        .map_err(|e| store_error(url, e))?;
    Ok((Arc::new(store), endpoint))
}
