//! f32 weights on the CPU held in bands of output columns, each band an [in, width] matrix
//! contiguous in memory, and multiplied by the `gemm` crate band by band.
//!
//! Why: the crate computes `x · W` as `(Wᵀ · xᵀ)ᵀ`, reading W in column panels of a few outputs
//! (64 for its AVX-512 kernel). From one [in, out] matrix, a panel's successive inputs lie `out`
//! floats apart, so at a decode step (a few activation rows, where reading the weights is the
//! work) every input is a jump to another page; from a band, a panel is one contiguous run.
//! Measured on this project's 2-core machine for a [576, 1536] weight: 1.5× faster at one row,
//! 1.5–2× at 4–64 rows, equal at 1,024 (BENCHMARKS, "Weights in bands").
//!
//! Every band's product is the crate's own kernel on that band's columns: the matrix-vector
//! kernel for one row (each output summed over the inputs in order, as in the whole product),
//! the panel kernel otherwise.

use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use crate::load::stored::StoredTensor;

/// Output columns per band (two AVX-512 panels); the remainder of the outputs joins the last
/// band (128–255 wide), and a matrix of fewer outputs is one band. So no band of a matrix of
/// more than 64 outputs is 64 columns or narrower: the crate takes a small-matrix path for ≤ 64 columns and ≤ 64 rows that blocks the
/// inputs differently, so a row's bits would depend on how many rows share its step. Wider
/// bands block the inputs by their count alone, as the whole product does: a row gets the same
/// bits whatever the rows beside it (from two on; one row takes the matrix-vector kernel) and
/// whatever the schedule.
pub const BAND_WIDTH: usize = 128;

/// How many bands a matrix of `outputs` columns is held in.
pub fn band_count(outputs: usize) -> usize {
    (outputs / BAND_WIDTH).max(1)
}

/// The output columns of band `band` of a matrix of `outputs` columns.
pub fn band_columns(outputs: usize, band: usize) -> Range<usize> {
    let first = band * BAND_WIDTH;
    first..if band + 1 == band_count(outputs) {
        outputs
    } else {
        first + BAND_WIDTH
    }
}

/// Activation rows up to which a product's tasks are its bands (each reads its weights once for
/// all rows); above it, each core takes a share of the rows through every band.
const ROWS_FOR_BANDS_IN_PARALLEL: usize = 64;

