//! Rotary position embeddings in HF's rotate-half (NeoX) layout: dims (i, i + d/2) form a pair.
//! The tables are computed on the host per forward call from explicit positions, exactly as
//! transformers does in f32, so positions are never limited by a precomputed table.

use burn::tensor::{Device, FloatDType, Tensor, TensorData};

/// How a checkpoint rescales RoPE's frequencies for a longer context than it was trained on.
/// Only rules that leave the frequencies fixed are here: transformers' `dynamic` and `longrope`
/// make them depend on the sequence's length, `yarn` also scales the tables; those are refused
/// when the config is read.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// transformers `linear` (position interpolation): every frequency divided by `factor`.
    Linear {
        factor: f64,
    },
    /// transformers `llama3` (Llama 3.1 and later).
    Llama3(Llama3Scaling),
    /// llama.cpp's `rope_freqs.weight`, how GGUF files carry `llama3` scaling: frequency i
    /// divided by `factors[i]` (ggml's `freq_factors`).
    FreqFactors(Vec<f32>),
}

/// Wavelengths beyond `original_max_position_embeddings / low_freq_factor` divided by `factor`,
/// those under `original_max_position_embeddings / high_freq_factor` kept, the band between
/// smoothly interpolated.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: usize,
}

impl RopeScaling {
    /// Values for which the scaled frequencies are finite and positive, for a head of
    /// `head_dim` dimensions.
    pub fn check(&self, head_dim: usize) -> Result<(), String> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("rope scaling {name} {v} must be positive"))
            }
        };
        match self {
            Self::None => Ok(()),
            Self::Linear { factor } => positive("factor", *factor),
            Self::Llama3(s) => {
                positive("factor", s.factor)?;
                positive("low_freq_factor", s.low_freq_factor)?;
                positive(
                    "original_max_position_embeddings",
                    s.original_max_position_embeddings as f64,
                )?;
                if s.high_freq_factor > s.low_freq_factor && s.high_freq_factor.is_finite() {
                    Ok(())
                } else {
                    Err(format!(
                        "rope scaling high_freq_factor {} must exceed low_freq_factor {}",
                        s.high_freq_factor, s.low_freq_factor
                    ))
                }
            }
            Self::FreqFactors(factors) => {
                if factors.len() != head_dim / 2 {
                    return Err(format!(
                        "rope_freqs.weight has {} values, head_dim {} needs {}",
                        factors.len(),
                        head_dim,
                        head_dim / 2
                    ));
                }
                factors.iter().try_for_each(|&f| positive("factor", f as f64))
            }
        }
    }
}

impl Llama3Scaling {
    /// One frequency under transformers' `_compute_llama3_parameters`, operation for operation
    /// in f32 as torch computes it (`2π / t` is `t.reciprocal() * 2π` there, and Python scalars
    /// meet f32 tensors as f32).
    fn frequency(&self, inv_freq: f32) -> f32 {
        let old_context = self.original_max_position_embeddings as f64;
        let low_freq_wavelen = (old_context / self.low_freq_factor) as f32;
        let high_freq_wavelen = (old_context / self.high_freq_factor) as f32;
        let wavelen = inv_freq.recip() * std::f64::consts::TAU as f32;
        let factor = self.factor as f32;
        if wavelen > low_freq_wavelen {
            inv_freq / factor
        } else if wavelen < high_freq_wavelen {
            inv_freq
        } else {
            let smooth = (wavelen.recip() * old_context as f32 - self.low_freq_factor as f32)
                / (self.high_freq_factor - self.low_freq_factor) as f32;
            (1.0 - smooth) * inv_freq / factor + smooth * inv_freq
        }
    }
}

pub struct Rotary {
    /// inv_freq[i] = 1 / theta^(2i/d), then scaled, in f32 as transformers computes it.
    inv_freq: Vec<f32>,
}

/// cos and sin tables for one forward call, shaped [batch, 1, seq, head_dim].
pub struct RotaryTables {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
}

impl Rotary {
    /// `scaling` must have been checked against `head_dim` (`ModelConfig::validate`).
    pub fn new(head_dim: usize, theta: f64, scaling: &RopeScaling) -> Self {
        let theta = theta as f32;
        let unscaled = (0..head_dim / 2).map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32));
        let inv_freq = match scaling {
            RopeScaling::None => unscaled.collect(),
            // transformers `_compute_linear_scaling_rope_parameters`: inv_freq /= factor.
            RopeScaling::Linear { factor } => unscaled.map(|f| f / *factor as f32).collect(),
            RopeScaling::Llama3(llama3) => unscaled.map(|f| llama3.frequency(f)).collect(),
            RopeScaling::FreqFactors(factors) => unscaled.zip(factors).map(|(f, &by)| f / by).collect(),
        };
        Self { inv_freq }
    }

    /// The frequencies the tables use, one per rotated pair.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// `positions` is row-major [batch, seq]. Computed in f32, then cast to `dtype` (as
    /// transformers casts cos/sin to the activations' dtype).
    pub fn tables(
        &self,
        positions: &[i64],
        batch: usize,
        seq: usize,
        device: &Device,
        dtype: FloatDType,
    ) -> RotaryTables {
        let half = self.inv_freq.len();
        let dim = 2 * half;
        let mut cos = Vec::with_capacity(positions.len() * dim);
        let mut sin = Vec::with_capacity(positions.len() * dim);
        for &pos in positions {
            let start = cos.len();
            for &f in &self.inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
            // cat(angle, angle): the second half repeats the first.
            cos.extend_from_within(start..start + half);
            sin.extend_from_within(start..start + half);
        }
        let shape = [batch, 1, seq, dim];
        RotaryTables {
            cos: Tensor::<4>::from_data(TensorData::new(cos, shape), device).cast(dtype),
            sin: Tensor::<4>::from_data(TensorData::new(sin, shape), device).cast(dtype),
        }
    }
}

impl RotaryTables {
    /// x: [batch, heads, seq, head_dim] → x*cos + rotate_half(x)*sin.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, _, dim] = x.dims();
        let half = dim / 2;
        let first = x.clone().narrow(3, 0, half);
        let second = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        x * self.cos.clone() + rotated * self.sin.clone()
    }
}
