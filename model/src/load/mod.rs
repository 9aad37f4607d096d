//! Checkpoint formats, one file each, and [`Checkpoint`], which opens a path or hub id as the
//! right one.

pub mod checkpoint;
pub mod direct;
pub mod gguf;
pub mod gguf_source;
pub mod gguf_write;
pub mod hub;
pub mod memory;
pub mod pre_tokenizer;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod quant_avx2;
#[cfg(target_arch = "x86_64")]
mod quant_avx512;
pub mod quantize;
pub mod safetensors;
pub mod stored;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, FloatDType};

use crate::attention_spec::AttentionSpec;
use crate::backend::BackendKind;
use crate::decoder::Decoder;
use crate::error::Result;
use crate::precision::ComputeDtype;
pub use checkpoint::{Checkpoint, CheckpointFile};
use memory::{MemoryPlan, WeightsPolicy};
use tokenizer::TextTokenizer;

/// A loaded model: its decoder, where the checkpoint has one its tokenizer, and how its weights
/// are held.
pub struct LoadedModel {
    pub path: PathBuf,
    pub decoder: Decoder,
    pub tokenizer: Option<TextTokenizer>,
    pub memory: MemoryPlan,
}

/// How to hold a model's weights.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The compute precision (see [`ComputeDtype::resolve`]).
    pub dtype: FloatDType,
    pub weights: WeightsPolicy,
    /// Memory the model may use; `None` measures what the machine has available now.
    pub available_memory: Option<u64>,
}

impl LoadOptions {
    /// What the command line asks for: `dtype` resolved for `backend`.
    pub fn new(dtype: ComputeDtype, weights: WeightsPolicy, backend: BackendKind) -> Result<Self> {
        let dtype = dtype.resolve(backend)?;
        if weights == WeightsPolicy::Direct && backend == BackendKind::Wgpu {
            return Err(crate::error::ModelError::Invalid(
                "--weights direct multiplies on the CPU (use --weights stream or load with --backend wgpu)".into(),
            ));
        }
        Ok(Self {
            dtype,
            weights,
            available_memory: None,
        })
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: FloatDType::F32,
            weights: WeightsPolicy::Auto,
            available_memory: None,
        }
    }
}

/// Loads an HF folder, a `.gguf` file or a hub id in f32, weights held as
/// [`WeightsPolicy::Auto`] decides.
pub fn load_model(model: &Path, spec: &AttentionSpec, device: &Device) -> Result<LoadedModel> {
    load_model_with(model, spec, device, &LoadOptions::default())
}

/// Loads an HF folder (config.json + safetensors [+ tokenizer.json]), a `.gguf` file or a hub id
/// from the HuggingFace cache: [`Checkpoint::open`] then [`Checkpoint::load_with`].
pub fn load_model_with(
    model: &Path,
    spec: &AttentionSpec,
    device: &Device,
    options: &LoadOptions,
) -> Result<LoadedModel> {
    Checkpoint::open(model)?.load_with(spec, device, options)
}
