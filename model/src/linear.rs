//! A bias-free linear layer with its weight stored [in, out], so `y = x · W`.

use burn::tensor::{Tensor, TensorData};

use crate::load::stored::StoredTensor;
use crate::param::Param;

/// With `--weights direct`, steps of at most this many token rows (generation's decode steps,
/// one token per row) multiply straight from the stored matrix; larger ones (pre-fill, scoring)
/// materialize it, where the GEMM's speed pays for the conversion.
pub const DIRECT_MAX_ROWS: usize = 32;

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Param<2>,
    /// With `--weights direct`: the stored [out, in] matrix, for small steps.
    pub stored: Option<StoredTensor>,
}

impl Linear {
    pub fn new(weight: Param<2>) -> Self {
        Self { weight, stored: None }
    }

    /// x: [batch, seq, in] → [batch, seq, out].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, inputs] = x.dims();
        let y = self.forward_rows(x.reshape([batch * seq, inputs]));
        let [_, outputs] = y.dims();
        y.reshape([batch, seq, outputs])
    }

    /// x: [rows, in] → [rows, out].
    pub fn forward_rows(&self, x: Tensor<2>) -> Tensor<2> {
        let [rows, _] = x.dims();
        match &self.stored {
            Some(stored) if rows <= DIRECT_MAX_ROWS => {
                let device = x.device();
                // `--weights direct` is f32 on a CPU backend (LoadOptions::new), so reading the
                // activations back is a copy in memory.
                let x = x
                    .try_into_vec_as::<f32>()
                    .expect("activations on a CPU backend read back");
                let y = stored.apply_to_rows(&x);
                let outputs = y.len() / rows;
                Tensor::from_data(TensorData::new(y, [rows, outputs]), &device)
            }
            _ => x.matmul(self.weight.get()),
        }
    }
}
