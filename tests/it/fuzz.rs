//! Random and adversarial JSON against the page parser, the FOCUS transform and
//! the normaliser, from a fixed seed: no panic, no hang, and every outcome is
//! either exact (each decimal read back equals its token's value) or an error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use arrow_array::{Array, Decimal128Array, RecordBatch};
use hcbill::model::{Kind, Lineage, Normalizer};
use hcbill::source::datasets::{self, DatasetSpec, TransformCtx};
use hcbill::source::paging::parse_page;
use serde_json::value::RawValue;

const CASES: usize = 3000;

/// Number tokens that have broken decimal parsers somewhere.
const NASTY_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "1e0",
    "1E+2",
    "1e-8",
    "-1.5e-7",
    "12345678901234.12345678",
    "9999999999999999999999999999",
    "79228162514264337593543950335",
    "79228162514264337593543950336",
    "-79228162514264337593543950335",
    "0.0000000001",
    "0.00000000001",
    "0.1000000000000000000000000000",
    "1e27",
    "1e28",
    "1e400",
    "1e-400",
    "1e99999999999999999999",
    "123456789012345678901234567890",
    "0.12345678901234567890123456789",
    "00012",
    ".5",
    "5.",
    "+1",
    "0x10",
    "1_000",
    "NaN",
    "Infinity",
    "-",
    "e5",
    "1e",
    "1.2.3",
    "999999999999999999",
    "1000000000000000000",
    "99999999999999999.99999999999999999999",
];

struct Gen(fastrand::Rng);

