//! Randomly initialised checkpoints of real model shapes, written as a user's would be: an HF
//! folder (config.json, bf16 safetensors shards with their index, tokenizer.json) or a llama
//! GGUF file (Q8_0, Q4_K, ...) with its vocabulary, so that loading, memory and speed at 7B can
//! be measured on any machine. The weights are [`random_tensor`]'s, the same in every format.

pub mod tokenizer;

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rayon::prelude::*;
use serde_json::json;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::load::gguf::{GgufValue, gguf_name, permute_qk_rows};
use crate::load::gguf_write::{GgufWriter, TensorEntry};
use crate::load::quant::GgmlType;
use crate::load::quantize::quantize;
use crate::load::weights::{decoder_parameters, random_tensor};
use tokenizer::SyntheticVocab;

/// HF's default shard size ("5GB").
pub const DEFAULT_SHARD_BYTES: u64 = 5_000_000_000;

/// Named model shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyntheticShape {
    /// Mistral 7B (paper Table 1): dim 4096, 32 layers, 32/8 heads of 128, hidden 14336,
    /// vocab 32000, window 4096.
    Mistral7b,
    /// Llama 2 7B: dim 4096, 32 layers, 32 heads (MHA), hidden 11008, vocab 32000.
    Llama2_7b,
    /// TinyLlama's widths (dim 2048, 32/4 heads of 64, hidden 5632) over 16 layers: 0.83B.
    Llama08b,
    /// For tests: dim 256, 2 layers, 4/2 heads of 64, hidden 512, vocab 32000 (every width a
    /// multiple of 256, as Q4_K needs).
    Small,
}

impl SyntheticShape {
    pub const ALL: [Self; 4] = [Self::Mistral7b, Self::Llama2_7b, Self::Llama08b, Self::Small];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mistral7b => "mistral-7b",
            Self::Llama2_7b => "llama2-7b",
            Self::Llama08b => "llama-0.8b",
            Self::Small => "small",
        }
    }

    pub fn config(self) -> ModelConfig {
        let (model_type, hidden, inter, layers, heads, kv_heads, window) = match self {
            Self::Mistral7b => ("mistral", 4096, 14336, 32, 32, 8, Some(4096)),
            Self::Llama2_7b => ("llama", 4096, 11008, 32, 32, 32, None),
            Self::Llama08b => ("llama", 2048, 5632, 16, 32, 4, None),
            Self::Small => ("mistral", 256, 512, 2, 4, 2, Some(64)),
        };
        ModelConfig {
            model_type: model_type.into(),
            vocab_size: 32_000,
            hidden_size: hidden,
            intermediate_size: inter,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim: hidden / heads,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            rope_scaling: crate::rope::RopeScaling::None,
            max_position_embeddings: 32_768,
            tie_word_embeddings: false,
            sliding_window: window,
            bos_token_id: Some(tokenizer::BOS),
            eos_token_ids: vec![tokenizer::EOS],
        }
    }
}

impl FromStr for SyntheticShape {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|shape| shape.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|s| s.name()).collect();
            ModelError::Invalid(format!("unknown shape `{s}` (expected one of {})", names.join(", ")))
        })
    }
}

impl fmt::Display for SyntheticShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Writes `config`'s random model (`seed`) as an HF folder `dir`: config.json, bf16 shards of
/// at most `shard_bytes` (a single `model.safetensors` when one is enough) and their index,
/// tokenizer.json. Returns the files written.
pub fn write_hf_folder(config: &ModelConfig, seed: u64, dir: &Path, shard_bytes: u64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
    let params = decoder_parameters(config);
    let shards = plan_shards(&params, shard_bytes);
    let mut files = Vec::new();
    let mut weight_map = serde_json::Map::new();
    for (i, shard) in shards.iter().enumerate() {
        let file = if shards.len() == 1 {
            "model.safetensors".to_string()
        } else {
            format!("model-{:05}-of-{:05}.safetensors", i + 1, shards.len())
        };
        let path = dir.join(&file);
        write_safetensors_shard(config, seed, &path, shard)?;
        weight_map.extend(shard.iter().map(|(name, _)| (name.clone(), json!(file))));
        files.push(path);
    }
    let total: u64 = params.iter().map(|(_, s)| 2 * s.iter().product::<usize>() as u64).sum();
    if shards.len() > 1 {
        let index = json!({"metadata": {"total_size": total}, "weight_map": weight_map});
        files.push(write_json(&dir.join("model.safetensors.index.json"), &index)?);
    }
    files.push(write_json(&dir.join("config.json"), &hf_config(config))?);
    let vocab = SyntheticVocab::new(config.vocab_size)?;
    vocab.write_hf(dir)?;
    files.extend([dir.join("tokenizer.json"), dir.join("tokenizer_config.json")]);
    Ok(files)
}

