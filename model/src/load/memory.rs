//! How much memory a model takes, resident or streamed, and the choice between the two, made
//! from config.json (or GGUF metadata) and the file sizes before any tensor is read.
//!
//! Resident: every weight converted once at load to the compute precision (the LM head to f32,
//! see `f32_head_extra`; fastest for small
//! models: no conversion per forward pass). Streamed: weights stay as stored (memory-mapped)
//! and each matrix is converted when the forward pass reaches it, then dropped (the only way a
//! 7B model fits 24 GiB in f32 compute). `auto` materializes when the resident model takes at
//! most half the available memory.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use burn::tensor::FloatDType;

use crate::attention_spec::ResolvedAttention;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::load::weights::decoder_parameters;
use crate::precision::{dtype_bytes, dtype_name};

/// `auto` materializes at load when the resident model takes at most this share of the
/// available memory, leaving the rest for activations, the KV cache and other processes.
const COMFORTABLE_SHARE: f64 = 0.5;
/// Streaming holds up to three copies of a weight at once: decoded on the host, on the device,
/// and converted there (a half-precision cast, or K/V converted to another head count).
const STREAM_COPIES: u64 = 3;

/// `--weights`: how weights are held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WeightsPolicy {
    /// Resident when the model fits comfortably, streamed otherwise.
    #[default]
    Auto,
    /// Materialize every weight at load.
    Load,
    /// Keep weights as stored and materialize them per layer in every forward pass.
    Stream,
    /// As `Stream`, but steps of a few token rows (decoding) multiply straight from the stored
    /// form: generation reads each weight once per step as stored. f32 on a CPU backend only;
    /// not bit-identical to the other two (another summation order).
    Direct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    Resident,
    Streamed,
    /// Streamed, and small steps multiply from the stored form (`WeightsPolicy::Direct`).
    Direct,
}

/// What loading will take, and the choice made, for messages and run.json.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryPlan {
    pub residency: Residency,
    pub dtype: FloatDType,
    /// Every weight in the compute precision, the LM head in f32.
    pub resident_bytes: u64,
    /// The checkpoint files (memory-mapped; pages the forward pass touches count as resident
    /// memory of the process, and the kernel may drop them again).
    pub stored_bytes: u64,
    /// The most a streamed forward pass expands at once (the largest weight, a few copies).
    pub stream_bytes: u64,
    /// Memory available to this process when the plan was made, if known.
    pub available_bytes: Option<u64>,
}

impl MemoryPlan {
    /// Chooses resident or streamed weights for `config` (with `attention`'s head counts) in
    /// `dtype`, or says, with the numbers, that the model cannot fit.
    pub fn new(
        path: &Path,
        config: &ModelConfig,
        attention: &ResolvedAttention,
        dtype: FloatDType,
        policy: WeightsPolicy,
        stored_bytes: u64,
        available_bytes: Option<u64>,
    ) -> Result<Self> {
        if policy == WeightsPolicy::Direct && dtype != FloatDType::F32 {
            return Err(ModelError::Invalid(format!(
                "--weights direct computes in f32 (asked: --dtype {}); use --weights stream or load for half precision",
                dtype_name(dtype)
            )));
        }
        let sizes = weight_sizes(config, attention);
        let elements: u64 = sizes.iter().sum();
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let mut plan = Self {
            residency: Residency::Resident,
            dtype,
            resident_bytes: elements * dtype_bytes(dtype) + f32_head_extra(config, dtype),
            stored_bytes,
            stream_bytes: STREAM_COPIES * largest * dtype_bytes(FloatDType::F32),
            available_bytes,
        };
        let Some(available) = available_bytes else {
            plan.residency = match policy {
                WeightsPolicy::Stream => Residency::Streamed,
                WeightsPolicy::Direct => Residency::Direct,
                WeightsPolicy::Auto | WeightsPolicy::Load => Residency::Resident,
            };
            return Ok(plan);
        };
        plan.residency = match policy {
            WeightsPolicy::Load if plan.resident_bytes > available => return Err(plan.too_big(path, "load")),
            WeightsPolicy::Load => Residency::Resident,
            WeightsPolicy::Auto if plan.resident_bytes as f64 <= COMFORTABLE_SHARE * available as f64 => {
                Residency::Resident
            }
            WeightsPolicy::Auto | WeightsPolicy::Stream => Residency::Streamed,
            WeightsPolicy::Direct => Residency::Direct,
        };
        if plan.residency != Residency::Resident && plan.stream_bytes > available {
            let how = if policy == WeightsPolicy::Direct {
                "direct"
            } else {
                "stream"
            };
            return Err(plan.too_big(path, how));
        }
        Ok(plan)
    }

