//! Where weights come from (a format-neutral view of a checkpoint, by HF parameter name), and
//! `Weights`, through which each module loads its own parameters under a name prefix
//! (`Attention::load(&w.at("self_attn"), ..)`), resident or streamed as the memory plan says.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use half::{bf16, f16};

use crate::attention_spec::AttentionSpec;
use crate::backend::flex_in_f32;
use crate::bands::Bands;
use crate::config::ModelConfig;
use crate::decoder::Decoder;
use crate::error::{ModelError, Result};
use crate::linear::Linear;
use crate::load::memory::Residency;
use crate::load::stored::StoredTensor;
use crate::param::{Embedding, Param, Weight};

/// A checkpoint seen through HF parameter names (`model.layers.0.self_attn.q_proj.weight`),
/// in HF's layout (rotate-half q/k rows, [out, in] matrices), each tensor still as stored.
pub trait WeightSource {
    fn path(&self) -> &Path;
    fn tensor(&self, name: &str) -> Result<StoredTensor>;
    /// Every tensor the checkpoint holds, by HF name where it has one (else as stored), except
    /// those read into the config (GGUF's `rope_freqs.weight`).
    fn tensor_names(&self) -> Vec<String>;
    /// Bytes of the checkpoint files (0 for weights made in memory).
    fn stored_bytes(&self) -> u64;
}

/// Where and how loaded weights live.
#[derive(Clone)]
pub struct Target {
    pub device: Device,
    /// The compute precision.
    pub dtype: FloatDType,
    pub residency: Residency,
}

impl Target {
    /// f32, resident: what every model got before weights could stream.
    pub fn resident_f32(device: &Device) -> Self {
        Self {
            device: device.clone(),
            dtype: FloatDType::F32,
            residency: Residency::Resident,
        }
    }
}

/// Builds the decoder from `source`, converted to the attention variant `spec`.
pub fn build_decoder(
    config: &ModelConfig,
    source: &dyn WeightSource,
    spec: &AttentionSpec,
    target: &Target,
) -> Result<Decoder> {
    check_every_tensor_used(config, source)?;
    Decoder::load(&Weights::root(source, target), config, &spec.resolve(config)?)
}

/// Refuses a tensor the decoder would not read: a file holding more than its config describes (a
/// bias, a layer past `num_hidden_layers`) is not the model the config says, and its logits
/// would silently be another model's. llama.cpp refuses such a file; transformers warns and drops
/// the tensors. One is read by neither and passes: the RoPE `inv_freq` buffer older HF Llama
/// checkpoints store (recomputed from the config).
fn check_every_tensor_used(config: &ModelConfig, source: &dyn WeightSource) -> Result<()> {
    let used: std::collections::HashSet<String> = decoder_parameters(config).into_iter().map(|(n, _)| n).collect();
    let ignored = |name: &str| name.ends_with(".rotary_emb.inv_freq");
    let mut unused: Vec<String> = source
        .tensor_names()
        .into_iter()
        .filter(|name| !used.contains(name) && !ignored(name))
        .collect();
    unused.sort();
    match unused.first() {
        None => Ok(()),
        Some(first) => Err(ModelError::unsupported(
            source.path(),
            format!(
                "{} tensor(s) that a {}-layer Llama/Mistral decoder without biases (as the config describes it) would not read, first `{first}`",
                unused.len(),
                config.num_layers
            ),
        )),
    }
}

/// `config` with its LM head as the checkpoint has it. transformers 5.x ties the head to the
/// embedding only where the checkpoint stores no head of its own: a stored `lm_head.weight` with
/// other values is used, untied, with a warning (`tie_weights` in modeling_utils.py). A stored
/// head with the embedding's values gives the same logits either way.
pub fn with_stored_head(config: &ModelConfig, source: &dyn WeightSource) -> ModelConfig {
    let mut config = config.clone();
    if config.tie_word_embeddings && source.tensor_names().iter().any(|n| n == "lm_head.weight") {
        config.tie_word_embeddings = false;
    }
    config
}

/// A decoder of `config`'s shape with pseudo-random weights and no checkpoint, for benchmarks
/// where only the shapes matter (uniform in ±1/√fan_in, norms 1; the same `seed`, the same weights).
pub fn random_decoder(config: &ModelConfig, spec: &AttentionSpec, device: &Device, seed: u64) -> Result<Decoder> {
    config.validate(Path::new(RANDOM))?;
    build_decoder(
        config,
        &RandomSource { config, seed },
        spec,
        &Target::resident_f32(device),
    )
}

/// One random tensor of `config`'s model by HF name, as [`random_decoder`] fills it: what a
/// synthetic checkpoint writes.
pub fn random_tensor(config: &ModelConfig, name: &str, seed: u64) -> Result<(Vec<usize>, Vec<f32>)> {
    RandomSource { config, seed }.values(name)
}

const RANDOM: &str = "<random weights>";