impl Gen {
    /// A number token; `rare` of 120 are from the nasty list (many are not JSON).
    fn number(&mut self, rare: u8) -> String {
        if self.0.u8(0..120) < rare {
            return NASTY_NUMBERS[self.0.usize(0..NASTY_NUMBERS.len())].to_string();
        }
        // JSON integers have no leading zeros.
        let first = char::from(b'1' + self.0.u8(0..9));
        let int: String = std::iter::once(first)
            .chain((0..self.0.usize(0..19)).map(|_| self.0.digit(10)))
            .collect();
        let int = if self.0.u8(0..4) == 0 { "0".to_string() } else { int };
        let frac: String = (0..self.0.usize(0..12)).map(|_| self.0.digit(10)).collect();
        let sign = if self.0.bool() { "-" } else { "" };
        let exp = match self.0.u8(0..6) {
            0 => format!("e{}", self.0.i32(-30..30)),
            _ => String::new(),
        };
        if frac.is_empty() {
            format!("{sign}{int}{exp}")
        } else {
            format!("{sign}{int}.{frac}{exp}")
        }
    }

    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a",
            "云",
            "☁",
            "\\n",
            "\\\"",
            "\\\\",
            "\\u00e9",
            "\\ud83d\\ude00",
            " ",
            "/",
            "..",
            "%00",
            "x",
            "y",
        ];
        if self.0.u8(0..30) == 0 {
            // A lone surrogate: not valid JSON text.
            return "\"\\ud800\"".into();
        }
        let s: String = (0..self.0.usize(0..12))
            .map(|_| PIECES[self.0.usize(0..PIECES.len())])
            .collect();
        format!("\"{s}\"")
    }

    /// A value for a column of `kind`: usually plausible, often hostile.
    fn value(&mut self, kind: Kind, depth: usize) -> String {
        match self.0.u8(0..40) {
            0..=3 => "null".into(),
            4 if depth < 3 => self.any(depth + 1),
            _ => match kind {
                Kind::Dec(_) if self.0.bool() => format!("\"{}\"", self.number(20)),
                Kind::Dec(_) => self.number(2),
                Kind::Int if self.0.u8(0..10) == 0 => self.number(2),
                Kind::Int => self.0.i64(-5..100_000).to_string(),
                Kind::Timestamp => [
                    "\"2026-10-01T00:00:00Z\"",
                    "\"2026-10-01 08:00:00\"",
                    "\"2026-10-31T23:59:59+08:00\"",
                    "\"2026-10-15T12:00:00Z\"",
                    "\"yesterday\"",
                ][self.0.usize(0..5)]
                .into(),
                Kind::Date => {
                    ["\"2026-10-01\"", "\"2026-10-31\"", "\"2026-10-15\"", "\"2026-02-30\""][self.0.usize(0..4)].into()
                }
                _ => self.string(),
            },
        }
    }

    fn any(&mut self, depth: usize) -> String {
        if depth > 4 {
            return "0".into();
        }
        match self.0.u8(0..6) {
            0 => self.number(10),
            1 => self.string(),
            2 => ["true", "false", "null"][self.0.usize(0..3)].into(),
            3 => format!("[{}]", self.any(depth + 1)),
            4 => format!("{{\"k\":{}}}", self.any(depth + 1)),
            // Deeper than serde_json's recursion limit.
            _ => format!("{}1{}", "[".repeat(200), "]".repeat(200)),
        }
    }

    fn record(&mut self, spec: &DatasetSpec) -> String {
        let mut fields: Vec<String> = Vec::new();
        for c in spec.columns {
            if self.0.u8(0..4) != 0 && !matches!(c.kind, Kind::Label { .. } | Kind::Param) {
                let v = self.value(c.kind, 0);
                fields.push(format!("\"{}\":{v}", c.json));
            }
        }
        if self.0.u8(0..8) == 0 {
            fields.push(format!("\"unknown_{}\":{}", self.0.u8(..), self.any(0)));
        }
        if self.0.u8(0..40) == 0 {
            return self.any(0);
        }
        format!("{{{}}}", fields.join(","))
    }

    fn page(&mut self, spec: &DatasetSpec, source: &DatasetSpec) -> String {
        let n = self.0.usize(0..6);
        let records: Vec<String> = (0..n).map(|_| self.record(source)).collect();
        let total = match self.0.u8(0..16) {
            0 => "-1".to_string(),
            1 => "18446744073709551616".to_string(),
            2 => "\"3\"".to_string(),
            _ => n.to_string(),
        };
        let body = format!(
            r#"{{"total_count":{total},"{}":[{}],"currency":"CNY"}}"#,
            spec.api.list_key(),
            records.join(",")
        );
        // Mutations: truncated, a flipped byte, trailing garbage.
        match self.0.u8(0..16) {
            0 => {
                let mut i = self.0.usize(0..=body.len());
                while !body.is_char_boundary(i) {
                    i -= 1;
                }
                body[..i].to_string()
            }
            1 => {
                let mut b = body.into_bytes();
                let i = self.0.usize(0..b.len());
                b[i] = self.0.u8(32..127);
                String::from_utf8(b).unwrap_or_default()
            }
            2 => format!("{body} x"),
            _ => body,
        }
    }
}

