//! Where a run's output goes: `--out` parsed, and how to reach a bucket.

use std::path::{Path, PathBuf};

/// `--out`: a local path, `obs://bucket/prefix` or `s3://bucket/prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Bucket {
        scheme: Scheme,
        bucket: String,
        prefix: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Obs,
    S3,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Bucket { scheme, bucket, prefix } => {
                let s = if *scheme == Scheme::Obs { "obs" } else { "s3" };
                write!(f, "{s}://{bucket}/{prefix}")
            }
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Self {
        Location::Local(p.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Self {
        Location::Local(p)
    }
}

impl std::str::FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let scheme = if s.starts_with("obs://") {
            Some(Scheme::Obs)
        } else if s.starts_with("s3://") {
            Some(Scheme::S3)
        } else {
            None
        };
        let Some(scheme) = scheme else {
            if s.contains("://") {
                return Err(format!(
                    "--out {s}: only a local path, obs://bucket/prefix or s3://bucket/prefix"
                ));
            }
            return Ok(Location::Local(PathBuf::from(s)));
        };
        let rest = s.split_once("://").map_or("", |(_, r)| r);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid_bucket {
            return Err(format!(
                "--out {s}: {bucket:?} is not a bucket name (3-63 of a-z, 0-9, '-', '.')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(format!("--out {s}: the prefix may not contain . or .."));
        }
        Ok(Location::Bucket {
            scheme,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// How to reach a bucket.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// OBS endpoint (default from the region: `https://obs.<region>.myhuaweicloud.com`).
    pub obs_endpoint: Option<String>,
    /// OBS region (default `cn-north-4`).
    pub obs_region: Option<String>,
    /// OBS keys when not the BSS client's: (AK, SK, security token).
    pub obs_keys: Option<(String, String, Option<String>)>,
    /// How a bucket is kept to one writer.
    pub lock: LockMode,
    /// How long a bucket lease lives without renewal.
    pub lease_ttl: std::time::Duration,
    /// Only reads (status, verify, report): no lease, long downloads.
    pub for_reading: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            obs_endpoint: None,
            obs_region: None,
            obs_keys: None,
            lock: LockMode::Lease,
            lease_ttl: DEFAULT_LEASE_TTL,
            for_reading: false,
        }
    }
}

/// A lease not renewed for this long belongs to a dead run (`HCBILL_LEASE_SECONDS`).
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(180);

/// `--lock`: how one writer at a time is ensured on a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LockMode {
    /// A lease object and conditional writes (ETag), after checking the store
    /// honours them.
    #[default]
    Lease,
    /// The scheduler runs one job at a time (`concurrencyPolicy: Forbid`, a
    /// systemd timer): no lease, no conditions; two runs would overwrite each other.
    External,
}

impl std::str::FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lease" => Ok(LockMode::Lease),
            "external" => Ok(LockMode::External),
            _ => Err(format!("--lock {s}: lease (the default) or external")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_strictly() {
        assert_eq!("out".parse::<Location>().unwrap(), Location::Local("out".into()));
        assert_eq!(
            "obs://my-bucket/bills/hcbill/".parse::<Location>().unwrap(),
            Location::Bucket {
                scheme: Scheme::Obs,
                bucket: "my-bucket".into(),
                prefix: "bills/hcbill".into()
            }
        );
        assert_eq!("s3://b.c-1".parse::<Location>().unwrap().to_string(), "s3://b.c-1/");
        for bad in ["obs://", "s3://UPPER/x", "s3://b/../x", "gs://b/x", "obs://a/x"] {
            assert!(bad.parse::<Location>().is_err(), "{bad}");
        }
    }
}
