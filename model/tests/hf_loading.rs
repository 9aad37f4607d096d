//! HuggingFace folders: sharded checkpoints, half-precision tensors, and every kind of bad input
//! giving an error that names the file and the problem.

mod common;

use std::path::{Path, PathBuf};

use common::{device, fixtures, max_diff, to_vec};
use model::load::safetensors::SafetensorsSource;
use model::load::weights::WeightSource;
use model::{AttentionSpec, StepInput, load_model};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde_json::{Value, json};

fn tiny_dir() -> PathBuf {
    fixtures().join("tiny/tiny-llama-gqa")
}

/// (name, dtype, shape, bytes) of every tensor in the tiny model.
fn tiny_tensors() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(tiny_dir().join("model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_safetensors(path: &Path, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn config_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(tiny_dir().join("config.json")).unwrap()).unwrap()
}

/// A copy of the tiny model in a temp folder, with `config` and the tensors given.
fn folder_with(config: &Value, tensors: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    write_safetensors(&dir.path().join("model.safetensors"), tensors);
    dir
}

fn logits(path: &Path) -> Vec<f64> {
    let model = load_model(path, &AttentionSpec::default(), &device()).unwrap();
    let ids: Vec<u32> = (0..20).map(|i| i * 7 % 512).collect();
    to_vec(model.decoder.forward(&StepInput::single(&ids, 0), None).unwrap())
}

fn load_error(path: &Path) -> String {
    match load_model(path, &AttentionSpec::default(), &device()) {
        Ok(_) => panic!("{} loaded but should not have", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn sharded_checkpoint_equals_single_file() {
    let tensors = tiny_tensors();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config_json().to_string()).unwrap();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", first),
        ("model-00002-of-00002.safetensors", second),
    ] {
        write_safetensors(&dir.path().join(file), part);
        for t in part {
            weight_map.insert(t.0.clone(), json!(file));
        }
    }
    let index = json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    assert_eq!(logits(dir.path()), logits(&tiny_dir()));
}

#[test]
fn half_precision_tensors_are_widened_exactly() {
    for dtype in [Dtype::F16, Dtype::BF16] {
        let narrow: Vec<_> = tiny_tensors()
            .into_iter()
            .map(|(n, _, s, b)| {
                let bytes: Vec<u8> = b
                    .chunks_exact(4)
                    .flat_map(|c| {
                        let v = f32::from_le_bytes(c.try_into().unwrap());
                        match dtype {
                            Dtype::F16 => half::f16::from_f32(v).to_le_bytes(),
                            _ => half::bf16::from_f32(v).to_le_bytes(),
                        }
                    })
                    .collect();
                (n, dtype, s, bytes)
            })
            .collect();
        let dir = folder_with(&config_json(), &narrow);
        let source = SafetensorsSource::open_dir(dir.path()).unwrap();
        let original = SafetensorsSource::open_dir(&tiny_dir()).unwrap();
        let name = "model.layers.0.mlp.up_proj.weight";
        let widened = source.tensor(name).unwrap().to_f32();
        let expected: Vec<f32> = original
            .tensor(name)
            .unwrap()
            .to_f32()
            .iter()
            .map(|&v| match dtype {
                Dtype::F16 => half::f16::from_f32(v).to_f32(),
                _ => half::bf16::from_f32(v).to_f32(),
            })
            .collect();
        assert_eq!(widened, expected, "{dtype:?}");
        // And the whole model still runs close to the f32 one.
        let diff = max_diff(&logits(dir.path()), &logits(&tiny_dir()));
        assert!(diff > 0.0 && diff < 0.5, "{dtype:?}: {diff}");
    }
}

#[test]
fn missing_path_is_an_error() {
    let err = load_error(Path::new("/nonexistent/model"));
    assert!(err.contains("/nonexistent/model"), "{err}");
}

#[test]
fn config_problems_are_named() {
    let cases: Vec<(&str, Box<dyn Fn(&mut Value)>, &str)> = vec![
        (
            "missing field",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("hidden_size"))),
            "hidden_size",
        ),
        (
            "heads do not divide hidden",
            Box::new(|c| {
                c["num_attention_heads"] = json!(5);
                c.as_object_mut().unwrap().remove("head_dim");
            }),
            "does not divide",
        ),
        (
            "kv heads do not divide heads",
            Box::new(|c| c["num_key_value_heads"] = json!(3)),
            "num_key_value_heads",
        ),
        (
            "unknown architecture",
            Box::new(|c| c["model_type"] = json!("gpt_neox")),
            "gpt_neox",
        ),
        (
            "wrong type",
            Box::new(|c| c["num_hidden_layers"] = json!("two")),
            "num_hidden_layers",
        ),
        (
            "rope scaling",
            Box::new(|c| c["rope_parameters"]["rope_type"] = json!("longrope")),
            "rope scaling `longrope`",
        ),
        (
            "no context length (GGUF context_length 0 reads the same)",
            Box::new(|c| c["max_position_embeddings"] = json!(0)),
            "max_position_embeddings must be positive",
        ),
        (
            "rope scaling in the 4.x spelling beside a default 5.x one",
            Box::new(|c| c["rope_scaling"] = json!({"type": "dynamic", "factor": 2.0})),
            "rope scaling `dynamic`",
        ),
        // A value of the wrong type is an error, never the default.
        (
            "rope_theta not a number",
            Box::new(|c| c["rope_parameters"]["rope_theta"] = json!("big")),
            "`rope_parameters.rope_theta` must be a number",
        ),
        (
            "rms_norm_eps not a number",
            Box::new(|c| c["rms_norm_eps"] = json!("tiny")),
            "`rms_norm_eps` must be a number",
        ),
        (
            "tie_word_embeddings not a boolean",
            Box::new(|c| c["tie_word_embeddings"] = json!("yes")),
            "`tie_word_embeddings` must be true or false",
        ),
        // Settings this decoder does not implement, which would otherwise be ignored.
        (
            "another activation",
            Box::new(|c| c["hidden_act"] = json!("gelu")),
            "hidden_act `gelu`",
        ),
        (
            "attention biases",
            Box::new(|c| c["attention_bias"] = json!(true)),
            "attention_bias: true",
        ),
        (
            "a quantized HF checkpoint",
            Box::new(|c| c["quantization_config"] = json!({"quant_method": "gptq", "bits": 4})),
            "quantization_config `gptq`",
        ),
        // Token ids: a stop token silently dropped would let generations run on.
        (
            "a negative eos_token_id",
            Box::new(|c| c["eos_token_id"] = json!(-1)),
            "`eos_token_id` must be a token id or a list of them, found -1",
        ),
        (
            "an eos_token_id list with a string",
            Box::new(|c| c["eos_token_id"] = json!([2, "3"])),
            "`eos_token_id` must be a token id or a list of them",
        ),
        (
            "an eos_token_id past the vocabulary",
            Box::new(|c| c["eos_token_id"] = json!([2, 99999])),
            "token id 99999 (bos_token_id / eos_token_id) is outside the vocabulary of 512",
        ),
        (
            "a bos_token_id past u32",
            Box::new(|c| c["bos_token_id"] = json!(4_294_967_297u64)),
            "`bos_token_id` must be a token id",
        ),
        (
            "a bos_token_id past the vocabulary",
            Box::new(|c| c["bos_token_id"] = json!(512)),
            "token id 512",
        ),
        // Sizes far beyond any model are errors before anything of their size is allocated.
        (
            "a corrupt layer count",
            Box::new(|c| c["num_hidden_layers"] = json!(1_000_000_000u64)),
            "num_hidden_layers 1000000000 is beyond any model",
        ),
    ];
    for (what, edit, expected) in cases {
        let mut config = config_json();
        edit(&mut config);
        let dir = folder_with(&config, &tiny_tensors());
        let err = load_error(dir.path());
        assert!(err.contains("config.json") && err.contains(expected), "{what}: {err}");
    }
    let dir = folder_with(&config_json(), &tiny_tensors());
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("config.json") && err.contains("JSON"), "{err}");
}

