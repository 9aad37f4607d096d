//! One `ModelConfig` for every Llama/Mistral-family checkpoint, built from an HF `config.json`
//! or from GGUF metadata, and validated once so the layers can trust it.

use std::path::Path;

use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::load::gguf::{GgufFile, ROPE_FREQS};
use crate::rope::{Llama3Scaling, RopeScaling, YarnScaling};

/// What transformers 5.x's config classes give a key a checkpoint leaves out (`LlamaConfig`,
/// `MistralConfig`; its GGUF loader builds a `LlamaConfig` for every llama-architecture file).
/// `None` K/V heads: as many as query heads.
struct ClassDefaults {
    num_kv_heads: Option<usize>,
    sliding_window: Option<usize>,
    max_position_embeddings: usize,
    rms_norm_eps: f64,
    rope_theta: f64,
}

const LLAMA_DEFAULTS: ClassDefaults = ClassDefaults {
    num_kv_heads: None,
    sliding_window: None,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10_000.0,
};

const MISTRAL_DEFAULTS: ClassDefaults = ClassDefaults {
    num_kv_heads: Some(8),
    sliding_window: Some(4096),
    max_position_embeddings: 4096 * 32,
    ..LLAMA_DEFAULTS
};

#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// "llama" or "mistral": only the default sliding window differs.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    /// Mistral's native sliding window (W keys per query, the query included).
    pub sliding_window: Option<usize>,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// Reads an HF `config.json` (transformers 4.x `rope_theta` or 5.x `rope_parameters`).
    pub fn from_hf_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| ModelError::format(path, format!("not valid JSON: {e}")))?;
        Self::from_hf_json(&json, path)
    }

    pub fn from_hf_json(json: &Value, path: &Path) -> Result<Self> {
        let cfg = HfFields::top(json, path);
        let model_type = cfg.string("model_type")?;
        if model_type != "llama" && model_type != "mistral" {
            return Err(ModelError::unsupported(
                path,
                format!("model_type `{model_type}` (supported: llama, mistral)"),
            ));
        }
        if let Some(archs) = json.get("architectures").and_then(Value::as_array) {
            let known = ["LlamaForCausalLM", "MistralForCausalLM"];
            if let Some(other) = archs.iter().filter_map(Value::as_str).find(|a| !known.contains(a)) {
                return Err(ModelError::unsupported(path, format!("architecture `{other}`")));
            }
        }
        let mistral = model_type == "mistral";
        reject_unimplemented(&cfg, mistral)?;
        let hidden_size = cfg.usize("hidden_size")?;
        let num_heads = cfg.usize("num_attention_heads")?;
        let defaults = if mistral { &MISTRAL_DEFAULTS } else { &LLAMA_DEFAULTS };
        let num_kv_heads = cfg
            .usize_or_class_default("num_key_value_heads", defaults.num_kv_heads)?
            .unwrap_or(num_heads);
        let head_dim = match cfg.opt_usize("head_dim")? {
            Some(d) => d,
            None if num_heads > 0 && hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(ModelError::config(
                    path,
                    format!("num_attention_heads {num_heads} does not divide hidden_size {hidden_size}"),
                ));
            }
        };
        let max_position_embeddings = cfg
            .opt_usize("max_position_embeddings")?
            .unwrap_or(defaults.max_position_embeddings);
        let (rope_theta, rope_scaling) = cfg.rope(max_position_embeddings)?;
        // `LlamaConfig` has no window: a Llama's `sliding_window` key is read by nothing.
        let sliding_window = if mistral {
            cfg.usize_or_class_default("sliding_window", defaults.sliding_window)?
        } else {
            None
        };
        let config = Self {
            vocab_size: cfg.usize("vocab_size")?,
            intermediate_size: cfg.usize("intermediate_size")?,
            num_layers: cfg.usize("num_hidden_layers")?,
            rms_norm_eps: cfg.opt_f64("rms_norm_eps")?.unwrap_or(defaults.rms_norm_eps),
            max_position_embeddings,
            tie_word_embeddings: cfg.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            bos_token_id: match cfg.token_ids("bos_token_id")?.as_slice() {
                [] => None,
                [id] => Some(*id),
                _ => {
                    return Err(ModelError::config(
                        path,
                        "field `bos_token_id` must be one token id, found a list",
                    ));
                }
            },
            eos_token_ids: cfg.token_ids("eos_token_id")?,
            model_type,
            hidden_size,
            num_heads,
            num_kv_heads,
            head_dim,
            rope_theta,
            rope_scaling,
            sliding_window,
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Builds the config from `llama.*` GGUF metadata, as transformers' GGUF loader does.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let path = gguf.path.as_path();
        let arch = gguf
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ModelError::format(path, "metadata key `general.architecture` is missing"))?
            .to_string();
        if arch != "llama" && arch != "mistral" {
            return Err(ModelError::unsupported(
                path,
                format!("GGUF architecture `{arch}` (supported: llama)"),
            ));
        }
        let key = |k: &str| format!("{arch}.{k}");
        reject_unimplemented_gguf(gguf, &arch)?;
        let req = |k: &str| -> Result<usize> {
            gguf.get(&key(k))
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| {
                    ModelError::config(path, format!("metadata key `{}` is missing or not an integer", key(k)))
                })
        };
        let opt_f = |k: &str| gguf_number(gguf, &key(k));
        let opt_u = |k: &str| gguf_integer(gguf, &key(k));
        let hidden_size = req("embedding_length")?;
        let num_heads = req("attention.head_count")?;
        let num_kv_heads = opt_u("attention.head_count_kv")?.unwrap_or(num_heads);
        // llama.cpp: the head size is `attention.key_length` (else n_embd / n_head), and a llama
        // file's RoPE must cover all of it; older files give only `rope.dimension_count`.
        let rotated = opt_u("rope.dimension_count")?;
        let head_dim = match opt_u("attention.key_length")?.or(rotated) {
            Some(d) => d,
            None if num_heads > 0 && hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => {
                return Err(ModelError::config(
                    path,
                    format!("head_count {num_heads} does not divide embedding_length {hidden_size}"),
                ));
            }
        };
        if let Some(v) = opt_u("attention.value_length")?.filter(|&v| v != head_dim) {
            return Err(ModelError::unsupported(
                path,
                format!("value heads of {v} beside key heads of {head_dim}"),
            ));
        }
        if let Some(r) = rotated.filter(|&r| r != head_dim) {
            return Err(ModelError::unsupported(
                path,
                format!("RoPE over {r} of {head_dim} head dimensions (llama.cpp refuses it for llama too)"),
            ));
        }
        let vocab_size = match gguf_integer(gguf, &key("vocab_size"))? {
            Some(v) => v,
            None => gguf
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .or_else(|| {
                    gguf.tensor_info("token_embd.weight")
                        .and_then(|t| t.ne.get(1).map(|&n| n as usize))
                })
                .ok_or_else(|| ModelError::config(path, "cannot tell the vocabulary size"))?,
        };
        let name = gguf
            .get("general.name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_lowercase();
        let model_type = if arch == "mistral" || name.contains("mistral") {
            "mistral"
        } else {
            "llama"
        };
        let token_id = |k: &str| -> Result<Option<u32>> {
            gguf_integer(gguf, k)?
                .map(|id| {
                    u32::try_from(id)
                        .map_err(|_| ModelError::config(path, format!("metadata key `{k}` {id} is not a token id")))
                })
                .transpose()
        };
        let config = Self {
            model_type: model_type.to_string(),
            vocab_size,
            hidden_size,
            intermediate_size: req("feed_forward_length")?,
            num_layers: req("block_count")?,
            num_heads,
            num_kv_heads,
            head_dim,
            // transformers widens the stored f32 epsilon to f64.
            rms_norm_eps: opt_f("attention.layer_norm_rms_epsilon")?.unwrap_or(LLAMA_DEFAULTS.rms_norm_eps),
            rope_theta: opt_f("rope.freq_base")?.unwrap_or(LLAMA_DEFAULTS.rope_theta),
            rope_scaling: gguf_rope_scaling(gguf, &arch)?,
            max_position_embeddings: gguf_integer(gguf, &key("context_length"))?
                .unwrap_or(LLAMA_DEFAULTS.max_position_embeddings),
            tie_word_embeddings: gguf.tensor_info("output.weight").is_none(),
            sliding_window: None,
            bos_token_id: token_id("tokenizer.ggml.bos_token_id")?,
            eos_token_ids: token_id("tokenizer.ggml.eos_token_id")?.into_iter().collect(),
        };
        config.validate(path)?;
        Ok(config)
    }

    /// The checks every layer relies on; run once at load time.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let fail = |m: String| Err(ModelError::config(path, m));
        // Upper bounds far above any published model (Llama 3.1 405B: 126 layers, hidden
        // 16,384; Gemma: vocabulary 256,000), so that a corrupt value is an error here, not an
        // allocation of its size before any tensor is checked.
        for (name, v, most) in [
            ("vocab_size", self.vocab_size, 1 << 22),
            ("hidden_size", self.hidden_size, 1 << 17),
            ("intermediate_size", self.intermediate_size, 1 << 20),
            ("num_hidden_layers", self.num_layers, 1 << 12),
            ("num_attention_heads", self.num_heads, 1 << 12),
            ("num_key_value_heads", self.num_kv_heads, 1 << 12),
            ("head_dim", self.head_dim, 1 << 12),
            // GGUF `<arch>.context_length`; 0 would leave no room for any request.
            ("max_position_embeddings", self.max_position_embeddings, usize::MAX),
        ] {
            if v == 0 {
                return fail(format!("{name} must be positive"));
            }
            if v > most {
                return fail(format!(
                    "{name} {v} is beyond any model this harness runs (at most {most})"
                ));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return fail(format!(
                "num_key_value_heads {} does not divide num_attention_heads {}",
                self.num_kv_heads, self.num_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return fail(format!("head_dim {} must be even for rotary embeddings", self.head_dim));
        }
        if self.sliding_window == Some(0) {
            return fail("sliding_window must be positive".into());
        }
        if let Some(id) = self
            .bos_token_id
            .iter()
            .chain(&self.eos_token_ids)
            .find(|&&id| id as usize >= self.vocab_size)
        {
            return fail(format!(
                "token id {id} (bos_token_id / eos_token_id) is outside the vocabulary of {}",
                self.vocab_size
            ));
        }
        if !(self.rms_norm_eps > 0.0 && self.rope_theta > 0.0) {
            return fail("rms_norm_eps and rope_theta must be positive".into());
        }
        self.rope_scaling
            .check(self.head_dim)
            .map_err(|m| ModelError::config(path, m))
    }

    pub fn q_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }
}

