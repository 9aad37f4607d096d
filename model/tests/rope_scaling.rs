//! Scaled RoPE (Llama 3.1's `llama3`, `linear`, and `yarn` with its defaults and with every
//! option) against transformers' float32 logits on a tiny random Llama (tests/data/rope_scaling,
//! written by scripts/gen_rope_scaling_fixture.py): the HF folder in both config spellings, and
//! the GGUF file llama.cpp's converter makes of it (llama3, linear); scalings and other settings
//! the decoder does not implement are refused by name.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{GoldenFile, cached_logits, device, max_diff, to_vec};
use model::config::ModelConfig;
use model::load::gguf::{GgufFile, GgufValue};
use model::load::gguf_write::{GgufWriter, TensorEntry};
use model::load::quant::GgmlType;
use model::rope::{Llama3Scaling, RopeScaling, Rotary, YarnScaling};
use model::{AttentionSpec, LoadedModel, StepInput, load_model};
use serde_json::{Value, json};

/// As for ../shared/fixtures/tiny: transformers f32 against the exact computation differs by a
/// few 1e-6 at logits of this scale.
const ATOL: f64 = 1e-4;
/// Every scaling's HF folder; the GGUF files are those of `GGUF_SCALINGS`.
const SCALINGS: [&str; 4] = ["llama3", "linear", "yarn", "yarn_options"];
const GGUF_SCALINGS: [&str; 2] = ["llama3", "linear"];

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rope_scaling")
}

fn golden(scaling: &str) -> GoldenFile {
    GoldenFile::open(data().join(scaling).join("golden.safetensors"))
}

fn load(path: &Path) -> LoadedModel {
    load_model(path, &AttentionSpec::default(), &device()).unwrap()
}

/// The config of `scaling`'s HF folder, edited, as the decoder reads it.
fn edited_config(scaling: &str, edit: &dyn Fn(&mut Value)) -> ModelConfig {
    let path = data().join(scaling).join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    ModelConfig::from_hf_json(&config, &path).unwrap()
}

fn full_logits(model: &LoadedModel, ids: &[u32]) -> Vec<f64> {
    to_vec(model.decoder.forward(&StepInput::single(ids, 0), None).unwrap())
}

#[test]
fn frequencies_are_transformers_own() {
    for scaling in SCALINGS {
        let config = ModelConfig::from_hf_file(&data().join(scaling).join("config.json")).unwrap();
        let ours = Rotary::new(config.head_dim, config.rope_theta, &config.rope_scaling);
        let theirs: Vec<f32> = golden(scaling)
            .get("inv_freq")
            .values
            .iter()
            .map(|&v| v as f32)
            .collect();
        assert_eq!(ours.inv_freq(), theirs.as_slice(), "{scaling}");
        let factor = golden(scaling).get("attention_scaling").values[0] as f32;
        assert_eq!(ours.attention_scaling(), factor, "{scaling}: the factor on cos and sin");
    }
}

#[test]
fn hf_checkpoints_match_transformers_and_the_scaling_matters() {
    for scaling in SCALINGS {
        let gold = golden(scaling);
        let ids = gold.ids("input_ids");
        let ours = full_logits(&load(&data().join(scaling)), &ids);
        let diff = max_diff(&ours, &gold.get("logits").values);
        // The same weights with RoPE unscaled: far outside the tolerance, so a decoder that
        // ignored the scaling could not pass.
        let unscaled = max_diff(&ours, &gold.get("default_rope.logits").values);
        println!("{scaling}: max |Δlogit| {diff:.2e}, against unscaled RoPE {unscaled:.2}");
        assert!(diff < ATOL, "{scaling}: {diff}");
        assert!(
            unscaled > 1000.0 * ATOL,
            "{scaling}: scaling changes logits by only {unscaled}"
        );
    }
}

#[test]
fn cached_decoding_uses_the_scaled_frequencies() {
    for scaling in ["llama3", "yarn_options"] {
        let gold = golden(scaling);
        let ids = gold.ids("input_ids");
        let model = load(&data().join(scaling));
        let mut chunks = vec![40];
        chunks.extend(std::iter::repeat_n(1, ids.len() - 40));
        let diff = max_diff(&cached_logits(&model, &ids, &chunks), &gold.get("logits").values);
        assert!(diff < ATOL, "{scaling}: {diff}");
    }
}