#[test]
fn a_tokenizer_larger_than_the_vocabulary_is_refused_at_load() {
    // SmolLM2's 49,152-piece tokenizer beside a model of 512: ids past the embedding table.
    let dir = folder_with(&config_json(), &tiny_tensors());
    std::fs::copy(
        fixtures().join("smollm2/tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("tokenizer.json")
            && err.contains("the tokenizer's vocabulary has 49152 pieces, more than the model's 512"),
        "{err}"
    );
}

#[test]
fn a_tokenizer_id_past_the_vocabulary_is_refused_at_load() {
    // Two pieces, one numbered past the model's 512: a count alone would not see it.
    let dir = folder_with(&config_json(), &tiny_tensors());
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": {"a": 0, "zzz": 100000}, "unk_token": "a"}
    });
    std::fs::write(dir.path().join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("tokenizer.json") && err.contains("piece `zzz` is id 100000, past the model's vocabulary of 512"),
        "{err}"
    );
}

#[test]
fn weight_problems_are_named() {
    // A tensor of the wrong shape.
    let mut tensors = tiny_tensors();
    let t = tensors
        .iter_mut()
        .find(|t| t.0 == "model.layers.1.self_attn.k_proj.weight")
        .unwrap();
    t.2 = vec![t.2[1], t.2[0]];
    let err = load_error(folder_with(&config_json(), &tensors).path());
    assert!(
        err.contains("model.layers.1.self_attn.k_proj.weight") && err.contains("shape"),
        "{err}"
    );

    // A missing tensor.
    let tensors: Vec<_> = tiny_tensors()
        .into_iter()
        .filter(|t| t.0 != "model.norm.weight")
        .collect();
    let err = load_error(folder_with(&config_json(), &tensors).path());
    assert!(err.contains("model.norm.weight") && err.contains("missing"), "{err}");

    // Tensors the decoder would not read: a bias, a layer past num_hidden_layers, anything else.
    let extra = |name: &str| {
        let mut tensors = tiny_tensors();
        let norm = tensors.iter().find(|t| t.0 == "model.norm.weight").unwrap().clone();
        tensors.push((name.to_string(), norm.1, norm.2, norm.3));
        tensors
    };
    for name in [
        "model.layers.0.self_attn.o_proj.bias",
        "model.layers.2.input_layernorm.weight",
        "model.extra.weight",
    ] {
        let err = load_error(folder_with(&config_json(), &extra(name)).path());
        assert!(
            err.contains("model.safetensors") && err.contains(&format!("first `{name}`")) && err.contains("a 2-layer"),
            "{err}"
        );
    }
    let mut one_layer = config_json();
    one_layer["num_hidden_layers"] = json!(1);
    let err = load_error(folder_with(&one_layer, &tiny_tensors()).path());
    assert!(
        err.contains("9 tensor(s)") && err.contains("first `model.layers.1."),
        "{err}"
    );
    // RoPE's inv_freq buffer, which older HF Llama checkpoints store, is read by no one.
    let inv_freq = folder_with(&config_json(), &extra("model.layers.0.self_attn.rotary_emb.inv_freq"));
    assert_eq!(logits(inv_freq.path()), logits(&tiny_dir()));

    // A tensor whose data span is not its shape's size, named.
    let dir = folder_with(&config_json(), &tiny_tensors());
    let file = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    // model.norm.weight: [64] f32, 256 bytes; say [32] (same header length).
    let start = header.find("\"model.norm.weight\"").unwrap();
    let edited = header[..start].to_string() + &header[start..].replacen("[64]", "[32]", 1);
    bytes[8..8 + header_len].copy_from_slice(edited.as_bytes());
    std::fs::write(&file, &bytes).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("tensor `model.norm.weight`: its data_offsets span 256 bytes, its dtype and shape need 128"),
        "{err}"
    );

    // Truncated and empty weight files.
    let dir = folder_with(&config_json(), &tiny_tensors());
    let file = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    for cut in [bytes.len() / 2, 0, 5] {
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let err = load_error(dir.path());
        assert!(err.contains("model.safetensors"), "cut at {cut}: {err}");
    }

    // No weights at all.
    std::fs::remove_file(&file).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

