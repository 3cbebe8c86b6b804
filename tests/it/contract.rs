//! `schemas/<dataset>.json` is the contract: the code's schema must match it.
//! After an intended change, regenerate with `HCBILL_BLESS=1 cargo test contract`
//! and bump the dataset's version.

use std::path::Path;

use hcbill::contract::contract_text;
use hcbill::source::datasets;

#[test]
fn committed_schemas_match_the_code() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let bless = std::env::var_os("HCBILL_BLESS").is_some();
    let mut mismatched = Vec::new();
    for spec in datasets::ALL {
        let path = dir.join(format!("{}.json", spec.name));
        let want = contract_text(spec);
        if bless {
            std::fs::write(&path, &want).unwrap();
            continue;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        if have != want {
            mismatched.push(spec.name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "schema contract differs for {mismatched:?}: review, bump the version, then HCBILL_BLESS=1 cargo test contract"
    );
    // Every committed contract belongs to a dataset.
    for f in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().to_string();
        if let Some(ds) = name.strip_suffix(".json") {
            assert!(datasets::by_name(ds).is_some(), "schemas/{name} has no dataset");
        }
    }
}
