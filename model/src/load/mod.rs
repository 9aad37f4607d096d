//! Checkpoint formats, one file each, and `load_model`, which picks the format from the path.

pub mod gguf;
pub mod gguf_source;
pub mod gguf_write;
pub mod memory;
pub mod quant;
pub mod quantize;
pub mod safetensors;
pub mod stored;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, FloatDType};

use crate::attention_spec::AttentionSpec;
use crate::backend::BackendKind;
use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::precision::ComputeDtype;
use gguf::GgufFile;
use memory::{MemoryPlan, WeightsPolicy, available_memory};
use tokenizer::TextTokenizer;
use weights::{Target, WeightSource, build_decoder};

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
        Ok(Self {
            dtype: dtype.resolve(backend)?,
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

/// Loads an HF folder or a `.gguf` file in f32, weights held as [`WeightsPolicy::Auto`] decides.
pub fn load_model(path: &Path, spec: &AttentionSpec, device: &Device) -> Result<LoadedModel> {
    load_model_with(path, spec, device, &LoadOptions::default())
}

/// Loads an HF folder (config.json + safetensors [+ tokenizer.json]) or a `.gguf` file. The
/// memory plan is made, and a model that cannot fit refused, before any weight is read.
pub fn load_model_with(
    path: &Path,
    spec: &AttentionSpec,
    device: &Device,
    options: &LoadOptions,
) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(ModelError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    }
    if path.is_dir() {
        let config = ModelConfig::from_hf_file(&path.join("config.json"))?;
        let source = safetensors::SafetensorsSource::open_dir(path)?;
        let tokenizer_file = path.join("tokenizer.json");
        let tokenizer = if tokenizer_file.is_file() {
            Some(TextTokenizer::from_file(&tokenizer_file)?)
        } else {
            None
        };
        let stored_bytes = source.stored_bytes();
        let opened = Opened {
            config,
            source: &source,
            stored_bytes,
            tokenizer,
        };
        return finish(path, opened, spec, device, options);
    }
    let gguf = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&gguf)?;
    let source = gguf_source::GgufSource::new(&gguf, &config);
    let opened = Opened {
        tokenizer: Some(TextTokenizer::from_gguf(&gguf)?),
        source: &source,
        stored_bytes: gguf.file_bytes(),
        config,
    };
    finish(path, opened, spec, device, options)
}

/// A checkpoint opened, nothing read yet but its headers.
struct Opened<'a> {
    config: ModelConfig,
    source: &'a dyn WeightSource,
    stored_bytes: u64,
    tokenizer: Option<TextTokenizer>,
}

fn finish(
    path: &Path,
    opened: Opened,
    spec: &AttentionSpec,
    device: &Device,
    options: &LoadOptions,
) -> Result<LoadedModel> {
    let Opened {
        config,
        source,
        stored_bytes,
        tokenizer,
    } = opened;
    let config = &config;
    let available = options.available_memory.or_else(available_memory);
    let memory = MemoryPlan::new(
        path,
        config,
        &spec.resolve(config)?,
        options.dtype,
        options.weights,
        stored_bytes,
        available,
    )?;
    let target = Target {
        device: device.clone(),
        dtype: options.dtype,
        residency: memory.residency,
    };
    Ok(LoadedModel {
        path: path.to_path_buf(),
        decoder: build_decoder(config, source, spec, &target)?,
        tokenizer,
        memory,
    })
}
