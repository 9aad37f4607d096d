//! Weights kept as stored: streamed per layer they give bit-identical f32 logits to weights
//! materialized at load (bf16 safetensors, quantized GGUF); synthetic checkpoints load the same
//! in every format; the memory plan refuses, with the numbers, what cannot fit; bad checkpoints
//! are named.

mod common;

use std::path::Path;

use burn::tensor::FloatDType;

use common::{device, smollm2_gguf};
use model::load::quant::GgmlType;
use model::synthetic::tokenizer::SyntheticVocab;
use model::synthetic::{SyntheticShape, write_gguf, write_hf_folder};
use model::{
    AttentionSpec, LoadOptions, LoadedModel, MemoryPlan, ModelConfig, Residency, StepInput, WeightsPolicy,
    load_model_with,
};

const SEED: u64 = 7;

fn options(weights: WeightsPolicy) -> LoadOptions {
    LoadOptions {
        weights,
        ..LoadOptions::default()
    }
}

fn load(path: &Path, attention: &str, options: &LoadOptions) -> LoadedModel {
    load_model_with(path, &attention.parse().unwrap(), &device(), options).unwrap()
}

/// The raw bits of every logit for two rows of 12 tokens, then through a KV cache a step of 4
/// tokens and a step of one (a one-row product, which the matrix-vector kernels compute), so
/// streamed weights serve cached decoding as well.
fn logit_bits(model: &LoadedModel) -> Vec<u32> {
    let vocab = model.decoder.config.vocab_size as u32;
    let rows: Vec<Vec<u32>> = (0..2)
        .map(|r| (0..12).map(|t| (r * 7919 + t * 104_729 + 3) % vocab).collect())
        .collect();
    let decoder = &model.decoder;
    let full = decoder.forward(&StepInput::right_padded(&rows, 0), None).unwrap();
    let mut cache = decoder.new_cache(1);
    decoder
        .forward(&StepInput::single(&rows[0][..8], 0), Some(&mut cache))
        .unwrap();
    let step = decoder
        .forward(&StepInput::single(&rows[0][8..], 8), Some(&mut cache))
        .unwrap();
    // One token of one row: a decode step whose products have a single activation row.
    let one = decoder
        .forward(&StepInput::single(&rows[1][..1], 12), Some(&mut cache))
        .unwrap();
    [full, step, one]
        .into_iter()
        .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

fn assert_stream_equals_load(path: &Path, attention: &str) {
    let resident = load(path, attention, &options(WeightsPolicy::Load));
    let streamed = load(path, attention, &options(WeightsPolicy::Stream));
    assert_eq!(resident.memory.residency, Residency::Resident);
    assert_eq!(streamed.memory.residency, Residency::Streamed);
    assert!(
        logit_bits(&resident) == logit_bits(&streamed),
        "{} ({attention}): streamed logits differ from resident ones",
        path.display()
    );
}

#[test]
fn streamed_bf16_safetensors_are_bit_identical_to_resident() {
    let dir = tempfile::tempdir().unwrap();
    // Small shards, so the folder has an index and several files.
    write_hf_folder(&SyntheticShape::Small.config(), SEED, dir.path(), 8_000_000).unwrap();
    assert!(dir.path().join("model.safetensors.index.json").is_file());
    // native GQA, and K/V converted to MHA at every materialization.
    for attention in ["native", "mha"] {
        assert_stream_equals_load(dir.path(), attention);
    }
}

#[test]
fn streamed_quantized_gguf_is_bit_identical_to_resident() {
    // SmolLM2 Q4_1: tied embeddings, permuted q/k rows.
    assert_stream_equals_load(&smollm2_gguf(), "native");
    let dir = tempfile::tempdir().unwrap();
    for ty in [GgmlType::Q8_0, GgmlType::Q4_K] {
        let path = dir.path().join(format!("small-{ty}.gguf"));
        write_gguf(&SyntheticShape::Small.config(), SEED, &path, ty).unwrap();
        assert_stream_equals_load(&path, "native");
    }
}

#[test]
fn a_bf16_gguf_and_the_bf16_folder_of_one_model_give_the_same_logits() {
    // Same values, GGUF names, llama.cpp's q/k row order on disk: the writer and the loader's
    // conversions must undo each other exactly.
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticShape::Small.config();
    write_hf_folder(&config, SEED, &dir.path().join("hf"), u64::MAX).unwrap();
    let gguf = dir.path().join("small-bf16.gguf");
    write_gguf(&config, SEED, &gguf, GgmlType::BF16).unwrap();
    let hf = load(&dir.path().join("hf"), "native", &LoadOptions::default());
    let gg = load(&gguf, "native", &LoadOptions::default());
    assert_eq!(logit_bits(&hf), logit_bits(&gg));
    // And quantized copies stay close to it (random weights: a loose sanity bound, not a
    // quality claim about the quantizers).
    let reference: Vec<f32> = logit_bits(&hf).into_iter().map(f32::from_bits).collect();
    for (ty, bound) in [(GgmlType::Q8_0, 0.05), (GgmlType::Q4_K, 1.0)] {
        let path = dir.path().join(format!("small-{ty}.gguf"));
        write_gguf(&config, SEED, &path, ty).unwrap();
        let quantized: Vec<f32> = logit_bits(&load(&path, "native", &LoadOptions::default()))
            .into_iter()
            .map(f32::from_bits)
            .collect();
        let diff = reference
            .iter()
            .zip(&quantized)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff > 0.0 && diff < bound, "{ty}: max logit difference {diff}");
    }
}

