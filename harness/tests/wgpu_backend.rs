//! The wgpu backend executed (CI builds `--features model/wgpu` and runs this on Mesa's software
//! Vulkan driver, lavapipe): the same `harness eval` on wgpu and on flex agrees within a stated
//! tolerance, and a machine without an adapter gets a clear error naming the backend. In a build
//! without wgpu, `--backend wgpu` must be refused as not compiled in.

mod common;

use common::gguf;
use std::path::Path;
use std::process::{Command, Output};

use harness::run_task::multiple_choice::McSample;
use model::backend::BackendKind;

/// Largest |Δ log-likelihood| per continuation token allowed between wgpu and flex, both f32:
/// the per-token tolerance both are held to against lm-eval on HF transformers
/// (`loglikelihood_fixture.rs`). Measured on lavapipe: 5.6e-5 (README, Backends).
const PER_TOKEN_ATOL: f64 = 1e-3;

/// The same for wgpu's default `--dtype auto` (f16) against flex f32: f16's bound on any one
/// next-token log-prob against transformers f32 (model/tests/half_precision.rs), which bounds a
/// continuation's mean per token. Measured on lavapipe: 0.020 (flex f16: 0.041).
const HALF_PER_TOKEN_ATOL: f64 = 0.05;

/// `harness eval --tasks arc_easy --limit N --backend B --dtype D` on SmolLM2 into `out`, with
/// `env` set.
fn eval_arc_easy_run(limit: usize, backend: &str, dtype: &str, out: &Path, env: &[(&str, &str)]) -> Output {
    let (model, limit) = (gguf(), limit.to_string());
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--tasks",
        "arc_easy",
        "--limit",
        &limit,
        "--backend",
        backend,
        "--dtype",
        dtype,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_harness"));
    command.args(args).envs(env.iter().copied());
    command.output().unwrap()
}

fn eval_arc_easy(backend: &str, dtype: &str, out: &Path) -> Vec<McSample> {
    let run = eval_arc_easy_run(20, backend, dtype, out, &[]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{backend}: {stderr}");
    let text = std::fs::read_to_string(out.join("samples/arc_easy.jsonl")).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn arc_easy_on_wgpu_agrees_with_flex() {
    if !BackendKind::Wgpu.compiled() {
        eprintln!("built without wgpu: nothing to compare (see no_adapter_is_a_clear_error)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flex = eval_arc_easy("flex", "f32", &dir.path().join("flex"));
    let wgpu = eval_arc_easy("wgpu", "f32", &dir.path().join("wgpu"));
    assert_eq!(flex.len(), 20);
    let largest = largest_per_token_difference(&wgpu, &flex, PER_TOKEN_ATOL);
    for (w, f) in wgpu.iter().zip(&flex) {
        assert_eq!(
            (w.prediction, w.prediction_norm, &w.is_greedy),
            (f.prediction, f.prediction_norm, &f.is_greedy),
            "doc {}",
            f.doc_id
        );
    }
    println!("arc_easy 20 items: largest |Δ log-likelihood| per token, wgpu f32 vs flex f32: {largest:.2e}");

    let half = dir.path().join("wgpu-auto");
    let wgpu_half = eval_arc_easy("wgpu", "auto", &half);
    let identity = std::fs::read_to_string(half.join("identity.json")).unwrap();
    assert!(
        identity.contains(r#""dtype": "f16""#),
        "auto on wgpu is f16: {identity}"
    );
    let largest = largest_per_token_difference(&wgpu_half, &flex, HALF_PER_TOKEN_ATOL);
    println!("arc_easy 20 items: largest |Δ log-likelihood| per token, wgpu f16 vs flex f32: {largest:.2e}");
}

/// Asserts that `ours` scored the same requests as `reference` with every continuation's
/// log-likelihood within `atol` per token; returns the largest difference per token.
fn largest_per_token_difference(ours: &[McSample], reference: &[McSample], atol: f64) -> f64 {
    assert_eq!(ours.len(), reference.len());
    let mut largest: f64 = 0.0;
    for (o, r) in ours.iter().zip(reference) {
        assert_eq!(o.doc_id, r.doc_id);
        assert_eq!(o.continuation_tokens, r.continuation_tokens, "doc {}", r.doc_id);
        let pairs = o.loglikelihoods.iter().zip(&r.loglikelihoods);
        for ((a, b), &tokens) in pairs.zip(&r.continuation_tokens) {
            let per_token = (a - b).abs() / tokens as f64;
            largest = largest.max(per_token);
            assert!(per_token <= atol, "doc {}: {a} vs reference {b}", r.doc_id);
        }
    }
    largest
}

/// With every Vulkan driver and EGL vendor hidden, `--backend wgpu` is refused with exit 1 and a
/// message naming the backend (cubecl itself panics at the first tensor), before any run folder
/// is made; a build without wgpu refuses it as not compiled in, the same way.
#[test]
fn no_adapter_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let hidden = [
        ("VK_DRIVER_FILES", "/nonexistent.json"),
        ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ("__EGL_VENDOR_LIBRARY_FILENAMES", "/nonexistent.json"),
    ];
    let run = eval_arc_easy_run(1, "wgpu", "auto", &out, &hidden);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let reason = match BackendKind::Wgpu.compiled() {
        true => "backend `wgpu` cannot start",
        false => "backend `wgpu` is not compiled into this build",
    };
    assert!(stderr.contains(reason), "{stderr}");
    assert!(!out.exists(), "a run that cannot start leaves no run folder");
}