/// A checkpoint's weights seen from one module: names are relative to `prefix`.
pub struct Weights<'a> {
    source: &'a dyn WeightSource,
    prefix: String,
    target: &'a Target,
}

impl<'a> Weights<'a> {
    pub fn root(source: &'a dyn WeightSource, target: &'a Target) -> Self {
        Self {
            source,
            prefix: String::new(),
            target,
        }
    }

    /// The weights under `name` (`w.at("model").at("layers.0")`).
    pub fn at(&self, name: &str) -> Weights<'a> {
        Weights {
            source: self.source,
            prefix: self.full_name(name),
            target: self.target,
        }
    }

    pub fn target(&self) -> &Target {
        self.target
    }

    fn full_name(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// `name`, checked against the shape the config implies.
    pub fn stored(&self, name: &str, expected: &[usize]) -> Result<StoredTensor> {
        let tensor = self.source.tensor(&self.full_name(name))?;
        if tensor.shape != expected {
            return Err(ModelError::Shape {
                path: tensor.path.clone(),
                name: tensor.name.clone(),
                found: tensor.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(tensor)
    }

    /// `<name>.weight`, a PyTorch [out, in] matrix, held as [in, out], decoded straight into the
    /// compute precision. With `--weights direct` the layer keeps the stored matrix for small steps.
    pub fn linear(&self, name: &str, out: usize, inputs: usize) -> Result<Linear> {
        let stored = self.stored(&format!("{name}.weight"), &[out, inputs])?;
        let direct = (self.target.residency == Residency::Direct).then(|| stored.clone());
        let dtype = self.target.dtype;
        let weight = if flex_in_f32(&self.target.device, dtype) {
            Weight::Bands(self.held(stored, |stored| Arc::new(Bands::from_stored(stored))))
        } else {
            Weight::Matrix(self.param(stored, move |stored, device| {
                in_out(stored, [inputs, out], dtype, device)
            }))
        };
        Ok(Linear { weight, stored: direct })
    }

    /// [`Self::linear`] with `convert` applied to the f32 [in, out] weight before it is cast to
    /// the compute precision (each time it is materialized, when streamed; never multiplied from
    /// the stored form, which `convert` would bypass).
    pub fn linear_mapped(
        &self,
        name: &str,
        out: usize,
        inputs: usize,
        convert: impl Fn(Tensor<2>) -> Tensor<2> + Send + Sync + 'static,
    ) -> Result<Linear> {
        let stored = self.stored(&format!("{name}.weight"), &[out, inputs])?;
        let param = self.param(stored, move |stored, device| {
            convert(in_out(stored, [inputs, out], FloatDType::F32, device))
        });
        let weight = Weight::from_matrix(param, &self.target.device, self.target.dtype);
        Ok(Linear { weight, stored: None })
    }

    /// `<name>.weight`, a vector of `len`.
    pub fn vector(&self, name: &str, len: usize) -> Result<Param<Tensor<1>>> {
        let stored = self.stored(&format!("{name}.weight"), &[len])?;
        Ok(self.param(stored, move |stored, device| {
            Tensor::from_data(TensorData::new(stored.to_f32(), [len]), device)
        }))
    }

    /// `<name>.weight`, an embedding table [rows, cols].
    pub fn embedding(&self, name: &str, rows: usize, cols: usize) -> Result<Embedding> {
        let table = self.stored(&format!("{name}.weight"), &[rows, cols])?;
        let Target { device, dtype, .. } = self.target.clone();
        Ok(match self.target.residency {
            Residency::Resident if flex_in_f32(&device, dtype) => {
                let bands = Bands::from_stored(&table);
                table.release_pages();
                Embedding::Bands {
                    bands: Arc::new(bands),
                    device,
                }
            }
            Residency::Resident => {
                let columns = in_out(&table, [cols, rows], dtype, &device);
                table.release_pages();
                Embedding::Resident(columns)
            }
            Residency::Streamed | Residency::Direct => Embedding::Streamed { table, device, dtype },
        })
    }

    /// Resident: `make` runs now and the stored pages are let go. Streamed: `make` runs at
    /// every use.
    fn held<T: Clone + 'static>(
        &self,
        stored: StoredTensor,
        make: impl Fn(&StoredTensor) -> T + Send + Sync + 'static,
    ) -> Param<T> {
        match self.target.residency {
            Residency::Resident => {
                let held = make(&stored);
                stored.release_pages();
                Param::Resident(held)
            }
            Residency::Streamed | Residency::Direct => Param::Streamed(Arc::new(move || make(&stored))),
        }
    }

    /// [`Self::held`] as a device tensor cast to the compute precision.
    fn param<const D: usize>(
        &self,
        stored: StoredTensor,
        make: impl Fn(&StoredTensor, &Device) -> Tensor<D> + Send + Sync + 'static,
    ) -> Param<Tensor<D>> {
        let Target { device, dtype, .. } = self.target.clone();
        self.held(stored, move |stored| make(stored, &device).cast(dtype))
    }
}

/// A stored [out, in] matrix as the [in, out] tensor the model multiplies by in half precision
/// or off flex (f32 on flex holds bands: `Weights::linear`), laid out [in, out]
/// (`StoredTensor::to_columns`), which the matrix product reads in place, resident or streamed
/// alike (the same layout takes the same kernels: the two give the same bits). In `dtype` when
/// it is a half type (each value rounded to nearest-even from its f32 decoding, as flex's cast
/// rounds it), else in f32.
pub(crate) fn in_out(
    stored: &StoredTensor,
    [inputs, out]: [usize; 2],
    dtype: FloatDType,
    device: &Device,
) -> Tensor<2> {
    let shape = [inputs, out];
    let data = match dtype {
        FloatDType::F16 => TensorData::new(stored.to_columns(f16::from_f32), shape),
        FloatDType::BF16 => TensorData::new(stored.to_columns(bf16::from_f32), shape),
        _ => TensorData::new(stored.to_columns(|value| value), shape),
    };
    let data_type = data.dtype();
    Tensor::<2>::from_data(data, (device, data_type))
}

struct RandomSource<'a> {
    config: &'a ModelConfig,
    seed: u64,
}

impl WeightSource for RandomSource<'_> {
    fn path(&self) -> &Path {
        Path::new(RANDOM)
    }

    fn stored_bytes(&self) -> u64 {
        0
    }

    fn tensor_names(&self) -> Vec<String> {
        decoder_parameters(self.config).into_iter().map(|(n, _)| n).collect()
    }

    fn tensor(&self, name: &str) -> Result<StoredTensor> {
        let (shape, values) = self.values(name)?;
        StoredTensor::from_f32(self.path(), name, shape, &values)
    }
}

