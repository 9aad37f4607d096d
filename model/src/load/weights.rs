//! Where weights come from (a format-neutral view of a checkpoint, by HF parameter name) and
//! how they become a `Decoder`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use crate::attention::{Attention, convert_kv_projection};
use crate::attention_spec::AttentionSpec;
use crate::config::ModelConfig;
use crate::decoder::{Block, Decoder};
use crate::error::{ModelError, Result};
use crate::linear::Linear;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::rope::Rotary;

/// A tensor on the host, f32, row-major, with PyTorch's shape.
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A checkpoint seen through HF parameter names (`model.layers.0.self_attn.q_proj.weight`),
/// in HF's layout (rotate-half q/k rows, [out, in] matrices).
pub trait WeightSource {
    fn path(&self) -> &Path;
    fn has(&self, name: &str) -> bool;
    fn tensor(&self, name: &str) -> Result<HostTensor>;
}

/// Builds the decoder from `source`, converted to the attention variant `spec`.
pub fn build_decoder(
    config: &ModelConfig,
    source: &dyn WeightSource,
    spec: &AttentionSpec,
    device: &Device,
) -> Result<Decoder> {
    let attention = spec.resolve(config)?;
    let loader = Loader { source, device };
    let (h, inter, vocab) = (config.hidden_size, config.intermediate_size, config.vocab_size);
    let embed = loader.matrix("model.embed_tokens.weight", [vocab, h])?;
    let lm_head = if config.tie_word_embeddings {
        embed.clone().transpose()
    } else {
        loader.linear("lm_head.weight", vocab, h)?.weight
    };
    let mut blocks = Vec::with_capacity(config.num_layers);
    for i in 0..config.num_layers {
        let p = format!("model.layers.{i}");
        let kv_proj = |name: &str| -> Result<Linear> {
            let native = loader.linear(&format!("{p}.self_attn.{name}.weight"), config.kv_dim(), h)?;
            Ok(Linear {
                weight: convert_kv_projection(native.weight, &attention, config.head_dim),
            })
        };
        blocks.push(Block {
            attn_norm: loader.norm(&format!("{p}.input_layernorm.weight"), config)?,
            attention: Attention {
                q: loader.linear(&format!("{p}.self_attn.q_proj.weight"), config.q_dim(), h)?,
                k: kv_proj("k_proj")?,
                v: kv_proj("v_proj")?,
                o: loader.linear(&format!("{p}.self_attn.o_proj.weight"), h, config.q_dim())?,
                num_heads: attention.num_heads,
                kv_heads: attention.kv_heads,
                head_dim: config.head_dim,
            },
            mlp_norm: loader.norm(&format!("{p}.post_attention_layernorm.weight"), config)?,
            mlp: Mlp {
                gate: loader.linear(&format!("{p}.mlp.gate_proj.weight"), inter, h)?,
                up: loader.linear(&format!("{p}.mlp.up_proj.weight"), inter, h)?,
                down: loader.linear(&format!("{p}.mlp.down_proj.weight"), h, inter)?,
            },
        });
    }
    Ok(Decoder {
        config: config.clone(),
        attention,
        embed,
        blocks,
        norm: loader.norm("model.norm.weight", config)?,
        lm_head,
        rotary: Rotary::new(config.head_dim, config.rope_theta),
        device: device.clone(),
    })
}

/// A decoder of `config`'s shape with pseudo-random weights and no checkpoint, for benchmarks
/// where only the shapes matter (uniform in ±1/√fan_in, norms 1; the same `seed`, the same weights).
pub fn random_decoder(config: &ModelConfig, spec: &AttentionSpec, device: &Device, seed: u64) -> Result<Decoder> {
    config.validate(Path::new("<random weights>"))?;
    build_decoder(config, &RandomSource { config, seed }, spec, device)
}

struct RandomSource<'a> {
    config: &'a ModelConfig,
    seed: u64,
}

impl WeightSource for RandomSource<'_> {
    fn path(&self) -> &Path {
        Path::new("<random weights>")
    }

    fn has(&self, _name: &str) -> bool {
        true
    }

    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let c = self.config;
        let (h, q, kv, inter) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
        let shape = match name.rsplit('.').nth(1).unwrap_or("") {
            "embed_tokens" | "lm_head" => vec![c.vocab_size, h],
            "q_proj" => vec![q, h],
            "k_proj" | "v_proj" => vec![kv, h],
            "o_proj" => vec![h, q],
            "gate_proj" | "up_proj" => vec![inter, h],
            "down_proj" => vec![h, inter],
            layer if layer.ends_with("norm") => {
                return Ok(HostTensor {
                    shape: vec![h],
                    data: vec![1.0; h],
                });
            }
            _ => {
                return Err(ModelError::MissingTensor {
                    path: self.path().into(),
                    name: name.into(),
                });
            }
        };
        // xorshift64*, seeded from the seed and the name, so tensors differ from one another.
        let mut state = name.bytes().fold(self.seed ^ 0x9E37_79B9_7F4A_7C15, |s, b| {
            (s ^ b as u64).wrapping_mul(0x100_0000_01B3)
        }) | 1;
        let scale = 2.0 / (shape[1] as f32).sqrt();
        let data = (0..shape[0] * shape[1])
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
                (unit - 0.5) * scale
            })
            .collect();
        Ok(HostTensor { shape, data })
    }
}

struct Loader<'a> {
    source: &'a dyn WeightSource,
    device: &'a Device,
}

impl Loader<'_> {
    fn host(&self, name: &str, expected: &[usize]) -> Result<HostTensor> {
        let tensor = self.source.tensor(name)?;
        if tensor.shape != expected {
            return Err(ModelError::Shape {
                path: self.source.path().to_path_buf(),
                name: name.to_string(),
                found: tensor.shape,
                expected: expected.to_vec(),
            });
        }
        Ok(tensor)
    }

    fn matrix(&self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>> {
        let t = self.host(name, &shape)?;
        Ok(Tensor::from_data(TensorData::new(t.data, shape), self.device))
    }

    /// A PyTorch [out, in] weight, stored transposed as [in, out].
    fn linear(&self, name: &str, out: usize, inputs: usize) -> Result<Linear> {
        let t = self.host(name, &[out, inputs])?;
        let transposed = transpose(&t.data, out, inputs);
        Ok(Linear {
            weight: Tensor::from_data(TensorData::new(transposed, [inputs, out]), self.device),
        })
    }

    fn norm(&self, name: &str, config: &ModelConfig) -> Result<RmsNorm> {
        let t = self.host(name, &[config.hidden_size])?;
        Ok(RmsNorm {
            weight: Tensor::from_data(TensorData::new(t.data, [config.hidden_size]), self.device),
            eps: config.rms_norm_eps,
        })
    }
}

fn transpose(data: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = data[r * cols + c];
        }
    }
    out
}