/// (negative, digits without leading zeros, exponent): the value as a test
/// oracle independent of the parser under test. `None` if not a plain number.
fn canonical(token: &str) -> Option<(bool, String, i64)> {
    let t = token.trim().trim_matches('"').trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (mant, exp) = match t.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (t, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if !(int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())) || int.len() + frac.len() == 0 {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() {
        return Some((false, "0".into(), 0));
    }
    let mut d = trimmed.to_string();
    while d.ends_with('0') {
        d.pop();
        exp += 1;
    }
    Some((neg, d, exp))
}

/// Checks every decimal cell of `batch` against the token of its record.
fn assert_exact(batch: &RecordBatch, spec: &DatasetSpec, records: &[String]) {
    for (ci, c) in spec.columns.iter().enumerate() {
        if !matches!(c.kind, Kind::Dec(_)) {
            continue;
        }
        let a = batch.column(ci).as_any().downcast_ref::<Decimal128Array>().unwrap();
        for (ri, rec) in records.iter().enumerate() {
            // Raw tokens: a serde_json::Value would pass numbers through f64.
            let v: std::collections::HashMap<&str, &RawValue> = serde_json::from_str(rec).unwrap();
            let token = v.get(c.json).map(|t| t.get().trim());
            match token {
                None | Some("null") | Some("\"\"") => assert!(a.is_null(ri), "{}: {rec}", c.name),
                Some(tok) => {
                    let got = a.value_as_string(ri);
                    assert_eq!(canonical(&got), canonical(tok), "{}: token {tok} became {got}", c.name);
                }
            }
        }
    }
}

#[test]
fn random_and_adversarial_pages_never_panic_and_are_exact_or_refused() {
    let mut g = Gen(fastrand::Rng::with_seed(0x_4863_6269_6c6c));
    let (mut pages_ok, mut rows_ok, mut refused) = (0, 0, 0);
    let cycle = "2026-10".parse().unwrap();
    for case in 0..CASES {
        let spec = datasets::ALL[case % datasets::ALL.len()];
        // FOCUS rows are built from consumption records.
        let transform = match spec.derives {
            Some(datasets::Derivation::Rows { transform, .. }) => Some(transform),
            _ => None,
        };
        let source = if transform.is_some() {
            &datasets::consumption_records::SPEC
        } else {
            spec
        };
        let body = g.page(spec, source);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let page = match parse_page(body.clone(), spec.api, 0) {
                Ok(p) => p,
                Err(e) => {
                    if std::env::var("FUZZ_DEBUG").is_ok() && case < 40 {
                        eprintln!("refused: {e}");
                    }
                    return (false, 0);
                }
            };
            let lineage = Lineage {
                account_id: "a".into(),
                run_id: "r".into(),
                extracted_at_micros: 0,
            };
            let mut norm = Normalizer::new(spec.schema(), spec.columns, spec.money_columns, lineage)
                .with_unique_key(&spec.key_columns(), None);
            let ctx = TransformCtx {
                cycle,
                currency: page.currency.as_deref(),
                payer: None,
                companion: case % 2 == 0,
            };
            let mut accepted = Vec::new();
            for rec in page.records() {
                let row: std::borrow::Cow<str> = match transform {
                    Some(t) => match t(rec, &ctx) {
                        Ok(Some(r)) => r.get().to_string().into(),
                        Ok(None) => continue,
                        Err(e) => {
                            assert!(!e.is_empty());
                            return (true, 0);
                        }
                    },
                    None => rec.into(),
                };
                match norm.push(&row) {
                    Ok(()) => accepted.push(row.to_string()),
                    Err(e) => {
                        assert!(!e.to_string().is_empty());
                        // A refused row fails its unit: nothing after it matters.
                        return (true, 0);
                    }
                }
            }
            if norm.check_keys().is_err() {
                // A repeated key fails its unit too, once its last row is in.
                return (true, 0);
            }
            let batch = norm.take_batch().expect("accepted rows always make a batch");
            assert_eq!(batch.num_rows(), accepted.len());
            assert_exact(&batch, spec, &accepted);
            (true, accepted.len())
        }));
        match outcome {
            Ok((true, n)) => {
                pages_ok += 1;
                rows_ok += n;
            }
            Ok((false, _)) => refused += 1,
            Err(_) => panic!("case {case} ({}) panicked on body:\n{body}", spec.name),
        }
    }
    eprintln!("{pages_ok} pages parsed, {refused} refused, {rows_ok} rows checked exactly");
    // The generator reaches both outcomes often: the test exercises the exact path.
    assert!(pages_ok > CASES / 4, "{pages_ok} pages parsed");
    assert!(refused > CASES / 10, "{refused} pages refused");
    assert!(rows_ok > CASES / 10, "{rows_ok} rows accepted and checked");
}

#[test]
fn the_oracle_itself_is_sound() {
    assert_eq!(canonical("1.50"), canonical("15e-1"));
    assert_eq!(canonical("\"0.000\""), canonical("0"));
    assert_ne!(canonical("1.5"), canonical("1.05"));
    assert_eq!(canonical("-2"), Some((true, "2".into(), 0)));
    assert_eq!(canonical("0x1"), None);
}