/// Typed access to the fields of one config.json (or of an object in it), with errors naming
/// the field by its whole path (`rope_scaling.factor`).
struct HfFields<'a> {
    json: &'a Value,
    path: &'a Path,
    /// "" at the top level, "key." inside the object under `key`.
    prefix: String,
}

impl<'a> HfFields<'a> {
    fn top(json: &'a Value, path: &'a Path) -> Self {
        Self {
            json,
            path,
            prefix: String::new(),
        }
    }
    /// The object under `key`, or None where it is absent or null.
    fn nested(&self, key: &str) -> Result<Option<HfFields<'a>>> {
        let prefix = format!("{}{key}.", self.prefix);
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(HfFields {
                json: v,
                path: self.path,
                prefix,
            })),
            Some(v) => Err(ModelError::config(
                self.path,
                format!("field `{}{key}` must be an object, found {v}", self.prefix),
            )),
        }
    }
    fn string(&self, key: &str) -> Result<String> {
        self.json
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ModelError::config(self.path, format!("missing string field `{}{key}`", self.prefix)))
    }
    /// Whether `key` is present with the value `null` (for the settings where null and absent
    /// differ).
    fn is_null(&self, key: &str) -> bool {
        self.json.get(key).is_some_and(Value::is_null)
    }
    /// `key` as a config class reads it: absent, the class's default; `null`, none.
    fn usize_or_class_default(&self, key: &str, default: Option<usize>) -> Result<Option<usize>> {
        match self.json.get(key) {
            None => Ok(default),
            Some(_) => self.opt_usize(key),
        }
    }
    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| ModelError::config(self.path, format!("missing field `{}{key}`", self.prefix)))
    }
    fn f64(&self, key: &str) -> Result<f64> {
        self.opt_f64(key)?
            .ok_or_else(|| ModelError::config(self.path, format!("missing field `{}{key}`", self.prefix)))
    }
    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        self.opt_typed(key, "a number", Value::as_f64)
    }
    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.opt_typed(key, "true or false", Value::as_bool)
    }
    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.opt_typed(key, "a string", Value::as_str)
    }
    /// A field that may be absent or null, and is otherwise of one JSON type: a value of
    /// another type is an error, never the default.
    fn opt_typed<'v, T>(&'v self, key: &str, kind: &str, read: impl Fn(&'v Value) -> Option<T>) -> Result<Option<T>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => read(v).map(Some).ok_or_else(|| {
                ModelError::config(
                    self.path,
                    format!("field `{}{key}` must be {kind}, found {v}", self.prefix),
                )
            }),
        }
    }
    /// A token id or a list of them (`eos_token_id` may be either).
    fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        let id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
        let ids = match self.json.get(key) {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(list)) => list.iter().map(id).collect(),
            Some(one) => id(one).map(|n| vec![n]),
        };
        ids.ok_or_else(|| {
            ModelError::config(
                self.path,
                format!(
                    "field `{}{key}` must be a token id or a list of them, found {}",
                    self.prefix, self.json[key]
                ),
            )
        })
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.json.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                ModelError::config(
                    self.path,
                    format!("field `{}{key}` must be a non-negative integer, found {v}", self.prefix),
                )
            }),
        }
    }

    /// RoPE's base and scaling, resolved as transformers 5.x resolves them
    /// (`convert_rope_params_to_dict`, `standardize_rope_params`): a non-empty 4.x `rope_scaling`
    /// object replaces 5.x `rope_parameters`; the kind is its `rope_type` (or the older `type`);
    /// `rope_theta` and `partial_rotary_factor` come from it, else from the top level; llama3's
    /// and yarn's `original_max_position_embeddings` from the top level, else from it, else
    /// `max_position_embeddings`. Kinds not implemented are refused ([`RopeScaling`] says why).
    fn rope(&self, max_position_embeddings: usize) -> Result<(f64, RopeScaling)> {
        let params = match self.nested("rope_scaling")? {
            Some(scaling) if scaling.json.as_object().is_some_and(|o| !o.is_empty()) => Some(scaling),
            _ => self.nested("rope_parameters")?,
        };
        let either = |key: &str| -> Result<Option<f64>> {
            match params.as_ref().map(|p| p.opt_f64(key)).transpose()?.flatten() {
                Some(v) => Ok(Some(v)),
                None => self.opt_f64(key),
            }
        };
        let theta = either("rope_theta")?.unwrap_or(LLAMA_DEFAULTS.rope_theta);
        let Some(params) = params.as_ref() else {
            return Ok((theta, RopeScaling::None));
        };
        let kind = match params.opt_str("rope_type")? {
            Some(kind) => Some(kind),
            None => params.opt_str("type")?,
        };
        let original_context = || -> Result<usize> {
            Ok(match self.opt_usize("original_max_position_embeddings")? {
                Some(n) => n,
                None => params
                    .opt_usize("original_max_position_embeddings")?
                    .unwrap_or(max_position_embeddings),
            })
        };
        let scaling = match kind.unwrap_or("default") {
            "default" => RopeScaling::None,
            "linear" => RopeScaling::Linear {
                factor: params.f64("factor")?,
            },
            "llama3" => RopeScaling::Llama3(Llama3Scaling {
                factor: params.f64("factor")?,
                low_freq_factor: params.f64("low_freq_factor")?,
                high_freq_factor: params.f64("high_freq_factor")?,
                original_max_position_embeddings: original_context()?,
            }),
            "yarn" => {
                // `_compute_yarn_parameters`: a null factor means the ratio of the contexts (the
                // key itself is required); a beta of 0 or null means its default (`or 32`, `or 1`).
                let original = original_context()?;
                let factor = match params.is_null("factor") {
                    true => max_position_embeddings as f64 / original as f64,
                    false => params.f64("factor")?,
                };
                let attention_factor = match params.opt_f64("attention_factor")? {
                    Some(a) => a,
                    None => YarnScaling::derived_attention_factor(
                        factor,
                        params.opt_f64("mscale")?,
                        params.opt_f64("mscale_all_dim")?,
                    ),
                };
                let or = |value: Option<f64>, default: f64| value.filter(|&v| v != 0.0).unwrap_or(default);
                RopeScaling::Yarn(YarnScaling {
                    factor,
                    original_max_position_embeddings: original,
                    beta_fast: or(params.opt_f64("beta_fast")?, 32.0),
                    beta_slow: or(params.opt_f64("beta_slow")?, 1.0),
                    // `.get("truncate", True)`: absent truncates, null does not.
                    truncate: params.opt_bool("truncate")?.unwrap_or(!params.is_null("truncate")),
                    attention_factor,
                })
            }
            other => {
                return Err(ModelError::unsupported(
                    self.path,
                    format!("rope scaling `{other}` (supported: default, linear, llama3, yarn)"),
                ));
            }
        };
        // transformers' default RoPE ignores it; the scaled ones fail on it.
        if let Some(fraction) = either("partial_rotary_factor")?
            && fraction != 1.0
            && scaling != RopeScaling::None
        {
            return Err(ModelError::unsupported(
                self.path,
                format!("partial_rotary_factor {fraction} with scaled RoPE (RoPE over every dimension only)"),
            ));
        }
        Ok((theta, scaling))
    }
}

