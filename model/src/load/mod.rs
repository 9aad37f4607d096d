//! Checkpoint formats, one file each, and [`Checkpoint`], which opens a path or hub id as the
//! right one.

pub mod checkpoint;
pub mod gguf;
pub mod gguf_source;
pub mod hub;
pub mod pre_tokenizer;
pub mod quant;
pub mod safetensors;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::attention_spec::AttentionSpec;
use crate::decoder::Decoder;
use crate::error::Result;
pub use checkpoint::{Checkpoint, CheckpointFile};
use tokenizer::TextTokenizer;

/// A loaded model: its decoder and, where the checkpoint has one, its tokenizer.
pub struct LoadedModel {
    pub path: PathBuf,
    pub decoder: Decoder,
    pub tokenizer: Option<TextTokenizer>,
}

/// Loads an HF folder (config.json + safetensors [+ tokenizer.json]), a `.gguf` file or a hub id
/// from the HuggingFace cache: [`Checkpoint::open`] then [`Checkpoint::load`].
pub fn load_model(model: &Path, spec: &AttentionSpec, device: &Device) -> Result<LoadedModel> {
    Checkpoint::open(model)?.load(spec, device)
}