/// transformers 4.x wrote `rope_theta` beside `rope_scaling` (kind under `rope_type`, or the older
/// `type`); 5.x writes `rope_parameters`. Every spelling reads as the same config.
#[test]
fn the_transformers_4_spellings_read_the_same() {
    for scaling in SCALINGS {
        let path = data().join(scaling).join("config.json");
        let v5: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let expected = ModelConfig::from_hf_json(&v5, &path).unwrap();
        assert_ne!(expected.rope_scaling, RopeScaling::None, "{scaling}");
        for kind_key in ["rope_type", "type"] {
            let mut v4 = v5.clone();
            let mut params = v4.as_object_mut().unwrap().remove("rope_parameters").unwrap();
            let params = params.as_object_mut().unwrap();
            v4["rope_theta"] = params.remove("rope_theta").unwrap();
            let kind = params.remove("rope_type").unwrap();
            params.insert(kind_key.into(), kind);
            v4["rope_scaling"] = json!(params);
            assert_eq!(
                ModelConfig::from_hf_json(&v4, &path).unwrap(),
                expected,
                "{scaling} {kind_key}"
            );
        }
    }
}

/// transformers' precedence (`convert_rope_params_to_dict`, `standardize_rope_params`), case by
/// case on the llama3 config.
#[test]
fn rope_settings_resolve_as_transformers_resolves_them() {
    let read = |edit: &dyn Fn(&mut Value)| {
        let config = edited_config("llama3", edit);
        (config.rope_theta, config.rope_scaling)
    };
    let llama3 = |original| {
        RopeScaling::Llama3(Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: original,
        })
    };
    assert_eq!(read(&|_| {}), (10_000.0, llama3(64)));
    // llama3 without its original context takes max_position_embeddings; a top-level one wins.
    let without_original = |c: &mut Value| {
        drop(
            c["rope_parameters"]
                .as_object_mut()
                .unwrap()
                .remove("original_max_position_embeddings"),
        )
    };
    assert_eq!(read(&without_original), (10_000.0, llama3(256)));
    assert_eq!(
        read(&|c| c["original_max_position_embeddings"] = json!(32)),
        (10_000.0, llama3(32))
    );
    // A non-empty 4.x `rope_scaling` replaces `rope_parameters` whole: its base then comes from
    // the top level (or the default); an empty one does not.
    let linear = |c: &mut Value| c["rope_scaling"] = json!({"type": "linear", "factor": 2.0});
    assert_eq!(read(&linear), (10_000.0, RopeScaling::Linear { factor: 2.0 }));
    let linear_with_theta = |c: &mut Value| {
        linear(c);
        c["rope_theta"] = json!(500_000.0);
    };
    assert_eq!(
        read(&linear_with_theta),
        (500_000.0, RopeScaling::Linear { factor: 2.0 })
    );
    assert_eq!(read(&|c| c["rope_scaling"] = json!({})), (10_000.0, llama3(64)));
    // transformers' default RoPE ignores partial_rotary_factor (and so does this decoder).
    let partial_default = |c: &mut Value| {
        c["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5})
    };
    assert_eq!(read(&partial_default), (10_000.0, RopeScaling::None));
}

/// YaRN's optional keys as `_compute_yarn_parameters` reads them, on the yarn config.
#[test]
fn yarn_settings_resolve_as_transformers_resolves_them() {
    let read = |edit: &dyn Fn(&mut Value)| match edited_config("yarn", edit).rope_scaling {
        RopeScaling::Yarn(yarn) => yarn,
        other => panic!("read as {other:?}"),
    };
    let defaults = YarnScaling {
        factor: 4.0,
        original_max_position_embeddings: 64,
        beta_fast: 32.0,
        beta_slow: 1.0,
        truncate: true,
        attention_factor: 0.1 * 4f64.ln() + 1.0,
    };
    assert_eq!(read(&|_| {}), defaults);
    // A null factor: the ratio of max_position_embeddings (256) to the original context (an
    // absent one is refused, as transformers refuses it).
    let params = |edit: fn(&mut serde_json::Map<String, Value>)| {
        move |c: &mut Value| edit(c["rope_parameters"].as_object_mut().unwrap())
    };
    let null_factor = |p: &mut serde_json::Map<String, Value>| drop(p.insert("factor".into(), Value::Null));
    let ratio = read(&params(null_factor));
    assert_eq!((ratio.factor, ratio.attention_factor), (4.0, defaults.attention_factor));
    let halved = read(&params(|p| {
        p.insert("factor".into(), Value::Null);
        p.insert("original_max_position_embeddings".into(), json!(128));
    }));
    assert_eq!((halved.factor, halved.original_max_position_embeddings), (2.0, 128));
    // A beta of 0 takes its default (`or 32`); mscale counts only beside a non-zero mscale_all_dim.
    let zero_beta = read(&params(|p| drop(p.insert("beta_fast".into(), json!(0)))));
    assert_eq!(zero_beta.beta_fast, 32.0);
    // `.get("truncate", True)`: a null truncate is falsy.
    assert!(!read(&params(|p| drop(p.insert("truncate".into(), Value::Null)))).truncate);
    let mscale_alone = read(&params(|p| drop(p.insert("mscale".into(), json!(0.5)))));
    assert_eq!(mscale_alone.attention_factor, defaults.attention_factor);
    let explicit = read(&params(|p| drop(p.insert("attention_factor".into(), json!(1.5)))));
    assert_eq!(explicit.attention_factor, 1.5);
}

