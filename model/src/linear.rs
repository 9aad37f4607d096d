//! A bias-free linear layer with its weight stored [in, out], so `y = x · W`.

use burn::tensor::Tensor;

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Tensor<2>,
}

impl Linear {
    /// x: [batch, seq, in] → [batch, seq, out].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, inputs] = x.dims();
        let [_, outputs] = self.weight.dims();
        x.reshape([batch * seq, inputs])
            .matmul(self.weight.clone())
            .reshape([batch, seq, outputs])
    }
}
