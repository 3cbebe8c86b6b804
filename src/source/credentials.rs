//! Credentials, read the way the official SDK reads them (fact sheet §11.4):
//! `HUAWEICLOUD_SDK_AK/SK/DOMAIN_ID/SECURITY_TOKEN`, else the `[global]` section
//! of `HUAWEICLOUD_SDK_CREDENTIALS_FILE` (default `~/.huaweicloud/credentials`).

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret that never prints: `Debug`/`Display` show a fixed placeholder, so an
/// SK or token cannot leak through logs, errors, reports or panics.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug)]
pub struct Credentials {
    pub ak: String,
    pub sk: Secret,
    pub domain_id: Option<String>,
    pub security_token: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no credentials: set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or a [global] section with ak/sk in {0}")]
    Missing(String),
    #[error("HUAWEICLOUD_SDK_AK is set but HUAWEICLOUD_SDK_SK is not (or the reverse)")]
    Incomplete,
    #[error("cannot read credentials file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("credentials file {0} has a [global] section without both ak and sk")]
    FileIncomplete(String),
}

impl Credentials {
    /// Resolves credentials from an environment lookup (a closure, so tests
    /// need not mutate the process environment).
    pub fn resolve(env: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let ak = get("HUAWEICLOUD_SDK_AK");
        let sk = get("HUAWEICLOUD_SDK_SK");
        let domain_id = get("HUAWEICLOUD_SDK_DOMAIN_ID");
        let token = get("HUAWEICLOUD_SDK_SECURITY_TOKEN");
        match (ak, sk) {
            (Some(ak), Some(sk)) => Ok(Self {
                ak,
                sk: Secret::new(sk),
                domain_id,
                security_token: token.map(Secret::new),
            }),
            (Some(_), None) | (None, Some(_)) => Err(CredentialsError::Incomplete),
            (None, None) => {
                let path = get("HUAWEICLOUD_SDK_CREDENTIALS_FILE")
                    .map(PathBuf::from)
                    .or_else(|| get("HOME").map(|h| Path::new(&h).join(".huaweicloud").join("credentials")));
                let Some(path) = path else {
                    return Err(CredentialsError::Missing("~/.huaweicloud/credentials".into()));
                };
                if !path.exists() {
                    return Err(CredentialsError::Missing(path.display().to_string()));
                }
                warn_if_readable_by_others(&path);
                let text = std::fs::read_to_string(&path).map_err(|source| CredentialsError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                let mut creds = Self::from_ini(&text)
                    .ok_or_else(|| CredentialsError::FileIncomplete(path.display().to_string()))?;
                // Environment values win over the file, as in the SDK chain.
                if domain_id.is_some() {
                    creds.domain_id = domain_id;
                }
                if let Some(t) = token {
                    creds.security_token = Some(Secret::new(t));
                }
                Ok(creds)
            }
        }
    }

    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::resolve(|k| std::env::var(k).ok())
    }

    /// Parses the `[global]` section of the SDK's INI credentials file.
    fn from_ini(text: &str) -> Option<Self> {
        let mut in_global = false;
        let (mut ak, mut sk, mut domain_id, mut token) = (None, None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if line.starts_with('[') {
                in_global = line.eq_ignore_ascii_case("[global]");
                continue;
            }
            if !in_global {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            match k.trim() {
                "ak" => ak = Some(v),
                "sk" => sk = Some(v),
                "domain_id" => domain_id = Some(v),
                "security_token" => token = Some(v),
                _ => {}
            }
        }
        Some(Self {
            ak: ak?,
            sk: Secret::new(sk?),
            domain_id,
            security_token: token.map(Secret::new),
        })
    }

    /// Every secret value, for scrubbing text that came back from a server.
    pub fn secrets(&self) -> Vec<&str> {
        let mut v = vec![self.sk.expose()];
        if let Some(t) = &self.security_token {
            v.push(t.expose());
        }
        v
    }
}

/// Warns, as ssh does, when a credentials file can be read by group or others.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                "credentials file {} is accessible by group or others (mode {:o}); run chmod 600 on it",
                path.display(),
                m.permissions().mode() & 0o777
            );
        }
    }
}

