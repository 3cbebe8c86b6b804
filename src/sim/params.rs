//! Request parameters as the simulator receives them, with the API's
//! validation rules: a violation is a 400 CBC.0100 naming the parameter.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::cycle::BillCycle;

pub struct Invalid(pub String);

pub type Checked<T> = Result<T, Invalid>;

fn bad(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// Query parameters (GET) or body fields (POST).
pub enum Params {
    Query(HashMap<String, String>),
    Body(serde_json::Map<String, serde_json::Value>),
}

impl Params {
    pub fn from_query(pairs: Vec<(String, String)>) -> Checked<Self> {
        let mut m = HashMap::new();
        for (k, v) in pairs {
            if m.insert(k.clone(), v).is_some() {
                return Err(bad(format!("parameter {k} is repeated")));
            }
        }
        Ok(Params::Query(m))
    }

    pub fn from_body(body: &[u8]) -> Checked<Self> {
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(m)) => Ok(Params::Body(m)),
            _ => Err(bad("the request body must be a JSON object")),
        }
    }

    /// A string parameter; `null` in a body counts as absent. An empty string is
    /// rejected (the API distinguishes "not sent" from "sent empty").
    pub fn str(&self, k: &str, max_len: usize) -> Checked<Option<String>> {
        let v = match self {
            Params::Query(m) => m.get(k).cloned(),
            Params::Body(m) => match m.get(k) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad(format!("{k} must be a string"))),
            },
        };
        match v {
            Some(s) if s.is_empty() => Err(bad(format!("{k} must not be empty"))),
            Some(s) if s.chars().count() > max_len => Err(bad(format!("{k} is longer than {max_len}"))),
            v => Ok(v),
        }
    }

    pub fn req_str(&self, k: &str, max_len: usize) -> Checked<String> {
        self.str(k, max_len)?.ok_or_else(|| bad(format!("{k} is required")))
    }

    pub fn int(&self, k: &str) -> Checked<Option<i64>> {
        match self {
            Params::Query(m) => m
                .get(k)
                .map(|s| s.parse::<i64>().map_err(|_| bad(format!("{k} must be an integer"))))
                .transpose(),
            Params::Body(m) => match m.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Number(n)) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| bad(format!("{k} must be an integer"))),
                Some(_) => Err(bad(format!("{k} must be an integer"))),
            },
        }
    }

    pub fn int_in(&self, k: &str, default: i64, lo: i64, hi: i64) -> Checked<i64> {
        let v = self.int(k)?.unwrap_or(default);
        if v < lo || v > hi {
            return Err(bad(format!("{k} must be between {lo} and {hi}")));
        }
        Ok(v)
    }

    pub fn one_of_int(&self, k: &str, allowed: &[i64]) -> Checked<Option<i64>> {
        match self.int(k)? {
            Some(v) if !allowed.contains(&v) => Err(bad(format!("{k} must be one of {allowed:?}"))),
            v => Ok(v),
        }
    }

    pub fn one_of(&self, k: &str, allowed: &[&str]) -> Checked<Option<String>> {
        match self.str(k, 64)? {
            Some(v) if !allowed.contains(&v.as_str()) => Err(bad(format!("{k} must be one of {allowed:?}"))),
            v => Ok(v),
        }
    }

    pub fn bool(&self, k: &str) -> Checked<Option<bool>> {
        match self {
            Params::Query(m) => match m.get(k).map(String::as_str) {
                None => Ok(None),
                Some("true") => Ok(Some(true)),
                Some("false") => Ok(Some(false)),
                Some(_) => Err(bad(format!("{k} must be true or false"))),
            },
            Params::Body(m) => match m.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(bad(format!("{k} must be a boolean"))),
            },
        }
    }

    pub fn cycle(&self, k: &str) -> Checked<BillCycle> {
        let s = self.req_str(k, 10)?;
        s.parse().map_err(|_| bad(format!("{k} must be YYYY-MM")))
    }

    pub fn date(&self, k: &str) -> Checked<Option<NaiveDate>> {
        self.str(k, 20)?
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|_| bad(format!("{k} must be YYYY-MM-DD"))))
            .transpose()
    }

    /// `(offset, limit)` with the API's limit range.
    pub fn page(&self, max_limit: i64) -> Checked<(u64, u64)> {
        let offset = self.int_in("offset", 0, 0, i64::from(i32::MAX))?;
        let limit = self.int_in("limit", 10, 1, max_limit)?;
        Ok((offset as u64, limit as u64))
    }

    /// A begin/end date pair that must come together and stay within `cycle`.
    pub fn date_range(&self, begin: &str, end: &str, cycle: BillCycle) -> Checked<Option<(NaiveDate, NaiveDate)>> {
        match (self.date(begin)?, self.date(end)?) {
            (None, None) => Ok(None),
            (Some(b), Some(e)) => {
                if b > e {
                    return Err(bad(format!("{begin} is after {end}")));
                }
                if b < cycle.first_day() || e > cycle.last_day() {
                    return Err(bad(format!("{begin}/{end} must be within the cycle {cycle}")));
                }
                Ok(Some((b, e)))
            }
            _ => Err(bad(format!("{begin} and {end} must be sent together"))),
        }
    }
}
