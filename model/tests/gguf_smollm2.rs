//! The real SmolLM2-135M-Instruct Q4_1 GGUF against the reference fixtures made with gguf-py and
//! transformers (shared/fixtures/README.md §2.5): dequantized sample rows bit-exact in GGUF and
//! HF row order, all 272 tensors' names, shapes and checksums, and the metadata.

use std::path::{Path, PathBuf};

use model::load::gguf::{GgufFile, GgufValue, hf_name, unpermute_qk_rows};
use safetensors::SafeTensors;
use serde_json::Value;

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("../../shared/fixtures/smollm2").join(name)
}

fn open_model() -> GgufFile {
    let path = manifest_dir().join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-model.sh to download it",
        path.display()
    );
    GgufFile::open(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// (fixture key, GGUF tensor, n_head to un-permute with, rows kept).
const SAMPLES: &[(&str, &str, Option<usize>, usize)] = &[
    (
        "blk.0.attn_k.weight.gguf_order.rows0_64",
        "blk.0.attn_k.weight",
        None,
        64,
    ),
    (
        "blk.0.attn_k.weight.hf_order.rows0_64",
        "blk.0.attn_k.weight",
        Some(3),
        64,
    ),
    (
        "blk.0.attn_q.weight.gguf_order.rows0_64",
        "blk.0.attn_q.weight",
        None,
        64,
    ),
    (
        "blk.0.attn_q.weight.hf_order.rows0_64",
        "blk.0.attn_q.weight",
        Some(9),
        64,
    ),
    ("blk.0.attn_norm.weight", "blk.0.attn_norm.weight", None, 576),
    ("blk.0.ffn_down.weight.rows0_4", "blk.0.ffn_down.weight", None, 4),
    ("output_norm.weight", "output_norm.weight", None, 576),
    ("token_embd.weight.rows0_16", "token_embd.weight", None, 16),
];

#[test]
fn sample_rows_are_bit_exact_in_both_orders() {
    let gguf = open_model();
    let bytes = std::fs::read(fixture("gguf_samples.safetensors")).unwrap();
    let samples = SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        samples.len(),
        SAMPLES.len(),
        "fixture has keys this test does not check"
    );
    for &(key, tensor, n_head, rows) in SAMPLES {
        let want = samples.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        let want = f32_values(want.data());
        let (shape, mut data) = gguf.tensor_f32(tensor).unwrap();
        if let Some(n_head) = n_head {
            data = unpermute_qk_rows(&data, shape[0], shape[1], n_head);
        }
        let cols: usize = shape[1..].iter().product();
        let got = &data[..rows * cols];
        assert_eq!(got.len(), want.len(), "{key}");
        let mismatches = bits(got).iter().zip(bits(&want)).filter(|(a, b)| *a != b).count();
        assert_eq!(mismatches, 0, "{key}: {mismatches} values differ");
    }
}

#[test]
fn unpermuted_tensor_matches_manual_unpermute() {
    let gguf = open_model();
    let (shape, raw) = gguf.tensor_f32("blk.3.attn_k.weight").unwrap();
    let (shape2, hf) = gguf.tensor_f32_unpermuted("blk.3.attn_k.weight", 3).unwrap();
    assert_eq!(shape, vec![192, 576]);
    assert_eq!(shape2, shape);
    assert_eq!(bits(&hf), bits(&unpermute_qk_rows(&raw, 192, 576, 3)));
    // 192 rows do not split into 5 heads: an error naming the file, not a panic.
    let err = gguf
        .tensor_f32_unpermuted("blk.3.attn_k.weight", 5)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SmolLM2-135M-Instruct.Q4_1.gguf") && err.contains("attn_k"),
        "{err}"
    );
}

