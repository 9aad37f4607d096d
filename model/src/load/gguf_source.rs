//! A GGUF file seen as a `WeightSource`: HF names, dequantized to f32, with llama.cpp's q/k
//! row permutation undone so the rotate-half RoPE applies (fixtures README §2.5).

use std::collections::HashMap;
use std::path::Path;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::load::gguf::{GgufFile, hf_name, unpermute_qk_rows};
use crate::load::weights::{HostTensor, WeightSource};

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

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let gguf_name = self.names.get(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.file.path.clone(),
            name: name.to_string(),
        })?;
        let (shape, data) = self.file.tensor_f32(gguf_name)?;
        // llama.cpp permuted q rows with the query head count and k rows with the kv head count.
        let heads = if name.ends_with("self_attn.q_proj.weight") {
            Some(self.num_heads)
        } else if name.ends_with("self_attn.k_proj.weight") {
            Some(self.num_kv_heads)
        } else {
            None
        };
        let data = match (heads, shape.as_slice()) {
            (Some(heads), &[rows, cols]) if rows % (2 * heads) == 0 => unpermute_qk_rows(&data, rows, cols, heads),
            (Some(heads), _) => {
                return Err(ModelError::Shape {
                    path: self.file.path.clone(),
                    name: gguf_name.clone(),
                    found: shape,
                    expected: vec![heads * 2, 0],
                });
            }
            (None, _) => data,
        };
        Ok(HostTensor { shape, data })
    }
}
