//! The generative tasks compared with lm-evaluation-harness 0.4.12 itself
//! (reference/gen_expected.json, made by reference/lm_eval_gen_reference.py, which runs lm-eval's
//! own ConfigurableTask, templates, few-shot samples, samplers, generation kwargs, filters and
//! metrics on data/):
//!
//! - every request (context, until, max_gen_toks, target; for code tasks the program of the
//!   canonical solution) of every task at its default shot count, and at other shot counts on
//!   the first items, as digests;
//! - extracted answers and metric values for tricky responses, and maj@k;
//! - minerva_math equivalence: where this crate's sympy-free check differs from lm-eval's.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::legacy::{GenOptions, GenTaskInstance, load_gen_task, score_responses};
use sha2::{Digest, Sha256};
use tasks::{GenItem, default_data_dir, is_equiv};

fn expected() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/gen_expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Must match `digest` in reference/lm_eval_gen_reference.py.
fn digest(items: &[GenItem]) -> String {
    let mut h = Sha256::new();
    for it in items {
        let mut s = [
            it.doc_id.to_string(),
            it.context.clone(),
            it.until.join("\x1e"),
            it.max_gen_toks.to_string(),
            it.target.clone(),
        ]
        .join("\x1f");
        if let Some(code) = &it.code {
            s.push('\x1f');
            s.push_str(&code.canonical_program());
        }
        s.push('\n');
        h.update(s.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn load(task: &str, shots: Option<usize>, limit: Option<usize>) -> GenTaskInstance {
    let options = GenOptions {
        shots,
        limit,
        ..GenOptions::default()
    };
    load_gen_task(task, &default_data_dir(), &options).unwrap_or_else(|e| panic!("{task}: {e}"))
}

#[test]
fn requests_equal_lm_evals() {
    let exp = expected();
    let cases = exp["requests"].as_array().unwrap();
    assert!(cases.len() >= 75, "reference cases missing");
    let mut failures = Vec::new();
    for case in cases {
        let task = case["task"].as_str().unwrap();
        let shots = case["shots"].as_u64().map(|s| s as usize);
        let limit = case["limit"].as_u64().map(|l| l as usize);
        let inst = load(task, shots, limit);
        assert_eq!(inst.shots as u64, case["default_shots"].as_u64().unwrap_or(0), "{task}");
        let n = case["items"].as_u64().unwrap() as usize;
        let got = digest(&inst.items);
        if inst.items.len() != n || got != case["sha256"].as_str().unwrap() {
            failures.push(format!(
                "{task} shots={shots:?} limit={limit:?}: {} items (lm-eval {n}), digest {got}",
                inst.items.len()
            ));
        }
    }
    assert!(failures.is_empty(), "differs from lm-eval:\n{}", failures.join("\n"));
}

/// Scored minerva_math responses where lm-eval's sympy-based `is_equiv` and ours disagree
/// (response, doc_id), with why.
const MINERVA_SCORE_EXCEPTIONS: [(&str, usize); 1] = [
    // Gold "2x^9-…-24x^2": sympy keeps x**2.0 (a Float exponent) apart from x**2 in
    // simplify(a - b); numerically they are equal, and ours says equal.
    (
        "Final Answer: The final answer is $2x^9-8x^7+9x^6-16x^5-12x^4+9x^3-24x^2.0$. I hope it is correct.",
        39,
    ),
];

#[test]
fn scores_equal_lm_evals() {
    let exp = expected();
    let mut tasks: HashMap<String, GenTaskInstance> = HashMap::new();
    let mut failures = Vec::new();
    let mut checked = 0;
    for section in ["scores", "majority"] {
        for case in exp[section].as_array().unwrap() {
            let task = case["task"].as_str().unwrap();
            let inst = tasks.entry(task.to_string()).or_insert_with(|| load(task, None, None));
            let doc_id = case["doc_id"].as_u64().unwrap() as usize;
            let item = &inst.items[doc_id];
            let responses: Vec<String> = case["responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            let ours = score_responses(inst, item, &responses);
            let theirs: BTreeMap<String, f64> = case["metrics"]
                .as_object()
                .unwrap()
                .iter()
                // minerva's math_verify (math-verify package) is not implemented here.
                .filter(|(k, _)| !k.starts_with("math_verify,"))
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                .collect();
            let mine: BTreeMap<String, f64> = ours.scores.iter().map(|s| (s.lm_eval_key.clone(), s.value)).collect();
            let exception = task.starts_with("minerva_math_")
                && MINERVA_SCORE_EXCEPTIONS
                    .iter()
                    .any(|(r, d)| responses.len() == 1 && responses[0] == *r && *d == doc_id);
            if mine != theirs && !exception {
                failures.push(format!(
                    "{section} {task} #{doc_id} {responses:?}: ours {mine:?}, lm-eval {theirs:?}"
                ));
            }
            // Extracted answers, for the filter pipelines (minerva's "none" filter passes the raw text).
            for s in &ours.scores {
                let filter = s.lm_eval_key.split(',').nth(1).unwrap();
                if filter == "none" {
                    continue;
                }
                let want = &case["extracted"][filter];
                let want = want.as_str().map(str::to_string).unwrap_or_else(|| want.to_string());
                if s.answer != want {
                    failures.push(format!(
                        "{section} {task} #{doc_id} {responses:?} [{filter}]: extracted {:?}, lm-eval {want:?}",
                        s.answer
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 300, "too few score cases: {checked}");
    assert!(failures.is_empty(), "differs from lm-eval:\n{}", failures.join("\n"));
}

/// Gold answers for which our `is_equiv(g, g)` differs from lm-eval's (sympy's parser accepts or
/// rejects them differently from ours). Each is listed with the reason.
const GOLD_SELF_EXCEPTIONS: [&str; 0] = [];

/// Pairs where ours differs from sympy (README, "Tasks and their deviations").
const PAIR_EXCEPTIONS: [(&str, &str); 1] = [
    // sympy adds 1/3 + 1/6 - 0.5 in Float in its own term order, leaving 2.8e-17; exact here.
    ("\\frac{1}{3}+\\frac{1}{6}", "0.5"),
];

#[test]
fn minerva_equivalence_agrees_with_lm_eval() {
    let exp = expected();
    let eq = &exp["minerva_equiv"];
    let lm_unequal: Vec<&str> = eq["gold_self_unequal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut golds = Vec::new();
    for t in common::legacy::group_members("math").unwrap() {
        golds.extend(
            load(&t, Some(0), None)
                .items
                .into_iter()
                .map(|i| i.references[0].clone()),
        );
    }
    assert_eq!(golds.len() as u64, eq["gold_count"].as_u64().unwrap());
    let mut diffs = Vec::new();
    let mut lm_iter = lm_unequal.iter().peekable();
    for g in &golds {
        let lm_equal = if lm_iter.peek() == Some(&&g.as_str()) {
            lm_iter.next();
            false
        } else {
            true
        };
        let ours = is_equiv(g, g);
        if ours != lm_equal && !GOLD_SELF_EXCEPTIONS.contains(&g.as_str()) {
            diffs.push(format!("gold {g:?}: ours {ours}, lm-eval {lm_equal}"));
        }
    }
    assert!(lm_iter.next().is_none(), "gold list out of step with lm-eval's");
    for p in eq["pairs"].as_array().unwrap() {
        let (a, b) = (p["a"].as_str().unwrap(), p["b"].as_str().unwrap());
        let ours = is_equiv(a, b);
        if ours != p["lm_eval"].as_bool().unwrap() && !PAIR_EXCEPTIONS.contains(&(a, b)) {
            diffs.push(format!("pair {a:?} ~ {b:?}: ours {ours}, lm-eval {}", !ours));
        }
    }
    assert!(diffs.is_empty(), "{} differences:\n{}", diffs.len(), diffs.join("\n"));
}
