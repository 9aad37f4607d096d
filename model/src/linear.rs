//! A bias-free linear layer with its weight held as [in, out] (PyTorch's [out, in] transposed),
//! so `y = x · W`: in f32 on the CPU in bands of output columns (`bands`), otherwise as one
//! [in, out] tensor laid out so in memory (`load::weights::in_out`).

use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};

use crate::bands::Bands;
use crate::load::stored::StoredTensor;
use crate::param::Weight;

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Weight,
    /// With `--weights direct`: the stored [out, in] matrix, which decode steps multiply.
    pub stored: Option<StoredTensor>,
}

impl Linear {
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
        self.product(decode_step).apply(x)
    }

    /// The weight as a step of this kind multiplies it, materialized once (a streamed weight)
    /// for any number of products: the LM head over the scored positions in chunks. (A decode
    /// step's stored weight is read again by each product; such a step scores one position
    /// per row.)
    pub fn product(&self, decode_step: bool) -> Product<'_> {
        if let Some(stored) = self.stored.as_ref().filter(|_| decode_step) {
            return Product::Stored(stored);
        }
        match &self.weight {
            Weight::Bands(bands) => Product::Bands(bands.get()),
            Weight::Matrix(weight) => Product::Matrix(weight.get()),
        }
    }
}

/// A `Linear`'s weight ready to multiply (`Linear::product`).
pub enum Product<'a> {
    Stored(&'a StoredTensor),
    Bands(Arc<Bands>),
    Matrix(Tensor<2>),
}

impl Product<'_> {
    /// x: [rows, in] → [rows, out].
    pub fn apply(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            Product::Stored(stored) => stored_product(stored, x),
            Product::Bands(bands) => bands.product(x),
            Product::Matrix(weight) => x.matmul(weight.clone()),
        }
    }
}

/// `x · W` read from W's stored [out, in] form (`--weights direct`, f32 on a CPU backend:
/// `LoadOptions::new`, `MemoryPlan::new`, so reading the activations back is a copy in memory).
fn stored_product(stored: &StoredTensor, x: Tensor<2>) -> Tensor<2> {
    let device = x.device();
    let [rows, _] = x.dims();
    let x = x
        .try_into_vec_as::<f32>()
        .expect("activations on a CPU backend read back");
    let y = stored.apply_to_rows(&x);
    Tensor::from_data(TensorData::new(y, [rows, stored.shape[0]]), &device)
}