/// A key config.json leaves out takes its transformers 5.x config class's default, and Mistral's
/// defaults are not Llama's (`MistralConfig`: 8 K/V heads, a 4,096-token window, 131,072
/// positions; `LlamaConfig`: as many K/V heads as heads, 2,048 positions). Only `null` means none.
#[test]
fn absent_config_keys_take_their_class_defaults() {
    let read = |edit: &dyn Fn(&mut Value)| {
        let mut c = config_json();
        edit(&mut c);
        model::ModelConfig::from_hf_json(&c, Path::new("config.json")).unwrap()
    };
    let remove = |c: &mut Value, keys: &[&str]| {
        for key in keys {
            c.as_object_mut().unwrap().remove(*key);
        }
    };
    let keys = ["num_key_value_heads", "sliding_window", "max_position_embeddings"];
    let llama = read(&|c| remove(c, &keys));
    assert_eq!(
        (llama.num_kv_heads, llama.sliding_window, llama.max_position_embeddings),
        (llama.num_heads, None, 2048)
    );
    let mistral = read(&|c| {
        c["model_type"] = json!("mistral");
        c["architectures"] = json!(["MistralForCausalLM"]);
        c["num_attention_heads"] = json!(16);
        c["head_dim"] = json!(4);
        remove(c, &keys);
    });
    assert_eq!(
        (
            mistral.num_kv_heads,
            mistral.sliding_window,
            mistral.max_position_embeddings
        ),
        (8, Some(4096), 131_072)
    );
    let mistral_nulls = read(&|c| {
        c["model_type"] = json!("mistral");
        c["num_attention_heads"] = json!(16);
        c["head_dim"] = json!(4);
        c["num_key_value_heads"] = json!(null);
        c["sliding_window"] = json!(null);
    });
    assert_eq!((mistral_nulls.num_kv_heads, mistral_nulls.sliding_window), (16, None));
    // Mistral's modeling has no biases whatever the config says; Llama's would use them.
    let biased = |c: &mut Value| {
        c["attention_bias"] = json!(true);
        c["mlp_bias"] = json!(true);
    };
    read(&|c| {
        c["model_type"] = json!("mistral");
        biased(c);
    });
    let mut llama_biased = config_json();
    biased(&mut llama_biased);
    assert!(model::ModelConfig::from_hf_json(&llama_biased, Path::new("config.json")).is_err());
}

/// transformers ties the LM head to the embedding only where the checkpoint stores none: a
/// config that says tied beside a stored `lm_head.weight` of other values uses the stored head.
#[test]
fn a_stored_head_is_used_even_where_the_config_ties_it() {
    let mut tied = config_json();
    tied["tie_word_embeddings"] = json!(true);
    let with_head = folder_with(&tied, &tiny_tensors());
    assert_eq!(logits(with_head.path()), logits(&tiny_dir()));
    let without_head: Vec<_> = tiny_tensors().into_iter().filter(|t| t.0 != "lm_head.weight").collect();
    let tied_to_embedding = folder_with(&tied, &without_head);
    assert_ne!(logits(tied_to_embedding.path()), logits(&tiny_dir()));
}