/// RoPE scaling as llama.cpp reads a llama GGUF (`llm_load_hparams`, `llama_context`): the
/// `rope_freqs.weight` tensor (how convert_hf_to_gguf.py writes `llama3` scaling), and a linear
/// factor from `<arch>.rope.scaling.factor` (older files: `<arch>.rope.scale_linear`; 0 means
/// none) unless `<arch>.rope.scaling.type` is `none` (absent means linear). transformers' GGUF
/// loader reads neither; the HF checkpoint a file was converted from does, and this matches it.
fn gguf_rope_scaling(gguf: &GgufFile, arch: &str) -> Result<RopeScaling> {
    let path = gguf.path.as_path();
    let kind_key = format!("{arch}.rope.scaling.type");
    let kind = gguf
        .get(&kind_key)
        .map(|v| {
            v.as_str()
                .ok_or_else(|| ModelError::config(path, format!("metadata key `{kind_key}` is not a string")))
        })
        .transpose()?;
    let factor = match gguf_number(gguf, &format!("{arch}.rope.scaling.factor"))? {
        Some(factor) => Some(factor),
        None => gguf_number(gguf, &format!("{arch}.rope.scale_linear"))?,
    };
    let linear = match kind.unwrap_or("linear") {
        "none" => None,
        "linear" => factor.filter(|&f| f != 0.0 && f != 1.0),
        other => {
            return Err(ModelError::unsupported(
                path,
                format!("rope scaling `{other}` (supported: none, linear, and llama3's rope_freqs.weight)"),
            ));
        }
    };
    let freq_factors = match gguf.tensor_info(ROPE_FREQS) {
        Some(_) => match gguf.tensor_f32(ROPE_FREQS)? {
            (shape, factors) if shape.len() == 1 => Some(factors),
            (shape, _) => {
                return Err(ModelError::config(
                    path,
                    format!("rope_freqs.weight has shape {shape:?}, not one factor per rotated pair"),
                ));
            }
        },
        None => None,
    };
    match (linear, freq_factors) {
        (None, None) => Ok(RopeScaling::None),
        (Some(factor), None) => Ok(RopeScaling::Linear { factor }),
        (None, Some(factors)) => Ok(RopeScaling::FreqFactors(factors)),
        // llama.cpp applies both; no converter writes both.
        (Some(_), Some(_)) => Err(ModelError::unsupported(
            path,
            "linear rope scaling together with rope_freqs.weight",
        )),
    }
}

