//! A bias-free linear layer with its weight stored [in, out], so `y = x · W`.

use burn::tensor::Tensor;

use crate::param::Param;

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Param<2>,
}

impl Linear {
    /// x: [batch, seq, in] → [batch, seq, out].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let weight = self.weight.get();
        let [batch, seq, inputs] = x.dims();
        let [_, outputs] = weight.dims();
        x.reshape([batch * seq, inputs])
            .matmul(weight)
            .reshape([batch, seq, outputs])
    }
}
