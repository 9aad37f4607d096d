//! Rotary position embeddings in HF's rotate-half (NeoX) layout: dims (i, i + d/2) form a pair.
//! The tables are computed on the host per forward call from explicit positions, exactly as
//! transformers does in f32, so positions are never limited by a precomputed table.

use burn::tensor::{Device, FloatDType, Tensor, TensorData};

/// How a checkpoint rescales RoPE's frequencies for a longer context than it was trained on.
/// Only rules that leave the frequencies fixed are here: transformers' `dynamic` and `longrope`
/// make them depend on the sequence's length, and are refused when the config is read.
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
    /// transformers `yarn` (YaRN, arXiv 2309.00071; Yarn-Mistral-7b-128k's config).
    Yarn(YarnScaling),
}

/// YaRN: the pairs that turn fewer than `beta_slow` times over the original context are
/// interpolated (divided by `factor`), those that turn more than `beta_fast` times kept, the
/// pairs between blended on a linear ramp; cos and sin are multiplied by `attention_factor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YarnScaling {
    pub factor: f64,
    pub original_max_position_embeddings: usize,
    pub beta_fast: f64,
    pub beta_slow: f64,
    /// Whether the ramp's ends are rounded out to whole pairs (transformers' default).
    pub truncate: bool,
    /// The config's `attention_factor`, or the one transformers derives from `factor` and
    /// `mscale`/`mscale_all_dim` (`_compute_yarn_parameters`).
    pub attention_factor: f64,
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
            Self::Yarn(y) => {
                positive("factor", y.factor)?;
                positive(
                    "original_max_position_embeddings",
                    y.original_max_position_embeddings as f64,
                )?;
                positive("attention_factor", y.attention_factor)?;
                positive("beta_fast", y.beta_fast)?;
                positive("beta_slow", y.beta_slow)
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

impl YarnScaling {
    /// The attention factor transformers derives when the config gives none: `get_mscale` in
    /// `_compute_yarn_parameters`, with `mscale`/`mscale_all_dim` only when both are non-zero.
    pub fn derived_attention_factor(factor: f64, mscale: Option<f64>, mscale_all_dim: Option<f64>) -> f64 {
        let get_mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
        match (mscale, mscale_all_dim) {
            (Some(m), Some(all)) if m != 0.0 && all != 0.0 => get_mscale(factor, m) / get_mscale(factor, all),
            _ => get_mscale(factor, 1.0),
        }
    }

    /// The frequencies of `_compute_yarn_parameters` from `pos_freqs` (theta^(2i/d)), operation
    /// for operation: the ramp's ends in f64 (Python's math), everything on tensors in f32 with
    /// Python scalars cast to f32.
    fn frequencies(&self, pos_freqs: &[f32], head_dim: usize, theta: f64) -> Vec<f32> {
        let dim = head_dim as f64;
        let original = self.original_max_position_embeddings as f64;
        let correction_dim =
            |rotations: f64| dim * (original / (rotations * std::f64::consts::TAU)).ln() / (2.0 * theta.ln());
        let (mut low, mut high) = (correction_dim(self.beta_fast), correction_dim(self.beta_slow));
        if self.truncate {
            (low, high) = (low.floor(), high.ceil());
        }
        let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
        if low == high {
            high += 0.001; // transformers' guard against a zero-width ramp
        }
        let (low_f, span) = (low as f32, (high - low) as f32);
        let factor = self.factor as f32;
        pos_freqs
            .iter()
            .enumerate()
            .map(|(i, &pos_freq)| {
                let extrapolation = 1.0 / pos_freq;
                let interpolation = 1.0 / (factor * pos_freq);
                let ramp = ((i as f32 - low_f) / span).clamp(0.0, 1.0);
                let kept = 1.0 - ramp;
                interpolation * (1.0 - kept) + extrapolation * kept
            })
            .collect()
    }
}

pub struct Rotary {
    /// inv_freq[i] = 1 / theta^(2i/d), then scaled, in f32 as transformers computes it.
    inv_freq: Vec<f32>,
    /// transformers' `attention_scaling`: cos and sin are multiplied by it (1 but for YaRN).
    attention_scaling: f32,
}

/// cos and sin tables for one forward call, shaped [batch, 1, seq, head_dim].
pub struct RotaryTables {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
}

impl Rotary {
    /// `scaling` must have been checked against `head_dim` (`ModelConfig::validate`).
    pub fn new(head_dim: usize, theta: f64, scaling: &RopeScaling) -> Self {
        let pos_freqs: Vec<f32> = (0..head_dim / 2)
            .map(|i| (theta as f32).powf((2 * i) as f32 / head_dim as f32))
            .collect();
        let unscaled = pos_freqs.iter().map(|p| 1.0 / p);
        let inv_freq = match scaling {
            RopeScaling::None => unscaled.collect(),
            // transformers `_compute_linear_scaling_rope_parameters`: inv_freq /= factor.
            RopeScaling::Linear { factor } => unscaled.map(|f| f / *factor as f32).collect(),
            RopeScaling::Llama3(llama3) => unscaled.map(|f| llama3.frequency(f)).collect(),
            RopeScaling::FreqFactors(factors) => unscaled.zip(factors).map(|(f, &by)| f / by).collect(),
            RopeScaling::Yarn(yarn) => yarn.frequencies(&pos_freqs, head_dim, theta),
        };
        let attention_scaling = match scaling {
            RopeScaling::Yarn(yarn) => yarn.attention_factor as f32,
            _ => 1.0,
        };
        Self {
            inv_freq,
            attention_scaling,
        }
    }

    /// The frequencies the tables use, one per rotated pair.
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// The factor on cos and sin.
    pub fn attention_scaling(&self) -> f32 {
        self.attention_scaling
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
                // `emb.cos() * attention_scaling`; a factor of 1 changes nothing.
                cos.push(angle.cos() * self.attention_scaling);
                sin.push(angle.sin() * self.attention_scaling);
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