impl RandomSource<'_> {
    fn values(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let shape = decoder_parameters(self.config)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, shape)| shape)
            .ok_or_else(|| ModelError::MissingTensor {
                path: RANDOM.into(),
                name: name.into(),
            })?;
        if shape.len() == 1 {
            return Ok((shape.clone(), vec![1.0; shape[0]]));
        }
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
        Ok((shape, data))
    }
}

/// Every parameter of a decoder of `config`'s shape, by HF name, with PyTorch's shape, in
/// checkpoint order: what random weights and synthetic checkpoints are made of.
pub fn decoder_parameters(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let c = config;
    let (h, q, kv, inter) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
    let mut params = vec![("model.embed_tokens.weight".to_string(), vec![c.vocab_size, h])];
    for i in 0..c.num_layers {
        let layer = [
            ("input_layernorm", vec![h]),
            ("self_attn.q_proj", vec![q, h]),
            ("self_attn.k_proj", vec![kv, h]),
            ("self_attn.v_proj", vec![kv, h]),
            ("self_attn.o_proj", vec![h, q]),
            ("post_attention_layernorm", vec![h]),
            ("mlp.gate_proj", vec![inter, h]),
            ("mlp.up_proj", vec![inter, h]),
            ("mlp.down_proj", vec![h, inter]),
        ];
        params.extend(
            layer
                .into_iter()
                .map(|(part, shape)| (format!("model.layers.{i}.{part}.weight"), shape)),
        );
    }
    params.push(("model.norm.weight".to_string(), vec![h]));
    if !c.tie_word_embeddings {
        params.push(("lm_head.weight".to_string(), vec![c.vocab_size, h]));
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendKind;
    use crate::load::quant::GgmlType;

    /// Half-precision weights decoded straight into f16/bf16 hold the same bits as the f32
    /// decoding cast by burn (what loading did before): ties, values past f16's range, f16
    /// subnormals, from an f32 file and from bf16 and Q8_0 blocks.
    #[test]
    fn half_weights_decoded_directly_equal_the_cast_f32_weights() {
        let device = BackendKind::Flex.device().unwrap();
        let (rows, cols) = (40, 64);
        let specials = [1.0 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0, 70000.0, -1e-6, 3e-8, 0.1, -0.0];
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| {
                specials
                    .get(i)
                    .copied()
                    .unwrap_or(((i * 7919 % 1009) as f32 - 504.0) / 97.0)
            })
            .collect();
        for ty in [GgmlType::F32, GgmlType::BF16, GgmlType::Q8_0] {
            let stored = StoredTensor::encoded(ty, vec![rows, cols], &values);
            let f32_weight = in_out(&stored, [cols, rows], FloatDType::F32, &device);
            for dtype in [FloatDType::F16, FloatDType::BF16] {
                let direct = in_out(&stored, [cols, rows], dtype, &device).into_data();
                let cast = f32_weight.clone().cast(dtype).into_data();
                assert_eq!(direct.dtype(), cast.dtype(), "{} {dtype:?}", ty.name());
                assert!(
                    direct.as_bytes() == cast.as_bytes(),
                    "{} {dtype:?}: bits differ",
                    ty.name()
                );
            }
        }
    }
}