/// A [inputs, outputs] matrix in bands: band `b` holds the outputs `band_columns` gives it, as
/// an [inputs, width] row-major matrix, the bands one after another.
pub struct Bands {
    values: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Bands {
    /// A stored [out, in] matrix as the bands of its [in, out] transpose, in f32.
    pub fn from_stored(stored: &StoredTensor) -> Self {
        Self {
            values: stored.to_bands(),
            inputs: stored.shape[1],
            outputs: stored.shape[0],
        }
    }

    /// An [inputs, outputs] f32 tensor on the CPU (a weight converted after decoding: K/V
    /// projections in another head layout, a half-precision model's LM head widened) in bands.
    pub fn from_matrix(matrix: Tensor<2>) -> Self {
        let [inputs, outputs] = matrix.dims();
        let whole = matrix.try_into_vec_as::<f32>().expect("a weight on the CPU reads back");
        Self::from_row_major(&whole, inputs, outputs)
    }

    /// `whole`, an [inputs, outputs] row-major matrix, in bands.
    fn from_row_major(whole: &[f32], inputs: usize, outputs: usize) -> Self {
        let mut values = Vec::with_capacity(whole.len());
        for band in 0..band_count(outputs) {
            let columns = band_columns(outputs, band);
            for row in whole.chunks_exact(outputs.max(1)) {
                values.extend_from_slice(&row[columns.clone()]);
            }
        }
        Self {
            values,
            inputs,
            outputs,
        }
    }

    /// The columns of the band holding output `column`.
    fn band_holding(&self, column: usize) -> Range<usize> {
        let last = band_count(self.outputs) - 1;
        band_columns(self.outputs, (column / BAND_WIDTH).min(last))
    }

    /// `x · W` for `x` [rows, inputs] on the flex device, in f32.
    pub fn product(&self, x: Tensor<2>) -> Tensor<2> {
        let device = x.device();
        let [rows, inputs] = x.dims();
        assert_eq!(inputs, self.inputs, "activations' width against the weight's inputs");
        // On flex an activation tensor no other operation holds is handed over without a copy.
        let x = x.try_into_vec_as::<f32>().expect("activations on the CPU read back");
        let y = self.product_of_rows(&x, rows);
        Tensor::from_data(TensorData::new(y, [rows, self.outputs]), &device)
    }

    /// `x · W`, x [rows, inputs] row-major, y [rows, outputs] row-major.
    pub fn product_of_rows(&self, x: &[f32], rows: usize) -> Vec<f32> {
        assert_eq!(
            x.len(),
            rows * self.inputs,
            "activations: {rows} rows of {}",
            self.inputs
        );
        let mut y = vec![0.0f32; rows * self.outputs];
        if rows == 0 || self.outputs == 0 {
            return y;
        }
        let out = SharedOut(y.as_mut_ptr());
        let (bands, threads) = (band_count(self.outputs), rayon::current_num_threads());
        // Up to 64 rows a task is one band (its weights read once for all rows), and the rows are
        // shared out too where there are fewer bands than cores; above, a task is a share of the
        // rows through every band.
        let (share, bands_per_task) = if rows <= ROWS_FOR_BANDS_IN_PARALLEL {
            (rows_per_share(rows, threads.div_ceil(bands)), 1)
        } else {
            (rows_per_share(rows, threads), bands)
        };
        let band_groups = bands / bands_per_task;
        (0..rows.div_ceil(share) * band_groups)
            .into_par_iter()
            .for_each(|task| {
                let first_row = task / band_groups * share;
                let first_band = task % band_groups * bands_per_task;
                for band in first_band..first_band + bands_per_task {
                    let columns = band_columns(self.outputs, band);
                    // SAFETY: tasks write disjoint rows or columns of `y`.
                    unsafe { self.band_product(columns, x, first_row..rows.min(first_row + share), &out) }
                }
            });
        y
    }

    /// Rows `rows` of `x` times the band of output `columns`, into the same rows and columns of
    /// `out`.
    ///
    /// # Safety
    /// `out` points at a [x rows, outputs] buffer no other task writes these cells of.
    unsafe fn band_product(&self, columns: Range<usize>, x: &[f32], rows: Range<usize>, out: &SharedOut) {
        let (inputs, outputs, width) = (self.inputs, self.outputs, columns.len());
        let weight = &self.values[columns.start * inputs..][..inputs * width];
        let x = &x[rows.start * inputs..rows.end * inputs];
        unsafe {
            gemm::gemm(
                rows.len(),
                width,
                inputs,
                out.0.add(rows.start * outputs + columns.start),
                1,
                outputs as isize,
                false,
                x.as_ptr(),
                1,
                inputs as isize,
                weight.as_ptr(),
                1,
                width as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }

    /// Rows `ids` of Wᵀ, [ids.len(), inputs]: an embedding lookup on a table held as the bands
    /// of its transpose (the tied LM head).
    pub fn columns(&self, ids: &[usize], device: &Device) -> Tensor<2> {
        let mut values = Vec::with_capacity(ids.len() * self.inputs);
        for &id in ids {
            let columns = self.band_holding(id);
            let at = columns.start * self.inputs + id - columns.start;
            values.extend((0..self.inputs).map(|i| self.values[at + i * columns.len()]));
        }
        Tensor::from_data(TensorData::new(values, [ids.len(), self.inputs]), device)
    }
}

/// Rows per share when `rows` are split into about `shares` parts, so that no part is one row
/// (unless `rows` is 1): one row takes the matrix-vector kernel, which sums in another order.
fn rows_per_share(rows: usize, shares: usize) -> usize {
    let mut share = rows.div_ceil(shares.max(1)).max(2);
    while share < rows && rows % share == 1 {
        share += 1;
    }
    share
}

/// The output buffer, shared by the tasks that write disjoint parts of it.
struct SharedOut(*mut f32);
// SAFETY: tasks write disjoint cells (see `band_product`).
unsafe impl Sync for SharedOut {}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    /// A [inputs, outputs] matrix of varied values and its bands.
    fn matrix(inputs: usize, outputs: usize) -> (Vec<f32>, Bands) {
        let value = |i: usize| (((i * 7919 + 13) % 1009) as f32 - 504.0) / 251.0;
        let whole: Vec<f32> = (0..inputs * outputs).map(value).collect();
        let bands = Bands::from_row_major(&whole, inputs, outputs);
        (whole, bands)
    }

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// One row against bands (a wider last band included) has the bits of the whole
    /// [inputs, outputs] product, on one thread and on three: each output is the crate's
    /// matrix-vector sum over the inputs in order either way.
    #[test]
    fn one_row_through_bands_has_the_bits_of_the_whole_product() {
        let (inputs, outputs) = (576, 1600);
        let (whole, bands) = matrix(inputs, outputs);
        let x: Vec<f32> = (0..inputs).map(|i| ((i * 31 % 97) as f32 - 48.0) / 17.0).collect();
        let device = Device::flex();
        let expected = Tensor::<2>::from_data(TensorData::new(x.clone(), [1, inputs]), &device)
            .matmul(Tensor::from_data(TensorData::new(whole, [inputs, outputs]), &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let y = pool.install(|| bands.product_of_rows(&x, 1));
            assert_eq!(bits(&y), bits(&expected), "{threads} threads");
        }
    }

    /// Many rows, bands in parallel (≤ 64 rows) or rows shared out (more): each row is the exact
    /// product within f32 summation error, and has the same bits whatever the thread count and
    /// however many rows (from two) share its step. The shapes include more than 512 inputs
    /// (which the crate blocks) with a remainder of 64 outputs (SmolLM2's 576 and 192, which
    /// would take the crate's small-matrix path as bands of their own).
    #[test]
    fn rows_through_bands_are_the_product_whatever_the_schedule() {
        for (inputs, outputs) in [(96, 200), (576, 192), (600, 320)] {
            let (whole, bands) = matrix(inputs, outputs);
            let x: Vec<f32> = (0..130 * inputs)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 23.0)
                .collect();
            let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
            let three = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
            let first_two = one.install(|| bands.product_of_rows(&x[..2 * inputs], 2));
            for rows in [2, 3, 64, 65, 130] {
                let x = &x[..rows * inputs];
                let y1 = one.install(|| bands.product_of_rows(x, rows));
                let y3 = three.install(|| bands.product_of_rows(x, rows));
                let shape = format!("{inputs} × {outputs}, {rows} rows");
                assert!(bits(&y1) == bits(&y3), "{shape}: 1 and 3 threads differ");
                assert!(
                    bits(&y1[..2 * outputs]) == bits(&first_two),
                    "{shape}: differs from 2 rows"
                );
                for r in 0..rows {
                    for o in 0..outputs {
                        let terms = (0..inputs).map(|i| x[r * inputs + i] as f64 * whole[i * outputs + o] as f64);
                        let (exact, scale) = terms.fold((0.0, 0.0), |(sum, abs), t| (sum + t, abs + t.abs()));
                        let got = y1[r * outputs + o] as f64;
                        assert!(
                            (got - exact).abs() <= 1e-6 * scale.max(1.0),
                            "{shape}: row {r} output {o}: {got} against {exact}"
                        );
                    }
                }
            }
        }
    }

    /// Row shares are never one row, from two rows on (a one-row share would take the
    /// matrix-vector kernel and sum in another order than its neighbours).
    #[test]
    fn no_row_share_is_a_single_row() {
        for rows in 1..200 {
            for shares in 1..20 {
                let share = rows_per_share(rows, shares);
                let last = rows - (rows.div_ceil(share) - 1) * share;
                assert!(
                    rows == 1 || (share >= 2 && last >= 2),
                    "{rows} rows in {shares}: {share}"
                );
            }
        }
    }

    /// A lookup of rows of Wᵀ reads each band's column (300 outputs: bands of 128 and 172).
    #[test]
    fn columns_of_bands_are_the_rows_of_the_transpose() {
        let (inputs, outputs) = (40, 300);
        let (whole, bands) = matrix(inputs, outputs);
        let ids = [0, 127, 128, 255, 256, 299, 5];
        let got = bands
            .columns(&ids, &Device::flex())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expected: Vec<f32> = ids
            .iter()
            .flat_map(|&id| (0..inputs).map(move |i| (i, id)))
            .map(|(i, id)| whole[i * outputs + id])
            .collect();
        assert_eq!(bits(&got), bits(&expected));
    }
}
