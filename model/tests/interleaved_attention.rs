//! Interleaved local/global attention (`swa:W@even`, `@odd`, `@A-B`): each layer keeps its own
//! window in the cache and in the masks. On the tiny Mistral model (2 layers, 1 K/V head of 16):
//! the per-layer cache decodes exactly as the one-pass forward, holds W slots for the windowed
//! layer only, and the result sits between the all-window and the all-full model.

mod common;

use common::{GoldenFile, cached_logits, device, fixtures, max_diff, to_vec};
use model::cache::layer_kv_bytes;
use model::{AttentionSpec, LoadedModel, StepInput, load_model};

const ATOL: f64 = 1e-4;

fn load(attention: &str) -> LoadedModel {
    let spec: AttentionSpec = attention.parse().unwrap();
    load_model(&fixtures().join("tiny/tiny-mistral-swa"), &spec, &device()).unwrap()
}

fn ids() -> Vec<u32> {
    GoldenFile::open(fixtures().join("tiny/tiny-mistral-swa/golden.safetensors")).ids("len40.input_ids")
}

fn one_pass(model: &LoadedModel, ids: &[u32]) -> Vec<f64> {
    to_vec(model.decoder.forward(&StepInput::single(ids, 0), None).unwrap())
}

#[test]
fn a_window_on_some_layers_decodes_as_it_forwards() {
    let ids = ids();
    let mixed = load("swa:8@even");
    assert_eq!(mixed.decoder.attention.windows, [Some(8), None]);
    let reference = one_pass(&mixed, &ids);
    let single_steps = max_diff(&cached_logits(&mixed, &ids, &[1; 40]), &reference);
    assert!(single_steps < ATOL, "40 single steps: {single_steps}");
    let mut chunks = vec![16];
    chunks.extend([1; 24]);
    let prefill = max_diff(&cached_logits(&mixed, &ids, &chunks), &reference);
    assert!(prefill < ATOL, "prefill 16 + decode 24: {prefill}");

    // Layer 0 keeps a rolling buffer of 8 slots, layer 1 all 40 tokens.
    let mut cache = mixed.decoder.new_cache(1);
    mixed
        .decoder
        .forward(&StepInput::single(&ids, 0), Some(&mut cache))
        .unwrap();
    let expected = layer_kv_bytes(1, 16, 1, 40, Some(8), 4) + layer_kv_bytes(1, 16, 1, 40, None, 4);
    assert_eq!((cache.bytes(), cache.len(), cache.slots()), (expected, 40, 40));
    // What a batch plans with, before any cache exists: at the converted head count too.
    assert_eq!(mixed.decoder.kv_bytes_per_row(40), expected);
    let mha = load("mha");
    assert!(mha.decoder.attention.kv_heads > mha.decoder.config.num_kv_heads);
    let mut cache = mha.decoder.new_cache(1);
    mha.decoder
        .forward(&StepInput::single(&ids, 0), Some(&mut cache))
        .unwrap();
    assert_eq!(mha.decoder.kv_bytes_per_row(40), cache.bytes());
}

#[test]
fn layer_selections_are_the_models_they_name() {
    let ids = ids();
    let (window, full) = (one_pass(&load("swa:8"), &ids), one_pass(&load("full"), &ids));
    // Both layers selected: the all-window model, which is the checkpoint's own (HF's golden).
    assert_eq!(one_pass(&load("swa:8@0-1"), &ids), window);
    let golden = GoldenFile::open(fixtures().join("tiny/tiny-mistral-swa/golden.safetensors"));
    assert!(max_diff(&window, &golden.get("len40.logits").values) < ATOL);
    // A window as long as the sequence changes nothing.
    assert!(max_diff(&one_pass(&load("swa:40@even"), &ids), &full) < 1e-6);
    // One windowed layer: neither model (beyond position 8, where the window starts to bite).
    let mixed = one_pass(&load("swa:8@odd"), &ids);
    assert!(max_diff(&mixed, &window) > 1e-3 && max_diff(&mixed, &full) > 1e-3);
    let vocab = mixed.len() / ids.len();
    let first_8 = 8 * vocab;
    assert!(max_diff(&mixed[..first_8], &full[..first_8]) < 1e-6);
}