/// llama.cpp's reading of a llama file's scaling keys (`llm_load_hparams`): the type defaults to
/// linear, its factor comes from `rope.scaling.factor` or the older `rope.scale_linear`, 0 is no
/// scaling, and type `none` ignores any factor.
#[test]
fn gguf_scaling_keys_read_as_llama_cpp_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let read = |name: &str, edit: &dyn Fn(&mut BTreeMap<String, GgufValue>)| {
        let path = dir.path().join(format!("{name}.gguf"));
        rewritten_gguf(&data().join("linear.gguf"), &path, edit, |_| true, &[]);
        ModelConfig::from_gguf(&GgufFile::open(&path).unwrap())
            .unwrap()
            .rope_scaling
    };
    let no_type = |m: &mut BTreeMap<String, GgufValue>| drop(m.remove("llama.rope.scaling.type"));
    let none_type = |m: &mut BTreeMap<String, GgufValue>| {
        drop(m.insert("llama.rope.scaling.type".into(), GgufValue::String("none".into())))
    };
    let legacy = |m: &mut BTreeMap<String, GgufValue>| {
        no_type(m);
        let factor = m.remove("llama.rope.scaling.factor").unwrap();
        m.insert("llama.rope.scale_linear".into(), factor);
    };
    let zero =
        |m: &mut BTreeMap<String, GgufValue>| drop(m.insert("llama.rope.scaling.factor".into(), GgufValue::F32(0.0)));
    assert_eq!(read("no_type", &no_type), RopeScaling::Linear { factor: 4.0 });
    assert_eq!(read("legacy", &legacy), RopeScaling::Linear { factor: 4.0 });
    assert_eq!(read("none_type", &none_type), RopeScaling::None);
    assert_eq!(read("zero", &zero), RopeScaling::None);
}

/// GGUF keys left out take `LlamaConfig`'s defaults, as transformers' GGUF loader reads them.
#[test]
fn absent_gguf_keys_take_transformers_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.gguf");
    let bare = |m: &mut BTreeMap<String, GgufValue>| {
        for key in ["attention.layer_norm_rms_epsilon", "context_length", "rope.freq_base"] {
            m.remove(&format!("llama.{key}"));
        }
    };
    rewritten_gguf(&data().join("linear.gguf"), &path, &bare, |_| true, &[]);
    let config = ModelConfig::from_gguf(&GgufFile::open(&path).unwrap()).unwrap();
    assert_eq!(
        (config.rms_norm_eps, config.max_position_embeddings, config.rope_theta),
        (1e-6, 2048, 10_000.0)
    );
}

#[test]
fn gguf_files_match_the_checkpoint_they_were_converted_from() {
    for scaling in GGUF_SCALINGS {
        let file = data().join(format!("{scaling}.gguf"));
        let config = ModelConfig::from_gguf(&GgufFile::open(&file).unwrap()).unwrap();
        match (scaling, &config.rope_scaling) {
            ("llama3", RopeScaling::FreqFactors(factors)) => assert_eq!(factors.len(), 8),
            ("linear", RopeScaling::Linear { factor }) => assert_eq!(*factor, 4.0),
            (_, other) => panic!("{scaling}: read as {other:?}"),
        }
        let gold = golden(scaling);
        let diff = max_diff(
            &full_logits(&load(&file), &gold.ids("input_ids")),
            &gold.get("logits").values,
        );
        println!("{scaling}.gguf: max |Δlogit| {diff:.2e}");
        assert!(diff < ATOL, "{scaling}.gguf: {diff}");
    }
}