/// Removes every secret and every `X-Security-Token:` value (signature-failure
/// bodies echo the canonical request, headers included). Linear in the text:
/// one pass per secret, one pass for the header.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(s) {
            out = out.replace(s, "<redacted>");
        }
    }
    const HEADER: &str = "x-security-token:";
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` are valid in `out`.
    let lower = out.to_ascii_lowercase();
    let mut kept = String::with_capacity(out.len());
    let mut from = 0;
    while let Some(pos) = lower[from..].find(HEADER) {
        let start = from + pos + HEADER.len();
        let end = out[start..]
            .find(['|', '\n', '"', ','])
            .map_or(out.len(), |e| start + e);
        kept.push_str(&out[from..start]);
        kept.push_str("<redacted>");
        from = end;
    }
    kept.push_str(&out[from..]);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn env_variables_like_the_sdk() {
        let c = Credentials::resolve(env(&[
            ("HUAWEICLOUD_SDK_AK", "AK1"),
            ("HUAWEICLOUD_SDK_SK", "SECRETSECRET"),
            ("HUAWEICLOUD_SDK_DOMAIN_ID", "dom"),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", "TOKENTOKEN"),
        ]))
        .unwrap();
        assert_eq!(c.ak, "AK1");
        assert_eq!(c.domain_id.as_deref(), Some("dom"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("SECRETSECRET") && !dbg.contains("TOKENTOKEN"), "{dbg}");
        assert!(matches!(
            Credentials::resolve(env(&[("HUAWEICLOUD_SDK_AK", "AK1")])),
            Err(CredentialsError::Incomplete)
        ));
    }

    #[test]
    fn credentials_file_global_section() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[basic]\nak = X\nsk = Y\n\n[global]\nak = FILEAK\nsk = FILESK123\ndomain_id = d1\n",
        )
        .unwrap();
        let p = path.display().to_string();
        let c = Credentials::resolve(env(&[("HUAWEICLOUD_SDK_CREDENTIALS_FILE", &p)])).unwrap();
        assert_eq!(
            (c.ak.as_str(), c.sk.expose(), c.domain_id.as_deref()),
            ("FILEAK", "FILESK123", Some("d1"))
        );
        std::fs::write(&path, "[global]\nak = only\n").unwrap();
        assert!(matches!(
            Credentials::resolve(env(&[("HUAWEICLOUD_SDK_CREDENTIALS_FILE", &p)])),
            Err(CredentialsError::FileIncomplete(_))
        ));
        let missing = dir.path().join("nope").display().to_string();
        let err = Credentials::resolve(env(&[("HUAWEICLOUD_SDK_CREDENTIALS_FILE", &missing)])).unwrap_err();
        assert!(err.to_string().contains("HUAWEICLOUD_SDK_AK"), "{err}");
    }

    #[test]
    fn scrub_removes_secrets() {
        assert_eq!(
            scrub("x-security-token:TOK123|host", &["TOK123"]),
            "x-security-token:<redacted>|host"
        );
        assert_eq!(scrub("sk is SECRET1 here", &["SECRET1"]), "sk is <redacted> here");
        // An echo cut short leaves a fragment no full-secret match would catch.
        assert_eq!(
            scrub("a|X-Security-Token:TOKEN-PREF", &["TOKEN-PREFIX-AND-MORE"]),
            "a|X-Security-Token:<redacted>"
        );
        assert_eq!(
            scrub("x-security-token:A|x-security-token:B,c", &[]),
            "x-security-token:<redacted>|x-security-token:<redacted>,c"
        );
    }

    #[test]
    fn scrubbing_a_megabyte_is_linear() {
        // 60k headers in 1 MB: quadratic scanning would take seconds, linear takes milliseconds.
        let body = "x-security-token:T|".repeat(55_000);
        let out = scrub(&body, &["SECRETKEY"]);
        assert_eq!(out.matches("<redacted>").count(), 55_000);
        assert!(!out.contains(":T|"));
    }
}
