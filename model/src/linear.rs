//! A bias-free linear layer with its weight held as [in, out] (PyTorch's [out, in] transposed:
//! laid out so when resident, a transposed view when streamed; `load::weights::in_out`), so
//! `y = x · W`.

use burn::tensor::{Tensor, TensorData};

use crate::load::stored::StoredTensor;
use crate::param::Param;

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Param<2>,
    /// With `--weights direct`: the stored [out, in] matrix, which decode steps multiply.
    pub stored: Option<StoredTensor>,
}

impl Linear {
    pub fn new(weight: Param<2>) -> Self {
        Self { weight, stored: None }
    }

    /// x: [batch, seq, in] → [batch, seq, out]. A step of one token per row is a decode step.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, seq, inputs] = x.dims();
        let y = self.forward_rows(x.reshape([batch * seq, inputs]), seq == 1);
        let [_, outputs] = y.dims();
        y.reshape([batch, seq, outputs])
    }

    /// x: [rows, in] → [rows, out]. With `--weights direct`, a decode step (one token per row,
    /// whatever the batch size, so a row's bits never depend on what shares its step)
    /// multiplies straight from the stored matrix; other steps (pre-fill, scoring) materialize
    /// it, where the GEMM's speed pays for the conversion.
    pub fn forward_rows(&self, x: Tensor<2>, decode_step: bool) -> Tensor<2> {
        match &self.stored {
            Some(stored) if decode_step => {
                let device = x.device();
                let [rows, _] = x.dims();
                // `--weights direct` is f32 on a CPU backend (LoadOptions::new, MemoryPlan::new),
                // so reading the activations back is a copy in memory.
                let x = x
                    .try_into_vec_as::<f32>()
                    .expect("activations on a CPU backend read back");
                let y = stored.apply_to_rows(&x);
                Tensor::from_data(TensorData::new(y, [rows, stored.shape[0]]), &device)
            }
            _ => x.matmul(self.weight.get()),
        }
    }
}