/// Applies the map's `transform` ("none" or "reverse_permute(n_head=N)").
fn apply_transform(transform: &str, shape: &[usize], data: Vec<f32>) -> Vec<f32> {
    if transform == "none" {
        return data;
    }
    let n_head = transform
        .strip_prefix("reverse_permute(n_head=")
        .and_then(|s| s.strip_suffix(')'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unknown transform {transform}"));
    unpermute_qk_rows(&data, shape[0], shape[1], n_head)
}

fn json_usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn assert_close(got: f64, want: f64, what: &str) {
    let rel = (got - want).abs() / want.abs().max(1e-300);
    assert!(rel <= 1e-9, "{what}: got {got}, want {want} (relative error {rel:e})");
}

#[test]
fn all_tensors_match_the_map() {
    let gguf = open_model();
    let map: Value = serde_json::from_str(&std::fs::read_to_string(fixture("gguf_tensor_map.json")).unwrap()).unwrap();
    let entries = map["tensors"].as_array().unwrap();
    assert_eq!(entries.len(), 272);
    assert_eq!(gguf.tensors.len(), 272);
    for entry in entries {
        let name = entry["gguf_name"].as_str().unwrap();
        let info = gguf.tensor_info(name).unwrap_or_else(|| panic!("no tensor {name}"));
        let ne: Vec<u64> = json_usizes(&entry["gguf_ne"]).iter().map(|&d| d as u64).collect();
        assert_eq!(info.ne, ne, "{name} ne");
        assert_eq!(
            info.ggml_type.name(),
            entry["ggml_type"].as_str().unwrap(),
            "{name} type"
        );
        assert_eq!(hf_name(name).as_deref(), entry["hf_name"].as_str(), "{name} hf_name");

        let (shape, data) = gguf.tensor_f32(name).unwrap();
        assert_eq!(shape, json_usizes(&entry["dequantized_numpy_shape"]), "{name} shape");
        assert_eq!(shape, json_usizes(&entry["hf_shape"]), "{name} hf shape");
        let data = apply_transform(entry["transform"].as_str().unwrap(), &shape, data);

        let sum: f64 = data.iter().map(|&x| x as f64).sum();
        let sumsq: f64 = data.iter().map(|&x| (x as f64) * (x as f64)).sum();
        assert_close(sum, entry["sum_f64"].as_f64().unwrap(), &format!("{name} sum"));
        assert_close(sumsq, entry["sumsq_f64"].as_f64().unwrap(), &format!("{name} sumsq"));
        // Compared as f32: serde_json's default float parser can be one f64 ulp off, which
        // rounds away when narrowing to the f32 the values are.
        let first4: Vec<f32> = entry["first4_hf_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(bits(&data[..4]), bits(&first4), "{name} first4");
    }
}

#[test]
fn metadata_values() {
    let gguf = open_model();
    assert_eq!(gguf.version, 3);
    assert_eq!(gguf.metadata.len(), 33);
    assert_eq!(gguf.alignment(), 32);
    assert_eq!(gguf.data_start(), 1_785_664);
    let u = |k: &str| gguf.get(k).and_then(GgufValue::as_u64).unwrap_or_else(|| panic!("{k}"));
    let s = |k: &str| gguf.get(k).and_then(GgufValue::as_str).unwrap_or_else(|| panic!("{k}"));

    assert_eq!(s("general.architecture"), "llama");
    assert_eq!(s("general.name"), "Smollm2 135M 8k Lc100K Mix1 Ep2");
    assert_eq!(u("llama.block_count"), 30);
    assert_eq!(u("llama.context_length"), 8192);
    assert_eq!(u("llama.embedding_length"), 576);
    assert_eq!(u("llama.feed_forward_length"), 1536);
    assert_eq!(u("llama.attention.head_count"), 9);
    assert_eq!(u("llama.attention.head_count_kv"), 3);
    assert_eq!(u("llama.rope.dimension_count"), 64);
    assert_eq!(u("llama.vocab_size"), 49152);
    assert_eq!(u("general.file_type"), 3);
    assert_eq!(gguf.get("llama.block_count"), Some(&GgufValue::U32(30)));
    assert_eq!(gguf.get("llama.rope.freq_base"), Some(&GgufValue::F32(100000.0)));
    let eps = gguf
        .get("llama.attention.layer_norm_rms_epsilon")
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(eps, 9.999999747378752e-06);

    assert_eq!(s("tokenizer.ggml.model"), "gpt2");
    assert_eq!(s("tokenizer.ggml.pre"), "smollm");
    assert_eq!(u("tokenizer.ggml.bos_token_id"), 1);
    assert_eq!(u("tokenizer.ggml.eos_token_id"), 2);
    assert_eq!(u("tokenizer.ggml.unknown_token_id"), 0);
    assert_eq!(u("tokenizer.ggml.padding_token_id"), 2);
    assert_eq!(gguf.get("tokenizer.ggml.add_bos_token").unwrap().as_bool(), Some(false));
    assert_eq!(
        gguf.get("tokenizer.ggml.add_space_prefix").unwrap().as_bool(),
        Some(false)
    );
    assert!(s("tokenizer.chat_template").starts_with("{% for message in messages %}"));

    let tokens = gguf.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.len(), 49152);
    let first: Vec<&str> = tokens[..3].iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(first, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
    let merges = gguf.get("tokenizer.ggml.merges").unwrap().as_array().unwrap();
    assert_eq!(merges.len(), 48900);
    assert_eq!(merges[0].as_str(), Some("Ġ t"));
    let types = gguf.get("tokenizer.ggml.token_type").unwrap().as_array().unwrap();
    assert_eq!(types.len(), 49152);
    assert_eq!(types[0], GgufValue::I32(3));
    assert_eq!(types[16].as_i64(), Some(3));
    let languages = gguf.get("general.languages").unwrap().as_array().unwrap();
    assert_eq!(languages, [GgufValue::String("en".into())]);
    assert!(gguf.get("no.such.key").is_none());
}

#[test]
fn tensor_directory() {
    let gguf = open_model();
    assert!(
        gguf.tensor_info("output.weight").is_none(),
        "SmolLM2 ties lm_head to the embedding"
    );
    let err = gguf.tensor_f32("output.weight").unwrap_err().to_string();
    assert!(err.contains("SmolLM2-135M-Instruct.Q4_1.gguf") && err.contains("output.weight"));
    let k = gguf.tensor_info("blk.0.attn_k.weight").unwrap();
    assert_eq!(k.ne, vec![576, 192]);
    assert_eq!(k.shape(), vec![192, 576]);
    assert_eq!(k.offset % 32, 0);
    for info in &gguf.tensors {
        assert!(hf_name(&info.name).is_some(), "{} has no HF name", info.name);
    }
}
