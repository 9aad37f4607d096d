//! Every request this crate builds, compared with the requests lm-evaluation-harness 0.4.12
//! itself builds from the same bundled data (digests in reference/expected_digests.json, made by
//! reference/lm_eval_reference.py, which runs lm-eval's own ConfigurableTask, templates,
//! process_docs, samplers and seeding on data/).

mod common;

use common::legacy::{TaskOptions, load_task};
use sha2::{Digest, Sha256};
use tasks::{McItem, default_data_dir};

/// Must match `digest` in reference/lm_eval_reference.py.
fn digest(items: &[McItem]) -> String {
    let mut h = Sha256::new();
    for it in items {
        let chars: Vec<String> = it.choice_chars.iter().map(|c| c.to_string()).collect();
        let mut s = format!("{}\x1f{}\x1f{}", it.doc_id, it.gold, chars.join(","));
        for r in &it.requests {
            s.push('\x1e');
            s.push_str(&r.context);
            s.push('\x1d');
            s.push_str(&r.continuation);
        }
        s.push('\n');
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn requests_equal_lm_evals_on_the_bundled_data() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/expected_digests.json");
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() > 120, "reference cases missing");
    let dir = default_data_dir();
    let mut failures = Vec::new();
    for case in cases {
        let task = case["task"].as_str().unwrap();
        let options = TaskOptions {
            shots: case["shots"].as_u64().unwrap() as usize,
            seed: case["seed"].as_u64().unwrap(),
            limit: case["limit"].as_u64().map(|l| l as usize),
        };
        // lm-eval's `social_iqa` is this crate's `siqa` (accepted as an alias).
        let inst = load_task(task, &dir, &options).unwrap();
        let n = case["items"].as_u64().unwrap() as usize;
        let got = digest(&inst.items);
        if inst.items.len() != n || got != case["sha256"].as_str().unwrap() {
            failures.push(format!(
                "{task} shots={} seed={} limit={:?}: {} items (lm-eval {n}), digest {got}",
                options.shots,
                options.seed,
                options.limit,
                inst.items.len()
            ));
        }
    }
    assert!(failures.is_empty(), "differs from lm-eval:\n{}", failures.join("\n"));
}
