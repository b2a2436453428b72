//! The reliability report: the figures each family of tests/tests/faults.rs
//! recorded (`make test` prints it after the tests). Exits 1 when a family
//! is missing or any of them leaked, doubled, missed or touched anything.
//!
//! Usage: reliability DIR (the tests' CARGO_TARGET_TMPDIR: <target>/tmp).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use eks_private_dns_tests::table;
use serde_json::Value;

const FAMILIES: &[&str] = &[
    "replay",
    "concurrency",
    "concurrency, three accounts",
    "faults",
    "faults, three accounts",
    "crash",
    "crash, three accounts",
    "bad input",
];

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .context("usage: reliability DIR (the tests' target tmp folder)")?
        .into();
    let dir = dir.join("reliability");
    let mut rows = vec![[
        "family",
        "runs",
        "requests",
        "writes",
        "faults injected",
        "SDK retries",
        "further runs",
        "leaked",
        "doubled",
        "missing",
        "foreign touched",
    ]
    .map(String::from)
    .to_vec()];
    let mut bad = Vec::new();
    let mut kinds = Vec::new();
    for family in FAMILIES {
        let path = dir.join(format!("{family}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            bad.push(format!("{family}: no figures (did its test run?)"));
            continue;
        };
        let v: Value = serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let n = |k: &str| v[k].as_u64().unwrap_or(0);
        rows.push(vec![
            family.to_string(),
            n("runs").to_string(),
            n("requests").to_string(),
            n("writes").to_string(),
            n("faults").to_string(),
            n("sdk_retries").to_string(),
            n("further_reconciles").to_string(),
            n("leaked").to_string(),
            n("doubled").to_string(),
            n("missing").to_string(),
            n("foreign_touched").to_string(),
        ]);
        for k in [
            "leaked",
            "doubled",
            "missing",
            "foreign_touched",
            "failures",
        ] {
            if n(k) != 0 {
                bad.push(format!("{family}: {k} = {}", n(k)));
            }
        }
        if let Some(by_kind) = v["faults_by_kind"].as_object() {
            if !by_kind.is_empty() {
                let list: Vec<String> = by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
                kinds.push(format!("{family}: {}", list.join(", ")));
            }
        }
    }
    println!("reliability (tests/tests/faults.rs):");
    table(&rows);
    for line in kinds {
        println!("  faults by kind, {line}");
    }
    if !bad.is_empty() {
        for b in &bad {
            eprintln!("reliability: {b}");
        }
        bail!("the reliability figures are not clean");
    }
    Ok(())
}
