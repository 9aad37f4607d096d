//! The command line as a user meets it: the logprobs JSON shape, and bad input giving an error
//! that names the file, with a non-zero exit and no panic.

mod common;

use common::root;
use std::process::{Command, Output};

use serde_json::Value;

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().unwrap()
}

#[test]
fn logprobs_json_has_one_entry_per_token() {
    let model = root().join("../shared/fixtures/tiny/tiny-llama-gqa");
    let out = harness(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--ids",
        "5,17,3,200",
        "--top-k",
        "4",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["tokens"], serde_json::json!([5, 17, 3, 200]));
    let positions = json["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 4);
    assert!(positions[0]["logprob"].is_null());
    for (i, p) in positions.iter().enumerate() {
        let top = p["top"].as_array().unwrap();
        assert_eq!(top.len(), 4);
        let lps: Vec<f64> = top.iter().map(|t| t[1].as_f64().unwrap()).collect();
        assert!(lps.windows(2).all(|w| w[0] >= w[1]), "top-k sorted best first");
        if i > 0 {
            let lp = p["logprob"].as_f64().unwrap();
            assert!(lp <= 0.0 && lp >= lps[0] - 50.0);
        }
    }
    // Chunked pre-fill gives the same numbers.
    let chunked = harness(&[
        "logprobs",
        "--model",
        model.to_str().unwrap(),
        "--ids",
        "5,17,3,200",
        "--top-k",
        "4",
        "--chunk",
        "3",
        "--json",
    ]);
    let chunked: Value = serde_json::from_slice(&chunked.stdout).unwrap();
    for (a, b) in positions.iter().zip(chunked["positions"].as_array().unwrap()) {
        if let (Some(x), Some(y)) = (a["logprob"].as_f64(), b["logprob"].as_f64()) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}

#[test]
fn bad_model_files_fail_cleanly_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let real = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        real.is_file(),
        "{} is missing: run scripts/fetch-model.sh",
        real.display()
    );
    let bytes = std::fs::read(&real).unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model at all").unwrap();
    for path in [truncated, empty, garbage, dir.path().join("missing.gguf")] {
        let out = harness(&["logprobs", "--model", path.to_str().unwrap(), "--ids", "1,2"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", path.display());
        assert!(stderr.contains(path.file_name().unwrap().to_str().unwrap()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = harness(&[
        "logprobs",
        "--model",
        real.to_str().unwrap(),
        "--ids",
        "1,2",
        "--attention",
        "gqa:4",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not divide"));
}