/// A metadata number, if the key is there; a value of another type is an error.
fn gguf_number(gguf: &GgufFile, key: &str) -> Result<Option<f64>> {
    gguf.get(key)
        .map(|v| {
            v.as_f64()
                .ok_or_else(|| ModelError::config(&gguf.path, format!("metadata key `{key}` is not a number")))
        })
        .transpose()
}

/// A metadata integer, if the key is there; a value of another type is an error.
fn gguf_integer(gguf: &GgufFile, key: &str) -> Result<Option<usize>> {
    gguf.get(key)
        .map(|v| {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| ModelError::config(&gguf.path, format!("metadata key `{key}` is not an integer")))
        })
        .transpose()
}

/// What llama.cpp would compute from a llama GGUF and this decoder would not: each is an error.
fn reject_unimplemented_gguf(gguf: &GgufFile, arch: &str) -> Result<()> {
    let path = gguf.path.as_path();
    let experts_key = format!("{arch}.expert_count");
    if let Some(experts) = gguf.get(&experts_key).and_then(|v| v.as_u64()).filter(|&n| n > 0) {
        return Err(ModelError::unsupported(
            path,
            format!("a mixture of experts (`{experts_key}` {experts})"),
        ));
    }
    // llama.cpp adds a bias where a llama file has one; transformers' Llama has none.
    if let Some(bias) = gguf.tensors.iter().find(|t| t.name.ends_with(".bias")) {
        return Err(ModelError::unsupported(
            path,
            format!("tensor `{}` (biases are not implemented)", bias.name),
        ));
    }
    Ok(())
}