#[test]
fn the_synthetic_tokenizer_tokenizes_alike_from_tokenizer_json_and_gguf() {
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticShape::Small.config();
    write_hf_folder(&config, SEED, dir.path(), u64::MAX).unwrap();
    let gguf = dir.path().join("small.gguf");
    write_gguf(&config, SEED, &gguf, GgmlType::Q8_0).unwrap();
    let hf = load(dir.path(), "native", &LoadOptions::default()).tokenizer.unwrap();
    let gg = load(&gguf, "native", &LoadOptions::default()).tokenizer.unwrap();
    let text = "The Quick brown fox, 42 times: déjà vu!";
    let ids = hf.encode(text, true).unwrap();
    assert_eq!(ids, gg.encode(text, true).unwrap());
    assert_eq!(ids[0], 1, "BOS first");
    assert!(ids.len() < text.len(), "word pieces merge: {ids:?}");
    assert_eq!(hf.decode(&ids, true).unwrap(), text);
    assert_eq!(hf.vocab_size(), 32_000);
    assert!(SyntheticVocab::new(100).is_err());
}

#[test]
fn the_memory_plan_refuses_what_cannot_fit_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(&SyntheticShape::Small.config(), SEED, dir.path(), u64::MAX).unwrap();
    let spec = AttentionSpec::default();
    let with = |weights, available| LoadOptions {
        weights,
        available_memory: Some(available),
        ..LoadOptions::default()
    };
    // The small model: embedding and LM head 2 × 32000 × 256, 2 layers of 590,336 weights and
    // the final norm's 256, in f32.
    let resident = 4 * (2 * 8_192_000 + 2 * 590_336 + 256u64);
    let plan = load_model_with(dir.path(), &spec, &device(), &with(WeightsPolicy::Auto, 2 * resident))
        .unwrap()
        .memory;
    assert_eq!((plan.residency, plan.resident_bytes), (Residency::Resident, resident));
    let plan = load_model_with(
        dir.path(),
        &spec,
        &device(),
        &with(WeightsPolicy::Auto, 2 * resident - 1),
    )
    .unwrap()
    .memory;
    assert_eq!(plan.residency, Residency::Streamed, "auto streams past half the memory");

    // In f16 every weight takes 2 bytes but the LM head, which stays in f32 (the decoder's
    // `logits`): 2 more bytes for each of its 8,192,000 values, or a whole f32 copy when it is
    // tied to the embedding (then not a weight of its own). The plan alone: nothing is loaded, so
    // this holds on backends without f16 too.
    let f16_bytes = |tie_word_embeddings| {
        let config = ModelConfig {
            tie_word_embeddings,
            ..SyntheticShape::Small.config()
        };
        let attention = spec.resolve(&config).unwrap();
        MemoryPlan::new(
            dir.path(),
            &config,
            &attention,
            FloatDType::F16,
            WeightsPolicy::Auto,
            0,
            None,
        )
        .unwrap()
        .resident_bytes
    };
    assert_eq!(f16_bytes(false), resident / 2 + 2 * 8_192_000);
    assert_eq!(f16_bytes(true), (resident - 4 * 8_192_000) / 2 + 4 * 8_192_000);

    let err = load_model_with(dir.path(), &spec, &device(), &with(WeightsPolicy::Load, resident - 1))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("does not fit") && err.contains("0.07 GiB of weights in f32") && err.contains("--weights stream"),
        "{err}"
    );
    let err = load_model_with(dir.path(), &spec, &device(), &with(WeightsPolicy::Stream, 1 << 20))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("does not fit") && err.contains("to stream its largest weight"),
        "{err}"
    );
}

