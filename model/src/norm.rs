//! RMSNorm as Llama defines it: w * (x / sqrt(mean(x²) + eps)), statistics in f32 whatever the
//! compute precision, cast to the compute precision before the weight is applied (transformers'
//! `LlamaRMSNorm`).

use burn::tensor::{FloatDType, Tensor};

use crate::error::Result;
use crate::load::weights::Weights;
use crate::param::Param;

pub struct RmsNorm {
    pub weight: Param<Tensor<1>>,
    pub eps: f64,
}

impl RmsNorm {
    /// `<name>.weight` of `size`.
    pub fn load(w: &Weights, name: &str, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: w.vector(name, size)?,
            eps,
        })
    }

    /// `x` in any float type (the residual stream is f32); the result in `dtype`, the compute
    /// precision of the sublayer it feeds.
    pub fn forward<const D: usize>(&self, x: Tensor<D>, dtype: FloatDType) -> Tensor<D> {
        let x = x.cast(FloatDType::F32);
        let inv_rms = x.clone().square().mean_dim(D - 1).add_scalar(self.eps).sqrt().recip();
        let weight = self.weight.get().unsqueeze::<D>();
        (x * inv_rms).cast(dtype) * weight
    }
}