/// Settings of transformers' Llama/Mistral that this decoder does not implement: each would be
/// ignored, giving other logits than the checkpoint's, so each is an error. (Mistral's modeling
/// has no biases whatever its config says, so there the bias keys mean nothing.)
fn reject_unimplemented(cfg: &HfFields, mistral: bool) -> Result<()> {
    // transformers' ACT2FN: "swish" is SiLU under its other name.
    if let Some(act) = cfg.opt_str("hidden_act")?
        && act != "silu"
        && act != "swish"
    {
        return Err(ModelError::unsupported(
            cfg.path,
            format!("hidden_act `{act}` (supported: silu)"),
        ));
    }
    if let Some(quant) = cfg.json.get("quantization_config").filter(|q| !q.is_null()) {
        let method = quant.get("quant_method").and_then(Value::as_str).unwrap_or("unnamed");
        return Err(ModelError::unsupported(
            cfg.path,
            format!(
                "quantization_config `{method}` (quantized HF checkpoints are not read; a GGUF file of the model is)"
            ),
        ));
    }
    for bias in ["attention_bias", "mlp_bias"] {
        if !mistral && cfg.opt_bool(bias)? == Some(true) {
            return Err(ModelError::unsupported(
                cfg.path,
                format!("`{bias}: true` (biases are not implemented)"),
            ));
        }
    }
    Ok(())
}