#[test]
fn unsupported_dtypes_and_truncated_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(&SyntheticShape::Small.config(), SEED, dir.path(), 8_000_000).unwrap();
    let mut shards: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-of-"))
        .collect();
    shards.sort();
    assert!(shards.len() > 2, "{shards:?}");
    let shard = shards[1].clone();
    let shard_name = shard.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 1000]).unwrap();
    let err = load_model_with(
        dir.path(),
        &AttentionSpec::default(),
        &device(),
        &LoadOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains(&shard_name)
            && err.contains("truncated")
            && err.contains(&format!("the file has {}", bytes.len() - 1000)),
        "{err}"
    );

    // An I64 tensor where a weight should be.
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(&SyntheticShape::Small.config(), SEED, dir.path(), u64::MAX).unwrap();
    let file = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&file).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
    // "model.norm.weight" is 256 bf16 values = 512 bytes = 64 i64 values.
    let at = header.find("\"model.norm.weight\"").unwrap();
    let patched =
        header[..at].to_string() + &header[at..].replacen("\"BF16\",\"shape\":[256]", "\"I64\", \"shape\": [64]", 1);
    assert_eq!(patched.len(), header.len());
    bytes[8..8 + header_len].copy_from_slice(patched.as_bytes());
    std::fs::write(&file, bytes).unwrap();
    let err = load_model_with(
        dir.path(),
        &AttentionSpec::default(),
        &device(),
        &LoadOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("model.norm.weight") && err.contains("I64"),
        "{err}"
    );
}

/// The memory plan's weight count (the "N GiB resident in f32" printed at load and kept in
/// run.json) against the checkpoints' own tensors: every element the HF folders of the tiny
/// fixtures (written by transformers) and the SmolLM2 GGUF store, in f32. SmolLM2-135M stores
/// 134,515,008 (transformers' `num_parameters()`, embeddings tied).
#[test]
fn the_memory_plan_counts_the_checkpoints_own_weights() {
    let f32_bytes_of = |path: &Path| {
        load(path, "native", &options(WeightsPolicy::Auto))
            .memory
            .resident_bytes
    };
    for name in ["tiny-llama-gqa", "tiny-llama-mha", "tiny-mistral-swa"] {
        let folder = common::fixtures().join("tiny").join(name);
        let bytes = std::fs::read(folder.join("model.safetensors")).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let elements: usize = file
            .tensors()
            .iter()
            .map(|(_, t)| t.shape().iter().product::<usize>())
            .sum();
        assert_eq!(f32_bytes_of(&folder), 4 * elements as u64, "{name}");
    }
    let gguf = model::load::gguf::GgufFile::open(&smollm2_gguf()).unwrap();
    let elements: u64 = gguf.tensors.iter().map(|t| t.n_elements().unwrap()).sum();
    assert_eq!(elements, 134_515_008);
    assert_eq!(f32_bytes_of(&smollm2_gguf()), 4 * elements);
}

