//! Rotary position embeddings in HF's rotate-half (NeoX) layout: dims (i, i + d/2) form a pair.
//! The tables are computed on the host per forward call from explicit positions, exactly as
//! transformers does in f32, so positions are never limited by a precomputed table.

use burn::tensor::{Device, FloatDType, Tensor, TensorData};

pub struct Rotary {
    /// inv_freq[i] = 1 / theta^(2i/d), in f32 as transformers computes it.
    inv_freq: Vec<f32>,
}

/// cos and sin tables for one forward call, shaped [batch, 1, seq, head_dim].
pub struct RotaryTables {
    pub cos: Tensor<4>,
    pub sin: Tensor<4>,
}

impl Rotary {
    pub fn new(head_dim: usize, theta: f64) -> Self {
        let theta = theta as f32;
        let inv_freq = (0..head_dim / 2)
            .map(|i| 1.0 / theta.powf((2 * i) as f32 / head_dim as f32))
            .collect();
        Self { inv_freq }
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
