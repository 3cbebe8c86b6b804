//! Errors of the BSS client, split by what the caller must do about them.

use serde::Deserialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// 401/403: credentials or permissions. Stops the whole run at once, so a
    /// retry storm cannot lock the AK (5 failures lock it for 5 minutes).
    #[error("{api}: authentication/permission refused (HTTP {status} {code}): {message}")]
    Auth {
        api: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// 403 for an API the caller may not use: fails the datasets of that API,
    /// not the run (a user may lack one permission and hold the others).
    #[error("{api}: permission refused (HTTP {status} {code}): {message}; the IAM user needs {action}")]
    Denied {
        api: &'static str,
        status: u16,
        code: String,
        message: String,
        action: &'static str,
    },
    /// A 3xx: never followed, so signed headers cannot reach another host.
    #[error("{api}: the server redirected (HTTP {status}) to {location}; redirects are not followed")]
    Redirected {
        api: &'static str,
        status: u16,
        location: String,
    },
    /// An answer larger than the client accepts.
    #[error("{api}: the answer is larger than {limit} bytes; refused")]
    TooLarge { api: &'static str, limit: usize },
    /// A request the API rejected (400 and other non-retryable answers): fails the unit.
    #[error("{api}: request rejected (HTTP {status} {code}): {message}")]
    Rejected {
        api: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// Retryable failures that kept failing.
    #[error("{api}: gave up after {attempts} attempts: {last}")]
    Exhausted {
        api: &'static str,
        attempts: u32,
        last: String,
    },
    /// Retries would wait longer than the unit's budget allows.
    #[error("{api}: gave up after waiting {waited_s} s between retries (the unit's budget is {budget_s} s): {last}")]
    OutOfTime {
        api: &'static str,
        waited_s: u64,
        budget_s: u64,
        last: String,
    },
    /// Another task hit a fatal error; this one stopped without a request.
    #[error("run halted: {0}")]
    Halted(String),
    #[error("invalid endpoint {0}")]
    Endpoint(String),
    /// The run was stopped (a signal, a lost lease): the next run resumes.
    #[error("stopped: {0}; the next run resumes it")]
    Stopped(String),
}

impl SourceError {
    pub fn is_fatal(&self) -> bool {
        matches!(self, SourceError::Auth { .. } | SourceError::Halted(_))
    }
}

/// Error body: `error_code` with `error_msg` | `error_message` | `message`
/// (gateway throttling uses `error_message`), fact sheet §1.7.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default, alias = "errorCode", alias = "code")]
    pub error_code: Option<String>,
    #[serde(default, alias = "error_message", alias = "message", alias = "errorMsg")]
    pub error_msg: Option<String>,
}

impl ErrorBody {
    /// Code and message of an error answer; falls back to the HTTP status and
    /// the start of the text when the body is not the documented JSON.
    pub fn parse(status: u16, body: &str) -> (String, String) {
        let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
        // One line, bounded: messages end up in logs, reports and stderr.
        let line = |s: &str| s.chars().filter(|c| !c.is_control()).take(300).collect::<String>();
        match parsed {
            Some(ErrorBody {
                error_code: Some(c),
                error_msg,
            }) => (line(&c), line(&error_msg.unwrap_or_default())),
            _ => (status.to_string(), line(body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_in_every_documented_shape() {
        let (c, m) = ErrorBody::parse(400, r#"{"error_code":"CBC.0100","error_msg":"bad limit"}"#);
        assert_eq!((c.as_str(), m.as_str()), ("CBC.0100", "bad limit"));
        let (c, m) = ErrorBody::parse(
            429,
            r#"{"status_code":429,"request_id":"r","error_code":"APIGW.0308","error_message":"throttled","encoded_authorization_message":""}"#,
        );
        assert_eq!((c.as_str(), m.as_str()), ("APIGW.0308", "throttled"));
        let (c, m) = ErrorBody::parse(403, r#"{"code":"X.1","message":"nope"}"#);
        assert_eq!((c.as_str(), m.as_str()), ("X.1", "nope"));
        let (_, m) = ErrorBody::parse(400, r#"{"error_code":"CBC.0100","error_msg":"two\nlines"}"#);
        assert_eq!(m, "twolines");
        let (c, m) = ErrorBody::parse(503, "<html>\n<body>Service Unavailable</body></html>");
        assert_eq!(c, "503");
        assert!(m.starts_with("<html><body>Service"), "{m}");
    }
}
