//! Reads one API row into per-column slots of raw values, borrowing keys and
//! values from the row's text: no map and no key allocation per row.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::de::{self, Visitor};

use super::Column;

/// FNV-1a: the keys are short and trusted; SipHash showed up in profiles.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type KeyIndex = HashMap<&'static str, usize, BuildHasherDefault<Fnv>>;

/// Finds a row's keys among the columns. Rows of one API list their keys in
/// the same order, so the column found at each position of the last row is
/// tried first: one comparison instead of a hash lookup, most of the time.
pub struct KeyFinder {
    index: KeyIndex,
    json: Vec<&'static str>,
    /// The column at each position of the last row (None: not a column).
    order: Vec<Option<usize>>,
}

impl KeyFinder {
    pub fn new(columns: &'static [Column]) -> Self {
        Self {
            index: columns.iter().enumerate().map(|(i, c)| (c.json, i)).collect(),
            json: columns.iter().map(|c| c.json).collect(),
            order: Vec::new(),
        }
    }

    fn find(&mut self, pos: usize, key: &str) -> Option<usize> {
        if let Some(Some(c)) = self.order.get(pos)
            && self.json[*c] == key
        {
            return Some(*c);
        }
        let c = self.index.get(key).copied();
        if let Some(slot) = self.order.get_mut(pos) {
            *slot = c;
        } else if pos == self.order.len() && pos < 512 {
            // Positions past a few hundred are not remembered (a hostile row).
            self.order.push(c);
        }
        c
    }
}

/// A JSON object key, borrowed unless it had escapes.
pub enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Key<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Where each column's value lies in one row's text: `(start, end)` byte
/// offsets, so the slots can be reused from row to row without borrowing it.
/// `end` carries [`PLAIN`] when the value is a string without escapes.
pub type Span = Option<(u32, u32)>;

/// Marks a span whose value is a string with no escapes: its text between
/// the quotes is the string itself, with nothing to decode or look for.
pub const PLAIN: u32 = 1 << 31;

/// The value's token, and whether it is a plain string (see [`PLAIN`]).
pub fn token(record: &str, span: Span) -> Option<(&str, bool)> {
    span.map(|(a, b)| (&record[a as usize..(b & !PLAIN) as usize], b & PLAIN != 0))
}

/// Fills `slots` with where each known key's value lies in `record`, a JSON
/// object; keys not in `index` go to `unknown`.
///
/// The row was validated when its page was parsed (serde_json read it as a
/// raw value), so this second look only finds keys and value boundaries: it
/// decodes nothing but escaped keys and validates nothing it does not need,
/// which is what makes it cheaper than a second serde pass. It never panics
/// on text that is not valid JSON; it reports what it cannot walk.
pub fn scan_record(
    record: &str,
    keys: &mut KeyFinder,
    slots: &mut [Span],
    unknown: &mut BTreeSet<String>,
) -> Result<(), String> {
    let b = record.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err("expected a JSON object".into());
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1);
    }
    let mut pos = 0;
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(format!("expected a key at byte {i}"));
        }
        let (close, escaped) = string_end(b, i)?;
        let decoded;
        let key = if escaped {
            decoded = serde_json::from_str::<String>(&record[i..=close]).map_err(|e| e.to_string())?;
            decoded.as_str()
        } else {
            &record[i + 1..close]
        };
        i = ws(b, close + 1);
        if b.get(i) != Some(&b':') {
            return Err(format!("expected ':' at byte {i}"));
        }
        let start = ws(b, i + 1);
        let (stop, plain) = value_end(b, start)?;
        match keys.find(pos, key) {
            Some(c) => slots[c] = Some((start as u32, stop as u32 | if plain { PLAIN } else { 0 })),
            None => {
                if !unknown.contains(key) {
                    unknown.insert(key.to_string());
                }
            }
        }
        pos += 1;
        i = ws(b, stop);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return end(b, i + 1),
            _ => return Err(format!("expected ',' or '}}' at byte {i}")),
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
        i += 1;
    }
    i
}

