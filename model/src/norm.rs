//! RMSNorm as Llama defines it: w * (x / sqrt(mean(x²) + eps)), statistics in f32.

use burn::tensor::Tensor;

pub struct RmsNorm {
    pub weight: Tensor<1>,
    pub eps: f64,
}

impl RmsNorm {
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let inv_rms = x.clone().square().mean_dim(D - 1).add_scalar(self.eps).sqrt().recip();
        let weight = self.weight.clone().unsqueeze::<D>();
        x * inv_rms * weight
    }
}