    fn too_big(&self, path: &Path, how: &str) -> ModelError {
        let need = match how {
            "load" => format!("{} of weights in {}", gib(self.resident_bytes), dtype_name(self.dtype)),
            _ => format!("{} to stream its largest weight", gib(self.stream_bytes)),
        };
        let hint = match how {
            "load" => " (try --weights stream, or a half --dtype)",
            _ => "",
        };
        ModelError::Invalid(format!(
            "{}: the model does not fit in memory with --weights {how}: it needs {need}, and {} is available{hint}",
            path.display(),
            gib(self.available_bytes.unwrap_or(0))
        ))
    }
}

impl fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = match self.residency {
            Residency::Resident => "materialized at load",
            Residency::Streamed => "streamed per layer",
            Residency::Direct => "streamed per layer, decode steps from the stored form",
        };
        let available = self.available_bytes.map_or("unknown".into(), gib);
        write!(
            f,
            "weights {how} in {} ({} resident in {}, files {}, available {available})",
            dtype_name(self.dtype),
            gib(self.resident_bytes),
            dtype_name(self.dtype),
            gib(self.stored_bytes)
        )
    }
}

/// The LM head stays in f32 whatever the compute precision (decoder.rs, `logits`): in a half
/// type that is two more bytes per value, or a whole f32 copy where it is tied to the embedding.
fn f32_head_extra(config: &ModelConfig, dtype: FloatDType) -> u64 {
    let (f32_bytes, bytes) = (dtype_bytes(FloatDType::F32), dtype_bytes(dtype));
    let head = (config.vocab_size * config.hidden_size) as u64;
    if bytes >= f32_bytes {
        0
    } else if config.tie_word_embeddings {
        head * f32_bytes
    } else {
        head * (f32_bytes - bytes)
    }
}

/// Element counts of every weight the decoder holds, K/V at `attention`'s head count.
fn weight_sizes(config: &ModelConfig, attention: &ResolvedAttention) -> Vec<u64> {
    let converted = ModelConfig {
        num_kv_heads: attention.kv_heads,
        ..config.clone()
    };
    decoder_parameters(&converted)
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>() as u64)
        .collect()
}

/// Memory this process may still use: the kernel's MemAvailable, capped by a cgroup (v2)
/// limit where one applies (containers report the host's MemAvailable). `None` off Linux.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        * 1024;
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    let cgroup = read("/sys/fs/cgroup/memory.max")
        .zip(read("/sys/fs/cgroup/memory.current"))
        .map(|(max, current)| max.saturating_sub(current));
    Some(cgroup.map_or(available, |room| room.min(available)))
}

/// Bytes as GiB with two decimals.
pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl FromStr for WeightsPolicy {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "load" => Ok(Self::Load),
            "stream" => Ok(Self::Stream),
            "direct" => Ok(Self::Direct),
            _ => Err(ModelError::Invalid(format!(
                "unknown weights policy `{s}` (expected auto, load, stream or direct)"
            ))),
        }
    }
}

impl fmt::Display for WeightsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Load => "load",
            Self::Stream => "stream",
            Self::Direct => "direct",
        })
    }
}
