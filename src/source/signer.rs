//! SDK-HMAC-SHA256, byte for byte as the official SDK signs (fact sheet §11).
//!
//! Used by the client to sign and by the simulator to verify, so both sides share
//! one canonicalisation; the committed SDK test vectors and the Python-SDK
//! conformance run keep that shared code honest.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay; everything else is %XX (upper-case hex).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE).to_string()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Canonical query string: pairs sorted by raw key then raw value, then encoded.
/// The client sends exactly this string as the URL query.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes a URL query (as received) into raw pairs, for verification.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// Canonical URI: each decoded segment re-encoded, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// What signing produced; the intermediate strings are kept for tests and for
/// debugging a signature mismatch against a server's echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signed_headers: String,
    pub signature: String,
}

impl Signature {
    pub fn authorization(&self, ak: &str) -> String {
        format!(
            "{ALGORITHM} Access={ak}, SignedHeaders={}, Signature={}",
            self.signed_headers, self.signature
        )
    }
}

/// A request as the signer sees it. `headers` must already contain `host` and
/// `x-sdk-date`; every header whose name has no underscore is signed.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Already-canonical query string (see [`canonical_query`]).
    pub query: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Signs `req` with the secret key `sk`, over the headers whose lower-case
/// names are listed in `signed` (sorted, `;`-joined), or all eligible headers.
pub fn sign(req: &Request<'_>, sk: &[u8], signed: Option<&str>) -> Result<Signature, SignError> {
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .filter(|(k, _)| !k.contains('_'))
        .collect();
    if let Some(list) = signed {
        let wanted: Vec<&str> = list.split(';').collect();
        headers.retain(|(k, _)| wanted.contains(&k.as_str()));
        if headers.len() != wanted.len() {
            return Err(SignError::MissingSignedHeader(list.to_string()));
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let date = headers
        .iter()
        .find(|(k, _)| k == "x-sdk-date")
        .map(|(_, v)| v.trim().to_string())
        .ok_or(SignError::MissingDate)?;
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed_headers = headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let payload = if req.body.is_empty() {
        EMPTY_SHA256.to_string()
    } else {
        sha256_hex(req.body)
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.path),
        req.query,
        canonical_headers,
        signed_headers,
        payload
    );
    let string_to_sign = format!("{ALGORITHM}\n{date}\n{}", sha256_hex(canonical_request.as_bytes()));
    let mut mac = Hmac::<Sha256>::new_from_slice(sk).map_err(|_| SignError::BadKey)?;
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    Ok(Signature {
        canonical_request,
        string_to_sign,
        signed_headers,
        signature,
    })
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error("request has no X-Sdk-Date header")]
    MissingDate,
    #[error("a header listed in SignedHeaders ({0}) is missing")]
    MissingSignedHeader(String),
    #[error("secret key cannot be used as an HMAC key")]
    BadKey,
}

/// The parts of an `Authorization: SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…` header.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    pub access: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

pub fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let (mut access, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Access" => access = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    Some(Authorization {
        access: access?,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

/// Current time in the `X-Sdk-Date` format.
pub fn sdk_date(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%dT%H%M%SZ").to_string()
}

pub fn parse_sdk_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Vector {
        name: String,
        ak: String,
        sk: String,
        method: String,
        host: String,
        path: String,
        query_params_in_order: Vec<(String, String)>,
        headers_in: std::collections::BTreeMap<String, String>,
        body: Option<String>,
        body_sha256: String,
        canonical_request: String,
        canonical_request_sha256: String,
        string_to_sign: String,
        authorization: String,
        url: String,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../../tests/fixtures/bss-sign-vectors.json")).unwrap()
    }

    #[test]
    fn reproduces_sdk_vectors_byte_for_byte() {
        let vs = vectors();
        assert_eq!(vs.len(), 2);
        for v in vs {
            let mut headers: Vec<(String, String)> = v.headers_in.clone().into_iter().collect();
            headers.push(("Host".into(), v.host.clone()));
            let query = canonical_query(&v.query_params_in_order);
            let body = v.body.clone().unwrap_or_default();
            let sig = sign(
                &Request {
                    method: &v.method,
                    path: &v.path,
                    query: &query,
                    headers: &headers,
                    body: body.as_bytes(),
                },
                v.sk.as_bytes(),
                None,
            )
            .unwrap();
            let body_hash = if body.is_empty() {
                EMPTY_SHA256.to_string()
            } else {
                sha256_hex(body.as_bytes())
            };
            assert_eq!(body_hash, v.body_sha256, "{}", v.name);
            assert_eq!(sig.canonical_request, v.canonical_request, "{}", v.name);
            assert_eq!(sha256_hex(sig.canonical_request.as_bytes()), v.canonical_request_sha256);
            assert_eq!(sig.string_to_sign, v.string_to_sign, "{}", v.name);
            assert_eq!(sig.authorization(&v.ak), v.authorization, "{}", v.name);
            let url = if query.is_empty() {
                format!("https://{}{}", v.host, v.path)
            } else {
                format!("https://{}{}?{}", v.host, v.path, query)
            };
            assert_eq!(url, v.url, "{}", v.name);
        }
    }

    #[test]
    fn verification_with_the_received_signed_headers_list() {
        let v = &vectors()[0];
        let auth = parse_authorization(&v.authorization).unwrap();
        assert_eq!(auth.access, v.ak);
        // The server sees the URL query, decodes it, and re-canonicalises.
        let received = v.url.split_once('?').unwrap().1;
        let query = canonical_query(&parse_query(received));
        let mut headers: Vec<(String, String)> = v.headers_in.clone().into_iter().collect();
        headers.push(("host".into(), v.host.clone()));
        headers.push(("accept".into(), "*/*".into())); // unsigned extra header is ignored
        let req = Request {
            method: "GET",
            path: &v.path,
            query: &query,
            headers: &headers,
            body: b"",
        };
        let sig = sign(&req, v.sk.as_bytes(), Some(auth.signed_headers)).unwrap();
        assert_eq!(sig.signature, auth.signature);
        let wrong = sign(&req, b"not-the-secret", Some(auth.signed_headers)).unwrap();
        assert_ne!(wrong.signature, auth.signature);
        assert!(sign(&req, v.sk.as_bytes(), Some("host;x-missing;x-sdk-date")).is_err());
    }

    #[test]
    fn uri_and_encoding_rules() {
        assert_eq!(canonical_uri("/v2/a b/c"), "/v2/a%20b/c/");
        assert_eq!(canonical_uri("/v2/x/"), "/v2/x/");
        assert_eq!(encode("a~b_c.d-e/f:g h"), "a~b_c.d-e%2Ff%3Ag%20h");
        assert_eq!(canonical_query(&[("b", "2"), ("a", "z"), ("a", "")]), "a=&a=z&b=2");
        assert!(parse_authorization("Basic abc").is_none());
        let d = sdk_date("2026-11-15T08:30:00Z".parse().unwrap());
        assert_eq!(d, "20261115T083000Z");
        assert_eq!(parse_sdk_date(&d).unwrap().to_rfc3339(), "2026-11-15T08:30:00+00:00");
    }
}