/// Logits of decode steps (one token per row through the cache, after an 8-token pre-fill) at
/// batch 1 and 3, which `--weights direct` multiplies from the stored form, and of the 3×9
/// pre-fill and a whole 2×12 pass, which it materializes.
fn decode_and_forward_logits(model: &LoadedModel) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let vocab = model.decoder.config.vocab_size as u32;
    let rows: Vec<Vec<u32>> = (0..3)
        .map(|r| (0..12).map(|t| (r * 7919 + t * 104_729 + 3) % vocab).collect())
        .collect();
    let decoder = &model.decoder;
    let values = |t: burn::tensor::Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    let mut steps = Vec::new();
    let mut prefills = Vec::new();
    for batch in [1, 3] {
        let mut cache = decoder.new_cache(batch);
        let prompts: Vec<Vec<u32>> = rows[..batch].iter().map(|r| r[..8].to_vec()).collect();
        prefills.extend(values(
            decoder
                .forward(&StepInput::right_padded(&prompts, 0), Some(&mut cache))
                .unwrap(),
        ));
        for t in 8..10 {
            let ids: Vec<u32> = rows[..batch].iter().map(|r| r[t]).collect();
            let step = StepInput::from_parts(batch, 1, ids, vec![t as i64; batch], vec![true; batch]).unwrap();
            steps.extend(values(decoder.forward(&step, Some(&mut cache)).unwrap()));
        }
    }
    let whole: Vec<Vec<u32>> = rows[..2].to_vec();
    prefills.extend(values(
        decoder.forward(&StepInput::right_padded(&whole, 0), None).unwrap(),
    ));
    let batch_one_steps = steps[..2 * vocab as usize].to_vec();
    (steps, batch_one_steps, prefills)
}

/// `--weights direct`: decode steps multiply from the stored form, so their logits differ from
/// the materialized model's only by the order of the sums (bounded here relative to the
/// largest logit; the greedy choice is the same at every position), and a row's logits are the
/// same bits at batch 1 and batch 3; pre-fill and whole passes materialize and are
/// bit-identical. Q4_1 with tied embeddings and permuted q/k rows (SmolLM2), Q8_0, Q4_K and a
/// bf16 folder.
#[test]
fn direct_weights_differ_from_resident_only_by_summation_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = SyntheticShape::Small.config();
    write_hf_folder(&config, SEED, &dir.path().join("hf"), u64::MAX).unwrap();
    let mut paths = vec![smollm2_gguf(), dir.path().join("hf")];
    for ty in [GgmlType::Q8_0, GgmlType::Q4_K] {
        let path = dir.path().join(format!("small-{ty}.gguf"));
        write_gguf(&config, SEED, &path, ty).unwrap();
        paths.push(path);
    }
    for path in paths {
        let (resident_steps, _, resident_prefills) =
            decode_and_forward_logits(&load(&path, "native", &options(WeightsPolicy::Load)));
        let model = load(&path, "native", &options(WeightsPolicy::Direct));
        assert_eq!(model.memory.residency, Residency::Direct);
        let (steps, batch_one, prefills) = decode_and_forward_logits(&model);
        let vocab = model.decoder.config.vocab_size;
        let largest = resident_steps.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = resident_steps
            .iter()
            .zip(&steps)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            diff > 0.0 && diff <= 1e-5 * largest,
            "{}: largest |Δ logit| {diff} against largest logit {largest}",
            path.display()
        );
        let argmax = |row: &[f32]| (0..row.len()).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap();
        for (a, b) in resident_steps.chunks(vocab).zip(steps.chunks(vocab)) {
            assert_eq!(argmax(a), argmax(b), "{}: greedy choice", path.display());
        }
        // Row 0 of the batch-3 steps is row 0 of the batch-1 steps, bit for bit.
        let batch_three_row0: Vec<f32> = steps[2 * vocab..].chunks(vocab).step_by(3).flatten().copied().collect();
        let same_bits = |a: &[f32], b: &[f32]| a.iter().map(|v| v.to_bits()).eq(b.iter().map(|v| v.to_bits()));
        assert!(
            same_bits(&batch_one, &batch_three_row0),
            "{}: a decode step's row depends on the batch",
            path.display()
        );
        assert!(
            same_bits(&resident_prefills, &prefills),
            "{}: a materialized step differs",
            path.display()
        );
    }
}

#[test]
fn direct_weights_are_refused_in_half_precision_and_on_wgpu() {
    let dir = tempfile::tempdir().unwrap();
    write_hf_folder(&SyntheticShape::Small.config(), SEED, dir.path(), u64::MAX).unwrap();
    let half = LoadOptions {
        dtype: FloatDType::F16,
        weights: WeightsPolicy::Direct,
        ..LoadOptions::default()
    };
    let err = load_model_with(dir.path(), &"native".parse().unwrap(), &device(), &half)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("--weights direct computes in f32") && err.contains("f16"),
        "{err}"
    );
    let err = LoadOptions::new(
        model::ComputeDtype::F32,
        WeightsPolicy::Direct,
        model::backend::BackendKind::Wgpu,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--weights direct multiplies on the CPU"), "{err}");
}