fn end(b: &[u8], i: usize) -> Result<(), String> {
    if ws(b, i) == b.len() {
        Ok(())
    } else {
        Err(format!("trailing characters at byte {i}"))
    }
}

/// The index of the quote closing the string opening at `i`, and whether
/// the string had escapes.
fn string_end(b: &[u8], i: usize) -> Result<(usize, bool), String> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
            Some(k) if b[j + k] == b'"' => return Ok((j + k, escaped)),
            Some(k) => {
                escaped = true;
                j += k + 2;
            }
            None => return Err("unterminated string".into()),
        }
    }
}

/// The index just past the value starting at `i`, and whether the value is
/// a string without escapes.
fn value_end(b: &[u8], i: usize) -> Result<(usize, bool), String> {
    match b.get(i) {
        Some(b'"') => string_end(b, i).map(|(close, escaped)| (close + 1, !escaped)),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => j = string_end(b, j)?.0,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok((j + 1, false));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err("unterminated object or array".into())
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                j += 1;
            }
            Ok((j, false))
        }
        None => Err("expected a value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, Kind, col};
    use serde_json::value::RawValue;

    static COLS: [Column; 4] = [
        col("a", Kind::Str),
        col("b", Kind::Str),
        col("n", Kind::Str),
        col("k\"ey", Kind::Str),
    ];

    /// The spans agree with serde_json's own reading of the same row.
    #[test]
    fn spans_match_serde_json() {
        let mut keys = KeyFinder::new(&COLS);
        for row in [
            r#"{"a":"x","b":1.50,"n":{"z":[1,"]}",{"q":"\"}"}]},"zz":null}"#,
            " { \"a\" : \"esc \\\" \\\\ \\u00e9\" , \"b\" : [ ] , \"k\\\"ey\" : -1e-7 } ",
            r#"{"a":"first","a":"second","b":true,"n":"云 ☁"}"#,
            r#"{}"#,
            r#"{"x\u0061":"not a","b":"{[\"}"}"#,
        ] {
            let mut slots = vec![None; COLS.len()];
            let mut unknown = BTreeSet::new();
            scan_record(row, &mut keys, &mut slots, &mut unknown).unwrap();
            let map: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(row).unwrap();
            for (i, c) in COLS.iter().enumerate() {
                let ours = token(row, slots[i]);
                assert_eq!(ours.map(|t| t.0), map.get(c.json).map(|r| r.get()), "{row}: {}", c.json);
                // Plain: a string whose text between the quotes is the string.
                if let Some((t, true)) = ours {
                    assert_eq!(serde_json::from_str::<String>(t).unwrap(), t[1..t.len() - 1]);
                }
                if let Some((t, false)) = ours {
                    assert!(!t.starts_with('"') || t.contains('\\'), "{t}");
                }
            }
            let theirs: BTreeSet<String> = map
                .keys()
                .filter(|k| !COLS.iter().any(|c| c.json == k.as_str()))
                .cloned()
                .collect();
            assert_eq!(unknown, theirs, "{row}");
        }
    }

    #[test]
    fn what_it_cannot_walk_is_an_error_never_a_panic() {
        let mut keys = KeyFinder::new(&COLS);
        for row in [
            "[1]",
            "1",
            "\"a\"",
            "",
            "{",
            r#"{"a""#,
            r#"{"a":"#,
            r#"{"a":"x"#,
            r#"{"a":"x" "b":1}"#,
            r#"{"a":[1,2}"#,
            r#"{"a":1}x"#,
            r#"{"a\"#,
            r#"{"a":{"b":"#,
        ] {
            let mut slots = vec![None; COLS.len()];
            assert!(
                scan_record(row, &mut keys, &mut slots, &mut BTreeSet::new()).is_err(),
                "{row}"
            );
        }
    }
}
