//! Checkpoint formats, one file each, and `load_model`, which picks the format from the path.

pub mod gguf;
pub mod gguf_source;
pub mod pre_tokenizer;
pub mod quant;
pub mod safetensors;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::attention_spec::AttentionSpec;
use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use gguf::GgufFile;
use tokenizer::TextTokenizer;
use weights::build_decoder;

/// A loaded model: its decoder and, where the checkpoint has one, its tokenizer.
pub struct LoadedModel {
    pub path: PathBuf,
    pub decoder: Decoder,
    pub tokenizer: Option<TextTokenizer>,
}

/// Loads an HF folder (config.json + safetensors [+ tokenizer.json]) or a `.gguf` file.
pub fn load_model(path: &Path, spec: &AttentionSpec, device: &Device) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(ModelError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ));
    }
    if path.is_dir() {
        let config = ModelConfig::from_hf_file(&path.join("config.json"))?;
        let source = safetensors::SafetensorsSource::open_dir(path)?;
        let decoder = build_decoder(&config, &source, spec, device)?;
        let tokenizer_file = path.join("tokenizer.json");
        let tokenizer = if tokenizer_file.is_file() {
            Some(TextTokenizer::from_file(&tokenizer_file)?)
        } else {
            None
        };
        return Ok(LoadedModel {
            path: path.to_path_buf(),
            decoder,
            tokenizer,
        });
    }
    let gguf = GgufFile::open(path)?;
    let config = ModelConfig::from_gguf(&gguf)?;
    let source = gguf_source::GgufSource::new(&gguf, &config);
    let decoder = build_decoder(&config, &source, spec, device)?;
    let tokenizer = Some(TextTokenizer::from_gguf(&gguf)?);
    Ok(LoadedModel {
        path: path.to_path_buf(),
        decoder,
        tokenizer,
    })
}
