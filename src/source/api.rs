//! The catalogue of BSS operations (fact sheet §0): path, method, page-size
//! limit and documented quota. The client and the simulator both read it, so a
//! path or quota is written down once.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// One BSS operation, written once, by the dataset module that owns it.
#[derive(Debug)]
pub struct ApiDef {
    /// Short name used in configuration, logs and reports.
    pub name: &'static str,
    pub path: &'static str,
    pub method: Method,
    /// JSON key of the row list in the response.
    pub list_key: &'static str,
    /// Largest `limit` the API accepts.
    pub max_limit: u32,
    /// Documented requests per second per (API, caller account) (§1.8).
    pub quota: u32,
    /// The official SDK's operation name.
    pub sdk_operation: &'static str,
    /// The IAM action a user needs (named when the server answers 403).
    pub iam_action: &'static str,
    /// Takes `method` / `sub_customer_id`: asked once per member account.
    pub member_scoped: bool,
}

/// A handle on an [`ApiDef`]: cheap to copy, compared and hashed by name.
#[derive(Clone, Copy)]
pub struct Api(pub &'static ApiDef);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Api {
    /// Every API of the catalogue (those of the datasets), in catalogue order.
    pub fn all() -> Vec<Api> {
        let mut out: Vec<Api> = Vec::new();
        for d in crate::source::datasets::ALL {
            if !out.contains(&d.api) {
                out.push(d.api);
            }
        }
        out
    }

    pub fn def(self) -> &'static ApiDef {
        self.0
    }

    pub fn path(self) -> &'static str {
        self.0.path
    }

    pub fn method(self) -> Method {
        self.0.method
    }

    pub fn max_limit(self) -> u32 {
        self.0.max_limit
    }

    pub fn quota(self) -> u32 {
        self.0.quota
    }

    pub fn list_key(self) -> &'static str {
        self.0.list_key
    }

    pub fn name(self) -> &'static str {
        self.0.name
    }

    pub fn iam_action(self) -> &'static str {
        self.0.iam_action
    }

    pub fn sdk_operation(self) -> &'static str {
        self.0.sdk_operation
    }

    pub fn member_scoped(self) -> bool {
        self.0.member_scoped
    }

    pub fn from_path(path: &str) -> Option<Api> {
        let p = path.trim_end_matches('/');
        Api::all().into_iter().find(|a| a.path() == p)
    }

    /// The API of that name; panics on an unknown one (for tests and constants).
    pub fn named(name: &str) -> Api {
        name.parse().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl PartialEq for Api {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Api {}

impl std::hash::Hash for Api {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state);
    }
}

impl PartialOrd for Api {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Api {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(other.0.name)
    }
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Api {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl FromStr for Api {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Api::all().into_iter().find(|a| a.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Api::all().iter().map(|a| a.name()).collect();
            format!("unknown API {s:?} (known: {})", names.join(", "))
        })
    }
}

/// A request parameter, typed so a POST body gets JSON ints/bools and a GET
/// query gets their plain-string forms (booleans lower-case, as the SDK sends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Param {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl Param {
    pub fn as_query_value(&self) -> String {
        match self {
            Param::Str(s) => s.clone(),
            Param::Int(i) => i.to_string(),
            Param::Bool(b) => b.to_string(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Param::Str(s) => s.clone().into(),
            Param::Int(i) => (*i).into(),
            Param::Bool(b) => (*b).into(),
        }
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Self {
        Param::Str(s.to_string())
    }
}

impl From<String> for Param {
    fn from(s: String) -> Self {
        Param::Str(s)
    }
}

impl From<i64> for Param {
    fn from(i: i64) -> Self {
        Param::Int(i)
    }
}

impl From<bool> for Param {
    fn from(b: bool) -> Self {
        Param::Bool(b)
    }
}

pub type Params = Vec<(&'static str, Param)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_round_trips() {
        let all = Api::all();
        assert_eq!(all.len(), 9);
        for api in &all {
            assert_eq!(Api::from_path(api.path()), Some(*api));
            assert_eq!(Api::from_path(&format!("{}/", api.path())), Some(*api));
            assert_eq!(api.name().parse::<Api>().unwrap(), *api);
            assert!(api.max_limit() > 0 && api.quota() > 0 && !api.list_key().is_empty());
            assert_eq!(
                all.iter().filter(|a| a.path() == api.path()).count(),
                1,
                "{api}: path twice"
            );
        }
        assert_eq!(Api::named("res-fee-records").quota(), 30);
        assert_eq!(Api::named("sub-customers").max_limit(), 100);
        assert!("nope".parse::<Api>().unwrap_err().contains("monthly-sum"));
    }
}