#[test]
fn rope_scalings_that_are_not_implemented_are_refused() {
    let path = data().join("llama3").join("config.json");
    let v5: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases: Vec<(&str, Box<dyn Fn(&mut Value)>, &str)> = vec![
        (
            "dynamic NTK",
            Box::new(|c| c["rope_parameters"] = json!({"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4})),
            "rope scaling `dynamic`",
        ),
        (
            "longrope in the 4.x spelling",
            Box::new(|c| c["rope_scaling"] = json!({"type": "longrope", "factor": 4.0})),
            "rope scaling `longrope`",
        ),
        (
            "yarn without a factor",
            Box::new(|c| c["rope_parameters"] = json!({"rope_type": "yarn", "rope_theta": 1e4})),
            "missing field `rope_parameters.factor`",
        ),
        (
            "yarn with a negative attention factor",
            Box::new(|c| c["rope_parameters"] = json!({"rope_type": "yarn", "factor": 4.0, "attention_factor": -1.0})),
            "rope scaling attention_factor -1 must be positive",
        ),
        (
            "llama3 without low_freq_factor",
            Box::new(|c| drop(c["rope_parameters"].as_object_mut().unwrap().remove("low_freq_factor"))),
            "missing field `rope_parameters.low_freq_factor`",
        ),
        (
            "a factor that is not a number",
            Box::new(|c| c["rope_parameters"]["factor"] = json!("eight")),
            "`rope_parameters.factor` must be a number",
        ),
        (
            "a factor of zero",
            Box::new(|c| c["rope_parameters"]["factor"] = json!(0.0)),
            "rope scaling factor 0 must be positive",
        ),
        (
            "high and low frequency factors the wrong way round",
            Box::new(|c| c["rope_parameters"]["high_freq_factor"] = json!(0.5)),
            "must exceed low_freq_factor",
        ),
        (
            "RoPE over part of each head",
            Box::new(|c| c["partial_rotary_factor"] = json!(0.5)),
            "partial_rotary_factor 0.5 with scaled RoPE",
        ),
        (
            "RoPE over part of each head, in the 5.x spelling",
            Box::new(|c| c["rope_parameters"]["partial_rotary_factor"] = json!(0.5)),
            "partial_rotary_factor 0.5 with scaled RoPE",
        ),
    ];
    for (what, edit, expected) in cases {
        let mut config = v5.clone();
        edit(&mut config);
        let err = ModelConfig::from_hf_json(&config, &path).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains(expected), "{what}: {err}");
    }
}

/// `src` written again to `dst` with its metadata edited, only the tensors `keep` accepts, and
/// f32 vectors `extra` after them.
fn rewritten_gguf(
    src: &Path,
    dst: &Path,
    edit: impl Fn(&mut BTreeMap<String, GgufValue>),
    keep: impl Fn(&str) -> bool,
    extra: &[(&str, Vec<f32>)],
) {
    let file = GgufFile::open(src).unwrap();
    let mut metadata = file.metadata.clone();
    edit(&mut metadata);
    let metadata: Vec<(String, GgufValue)> = metadata.into_iter().collect();
    let mut tensors: Vec<(TensorEntry, Vec<u8>)> = file
        .tensors
        .iter()
        .filter(|t| keep(&t.name))
        .map(|t| {
            let entry = TensorEntry {
                name: t.name.clone(),
                ne: t.ne.clone(),
                ggml_type: t.ggml_type,
            };
            (entry, file.tensor_bytes(&t.name).unwrap().1.to_vec())
        })
        .collect();
    for (name, values) in extra {
        let entry = TensorEntry {
            name: name.to_string(),
            ne: vec![values.len() as u64],
            ggml_type: GgmlType::F32,
        };
        tensors.push((entry, values.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let (entries, bytes): (Vec<_>, Vec<_>) = tensors.into_iter().unzip();
    let mut writer = GgufWriter::new(dst, &metadata, entries).unwrap();
    for data in bytes {
        writer.write_tensor(&data).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn gguf_settings_the_decoder_does_not_implement_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let set = |key: &'static str, value: GgufValue| {
        move |m: &mut BTreeMap<String, GgufValue>| drop(m.insert(key.into(), value.clone()))
    };
    let cases: Vec<(&str, &str, Box<dyn Fn(&mut BTreeMap<String, GgufValue>)>, &str)> = vec![
        (
            "yarn",
            "linear.gguf",
            Box::new(set("llama.rope.scaling.type", GgufValue::String("yarn".into()))),
            "rope scaling `yarn`",
        ),
        (
            "linear scaling beside rope_freqs.weight",
            "llama3.gguf",
            Box::new(set("llama.rope.scale_linear", GgufValue::F32(2.0))),
            "linear rope scaling together with rope_freqs.weight",
        ),
        (
            "RoPE over part of each head",
            "llama3.gguf",
            Box::new(set("llama.attention.key_length", GgufValue::U32(32))),
            "RoPE over 16 of 32 head dimensions",
        ),
        (
            "value heads of another size",
            "llama3.gguf",
            Box::new(set("llama.attention.value_length", GgufValue::U32(8))),
            "value heads of 8 beside key heads of 16",
        ),
        (
            "a head size that is not an integer",
            "llama3.gguf",
            Box::new(set("llama.attention.key_length", GgufValue::String("16".into()))),
            "metadata key `llama.attention.key_length` is not an integer",
        ),
        (
            "a mixture of experts",
            "llama3.gguf",
            Box::new(set("llama.expert_count", GgufValue::U32(8))),
            "a mixture of experts (`llama.expert_count` 8)",
        ),
        (
            "rope_freqs.weight for another head size",
            "llama3.gguf",
            Box::new(set("llama.rope.dimension_count", GgufValue::U32(8))),
            "rope_freqs.weight has 8 values, head_dim 8 needs 4",
        ),
    ];
    // The error reading `source` rewritten with `edit` and `extra` tensors.
    let refusal =
        |what: &str, source: &str, edit: &dyn Fn(&mut BTreeMap<String, GgufValue>), extra: &[(&str, Vec<f32>)]| {
            let path = dir.path().join(format!("{}.gguf", what.replace(' ', "_")));
            rewritten_gguf(&data().join(source), &path, edit, |_| true, extra);
            let err = ModelConfig::from_gguf(&GgufFile::open(&path).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{what}: {err}");
            err
        };
    for (what, source, edit, expected) in cases {
        let err = refusal(what, source, &edit, &[]);
        assert!(err.contains(expected), "{what}: {err}");
    }
    // Factors that are not positive, and a factor tensor of another shape.
    let no_linear = |m: &mut BTreeMap<String, GgufValue>| {
        drop(m.insert("llama.rope.scaling.type".into(), GgufValue::String("none".into())))
    };
    let err = refusal(
        "NaN factors",
        "linear.gguf",
        &no_linear,
        &[("rope_freqs.weight", vec![f32::NAN; 8])],
    );
    assert!(err.contains("rope scaling factor NaN must be positive"), "{err}");
    let err = refusal(
        "short factors",
        "linear.gguf",
        &no_linear,
        &[("rope_freqs.weight", vec![2.0; 4])],
    );
    assert!(
        err.contains("rope_freqs.weight has 4 values, head_dim 16 needs 8"),
        "{err}"
    );
    let err = refusal(
        "a bias",
        "llama3.gguf",
        &|_| {},
        &[("blk.1.attn_q.bias", vec![0.5; 32])],
    );
    assert!(
        err.contains("tensor `blk.1.attn_q.bias` (biases are not implemented)"),
        "{err}"
    );
    // A tensor the decoder would not read (a layer past block_count) is refused at load, as
    // llama.cpp refuses a file with more tensors than it creates.
    let path = dir.path().join("extra_layer.gguf");
    let extra = [("blk.7.attn_norm.weight", vec![1.0; 32])];
    rewritten_gguf(&data().join("llama3.gguf"), &path, |_| {}, |_| true, &extra);
    let err = load_model(&path, &AttentionSpec::default(), &device())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("first `model.layers.7.input_layernorm.weight`"), "{err}");
    // Without its rope_freqs.weight the llama3 file is an unscaled model, whose logits are the
    // unscaled golden's: the tensor, not the file name, carries the scaling.
    let path = dir.path().join("unscaled.gguf");
    rewritten_gguf(
        &data().join("llama3.gguf"),
        &path,
        |_| {},
        |name| name != "rope_freqs.weight",
        &[],
    );
    let gold = golden("llama3");
    let diff = max_diff(
        &full_logits(&load(&path), &gold.ids("input_ids")),
        &gold.get("default_rope.logits").values,
    );
    assert!(diff < ATOL, "{diff}");
}