/// Writes `config`'s random model (`seed`) as a llama GGUF file with every matrix in `ty`
/// (norms stay F32, as llama.cpp keeps them) and the synthetic vocabulary.
pub fn write_gguf(config: &ModelConfig, seed: u64, path: &Path, ty: GgmlType) -> Result<()> {
    let params = decoder_parameters(config);
    let entries = params
        .iter()
        .map(|(name, shape)| {
            let name = gguf_name(name).ok_or_else(|| ModelError::Invalid(format!("no GGUF name for `{name}`")))?;
            let ggml_type = if shape.len() == 1 { GgmlType::F32 } else { ty };
            let ne = shape.iter().rev().map(|&d| d as u64).collect();
            Ok(TensorEntry { name, ne, ggml_type })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut writer = GgufWriter::new(path, &gguf_metadata(config)?, entries)?;
    for (name, shape) in &params {
        let (_, mut values) = random_tensor(config, name, seed)?;
        let heads = if name.ends_with("q_proj.weight") {
            Some(config.num_heads)
        } else if name.ends_with("k_proj.weight") {
            Some(config.num_kv_heads)
        } else {
            None
        };
        if let Some(heads) = heads {
            values = permute_qk_rows(&values, shape[0], shape[1], heads).map_err(ModelError::Invalid)?;
        }
        let ty = if shape.len() == 1 { GgmlType::F32 } else { ty };
        writer.write_tensor(&encode(ty, &values, *shape.last().unwrap_or(&1))?)?;
    }
    writer.finish()
}

/// Tensors grouped into shards of at most `limit` bf16 bytes (a tensor larger than the limit
/// gets a shard of its own).
fn plan_shards(params: &[(String, Vec<usize>)], limit: u64) -> Vec<Vec<(String, Vec<usize>)>> {
    let mut shards: Vec<Vec<(String, Vec<usize>)>> = vec![Vec::new()];
    let mut size = 0u64;
    for (name, shape) in params {
        let bytes = 2 * shape.iter().product::<usize>() as u64;
        if size + bytes > limit && !shards.last().is_some_and(Vec::is_empty) {
            shards.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(shard) = shards.last_mut() {
            shard.push((name.clone(), shape.clone()));
        }
    }
    shards
}

/// One safetensors file, streamed: the header (8-byte length, JSON padded with spaces to a
/// multiple of 8), then each tensor's bf16 bytes in header order.
fn write_safetensors_shard(
    config: &ModelConfig,
    seed: u64,
    path: &Path,
    tensors: &[(String, Vec<usize>)],
) -> Result<()> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0u64;
    for (name, shape) in tensors {
        let bytes = 2 * shape.iter().product::<usize>() as u64;
        header.insert(
            name.clone(),
            json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = serde_json::Value::Object(header).to_string();
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8));
    let file = File::create(path).map_err(|e| ModelError::io(path, e))?;
    let mut out = BufWriter::with_capacity(1 << 22, file);
    let io = |e| ModelError::io(path, e);
    out.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    for (name, shape) in tensors {
        let (_, values) = random_tensor(config, name, seed)?;
        out.write_all(&encode(GgmlType::BF16, &values, *shape.last().unwrap_or(&1))?)
            .map_err(io)?;
    }
    out.flush().map_err(io)
}

/// `values` (rows of `row_len`) encoded as `ty`, a band of rows per task.
fn encode(ty: GgmlType, values: &[f32], row_len: usize) -> Result<Vec<u8>> {
    let band = 64 * row_len.max(1);
    let parts: Option<Vec<Vec<u8>>> = values.par_chunks(band).map(|rows| quantize(ty, rows)).collect();
    parts
        .map(|parts| parts.concat())
        .ok_or_else(|| ModelError::Invalid(format!("cannot write {ty} rows of {row_len} values")))
}

fn hf_config(c: &ModelConfig) -> serde_json::Value {
    let architecture = match c.model_type.as_str() {
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    };
    json!({
        "architectures": [architecture], "model_type": c.model_type, "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers, "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads, "head_dim": c.head_dim, "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta, "max_position_embeddings": c.max_position_embeddings,
        "tie_word_embeddings": c.tie_word_embeddings, "sliding_window": c.sliding_window,
        "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_ids.first(),
        "hidden_act": "silu", "torch_dtype": "bfloat16",
    })
}

fn gguf_metadata(c: &ModelConfig) -> Result<Vec<(String, GgufValue)>> {
    let u32_of = |v: usize| GgufValue::U32(v as u32);
    let mut meta = vec![
        ("general.architecture".to_string(), GgufValue::String("llama".into())),
        (
            "general.name".into(),
            GgufValue::String(format!("synthetic {}", c.model_type)),
        ),
        ("llama.context_length".into(), u32_of(c.max_position_embeddings)),
        ("llama.embedding_length".into(), u32_of(c.hidden_size)),
        ("llama.block_count".into(), u32_of(c.num_layers)),
        ("llama.feed_forward_length".into(), u32_of(c.intermediate_size)),
        ("llama.attention.head_count".into(), u32_of(c.num_heads)),
        ("llama.attention.head_count_kv".into(), u32_of(c.num_kv_heads)),
        ("llama.rope.dimension_count".into(), u32_of(c.head_dim)),
        ("llama.rope.freq_base".into(), GgufValue::F32(c.rope_theta as f32)),
        (
            "llama.attention.layer_norm_rms_epsilon".into(),
            GgufValue::F32(c.rms_norm_eps as f32),
        ),
        ("llama.vocab_size".into(), u32_of(c.vocab_size)),
    ];
    meta.extend(SyntheticVocab::new(c.vocab_size)?.gguf_metadata());
    Ok(meta)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<PathBuf> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ModelError::Invalid(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| ModelError::io(path, e))?;
    Ok(path.to_path_buf())
}
