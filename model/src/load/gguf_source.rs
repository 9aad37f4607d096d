//! A GGUF file seen as a `WeightSource`: HF names, tensors still quantized, with llama.cpp's
//! q/k row permutation undone on decoding so the rotate-half RoPE applies (fixtures README §2.5).

use std::collections::HashMap;
use std::path::Path;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::load::gguf::{GgufFile, ROPE_FREQS, hf_name};
use crate::load::stored::StoredTensor;
use crate::load::weights::WeightSource;

pub struct GgufSource<'a> {
    file: &'a GgufFile,
    /// HF name → GGUF name
    names: HashMap<String, String>,
    num_heads: usize,
    num_kv_heads: usize,
}

impl<'a> GgufSource<'a> {
    pub fn new(file: &'a GgufFile, config: &ModelConfig) -> Self {
        let names = file
            .tensors
            .iter()
            .filter_map(|t| hf_name(&t.name).map(|hf| (hf, t.name.clone())))
            .collect();
        Self {
            file,
            names,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
        }
    }
}

impl WeightSource for GgufSource<'_> {
    fn path(&self) -> &Path {
        &self.file.path
    }

    fn stored_bytes(&self) -> u64 {
        self.file.file_bytes()
    }

    fn tensor_names(&self) -> Vec<String> {
        self.file
            .tensors
            .iter()
            .filter(|t| t.name != ROPE_FREQS)
            .map(|t| hf_name(&t.name).unwrap_or_else(|| t.name.clone()))
            .collect()
    }

    fn tensor(&self, name: &str) -> Result<StoredTensor> {
        let gguf_name = self.names.get(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.file.path.clone(),
            name: name.to_string(),
        })?;
        let stored = self.file.stored(gguf_name)?;
        // llama.cpp permuted q rows with the query head count and k rows with the kv head count.
        if name.ends_with("self_attn.q_proj.weight") {
            stored.unpermuting_qk_rows(self.num_heads)
        } else if name.ends_with("self_attn.k_proj.weight") {
            stored.unpermuting_qk_rows(self.num_kv_heads)
        } else {
            Ok(stored)
        }
    }
}
