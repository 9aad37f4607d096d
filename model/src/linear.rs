//! A bias-free linear layer with its weight held as [in, out] (PyTorch's [out, in] transposed),
//! so `y = x · W`: in f32 on the CPU in bands of output columns (`bands`), otherwise as one
//! [in, out] tensor laid out so in memory (`load::weights::in_out`).

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::backend::on_flex_in_f32;
use crate::load::stored::StoredTensor;
use crate::param::{Param, Weight};

pub struct Linear {
    /// [in, out]: the transpose of PyTorch's [out, in].
    pub weight: Weight,
    /// With `--weights direct`: the stored [out, in] matrix, which decode steps multiply.
    pub stored: Option<StoredTensor>,
}

impl Linear {
    pub fn new(weight: Param<Tensor<2>>) -> Self {
        Self {
            weight: Weight::Matrix(weight),
            stored: None,
        }
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
        if let Some(stored) = self.stored.as_ref().filter(|_| decode_step) {
            return stored_product(stored, x);
        }
        match &self.weight {
            Weight::Bands(bands) => bands.get().product(x),
            Weight::Matrix(weight) if single_thread_product(&x) => columns_in_parallel(x, weight.get()),
            Weight::Matrix(weight) => x.matmul(weight.get()),
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

/// Columns of the output per task in [`columns_in_parallel`]: a multiple of every vector
/// width, so each column is computed by the same instructions as in one whole product.
const COLUMNS_PER_TASK_MULTIPLE: usize = 64;

/// Whether `x · W` would run on one thread: on flex in f32, a product with one activation row
/// goes to the `gemm` crate's matrix-vector kernel, which takes no parallelism. (Only weights
/// not held in bands get here: K/V projections converted to another head layout, and a
/// half-precision model's LM head widened to f32.)
fn single_thread_product(x: &Tensor<2>) -> bool {
    x.dims()[0] == 1 && on_flex_in_f32(x)
}

/// `x · W` with W's columns split across the cores, one matrix-vector product per band, joined.
/// W is laid out [in, out] (`in_out`), so every band, like the whole, goes to the column-major
/// kernel, which sums each output column on its own in input order, and bands start at a
/// multiple of every vector width: the result has the whole product's bits.
fn columns_in_parallel(x: Tensor<2>, weight: Tensor<2>) -> Tensor<2> {
    let [_, out] = weight.dims();
    let tasks = rayon::current_num_threads();
    let per_task = out.div_ceil(tasks).next_multiple_of(COLUMNS_PER_TASK_MULTIPLE);
    if tasks < 2 || per_task >= out {
        return x.matmul(weight);
    }
    let bands: Vec<Tensor<2>> = (0..out)
        .into_par_iter()
        .step_by(per_task)
        .map(|first| {
            x.clone()
                .matmul(weight.clone().narrow(1, first, per_task.min(out - first)))
        })
        .collect();
    Tensor::cat(bands, 1)
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    /// One activation row against a [576, 1,600] weight (not a multiple of the band width, so
    /// the last band is narrower), on a pool of 3 threads: the same bits as the one product.
    #[test]
    fn a_product_split_by_columns_has_the_bits_of_the_whole_product() {
        let device = burn::tensor::Device::flex();
        let (inputs, out) = (576, 1600);
        let values = |n: usize, salt: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 7919 + salt) % 1009) as f32 - 504.0) / 251.0)
                .collect()
        };
        let x = Tensor::<2>::from_data(TensorData::new(values(inputs, 1), [1, inputs]), &device);
        let weight = Tensor::<2>::from_data(TensorData::new(values(inputs * out, 2), [inputs, out]), &device);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let split = pool.install(|| columns_in_parallel(x.clone(), weight.clone()));
        assert!(single_thread_product(&x));
        let whole = x.matmul(weight);
        let bits = |t: Tensor<2>| {
            t.into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(split), bits(whole));
    }
}
