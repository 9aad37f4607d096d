//! Products straight from a stored matrix (`--weights direct`): y = x · Wᵀ for the rows of a
//! decode step (one token per row), reading each stored row once per step instead of
//! materializing the whole matrix in f32 first.
//!
//! Each stored row is decoded into an f32 scratch exactly as `StoredTensor::to_f32` decodes it
//! (the same block functions), then dotted with every activation row in 64 lanes that are
//! summed in a fixed order. So a result has the same bits on every CPU (the AVX-512, AVX2 and
//! portable builds of the loop only change how many lanes one instruction holds; each lane
//! uses a fused multiply-add, `f32::mul_add`, which the portable build on an x86 CPU without
//! FMA computes in software, exactly and slowly) and whatever other rows share the step. It
//! does not have the bits of the materialized path's GEMM, which sums in another order
//! (README, "Weights, precision and memory").

use rayon::prelude::*;

use super::quant::{self, GgmlType};

/// Running sums per dot product: four AVX-512 registers (eight AVX2 ones), so that the adds
/// of one sum do not wait on each other.
const LANES: usize = 64;
/// Sums per AVX-512 register.
const VECTOR: usize = 16;
/// Stored rows decoded together, so that each tile of `x` is read once for all of them (`x`
/// outgrows L1 long before the weights of a few rows do).
const ROW_GROUP: usize = 4;
/// Columns decoded at a time: a multiple of every ggml block size (a k-quant super-block) and
/// of `LANES`, so that each row's scratch stays in L1.
const TILE: usize = 256;
/// Output rows per parallel task: whole groups.
const OUTPUT_ROWS_PER_TASK: usize = 16;
const _: () = assert!(OUTPUT_ROWS_PER_TASK.is_multiple_of(ROW_GROUP));

/// `x` [m, cols] times the transpose of the [rows, cols] matrix stored as `ty` in `bytes`:
/// y [m, rows]. Output row `n` reads stored row `source_row(n)`. `bytes` must hold exactly
/// `rows` rows of `cols` values of a decodable `ty`, and `x` whole rows of `cols`.
pub(crate) fn products(
    ty: GgmlType,
    bytes: &[u8],
    (rows, cols): (usize, usize),
    source_row: impl Fn(usize) -> usize + Sync,
    x: &[f32],
) -> Vec<f32> {
    let m = x.len() / cols.max(1);
    let mut transposed = vec![0.0f32; rows * m];
    if transposed.is_empty() {
        return transposed;
    }
    let row_bytes = bytes.len() / rows;
    let kernel = group_kernel();
    transposed
        .par_chunks_mut(OUTPUT_ROWS_PER_TASK * m)
        .enumerate()
        .for_each(|(task, out)| {
            // The running sums of a group, allocated once per task.
            let mut sums = vec![[0.0f32; LANES]; ROW_GROUP * m];
            for (g, group_out) in out.chunks_mut(ROW_GROUP * m).enumerate() {
                let first = task * OUTPUT_ROWS_PER_TASK + g * ROW_GROUP;
                // The group's stored rows, without an allocation per group of every step.
                let mut group: [&[u8]; ROW_GROUP] = [&[]; ROW_GROUP];
                let count = group_out.len() / m;
                for (k, row) in group[..count].iter_mut().enumerate() {
                    *row = &bytes[source_row(first + k) * row_bytes..][..row_bytes];
                }
                // The task's next group is read from memory while this one computes.
                let next = first + ROW_GROUP;
                if g + 1 < OUTPUT_ROWS_PER_TASK / ROW_GROUP {
                    for n in next..(next + ROW_GROUP).min(rows) {
                        prefetch(&bytes[source_row(n) * row_bytes..][..row_bytes.min(PREFETCH_BYTES)]);
                    }
                }
                kernel(ty, &group[..count], x, group_out, &mut sums[..count * m]);
            }
        });
    (0..m)
        .flat_map(|i| (0..rows).map(move |n| (i, n)))
        .map(|(i, n)| transposed[n * m + i])
        .collect()
}

/// Bytes of each stored row of the next group asked for ahead (the hardware prefetcher follows
/// a row once it is read; measured at 7B Q4_K batch 1: 12 % faster decode steps, no better at
/// 4 KiB).
const PREFETCH_BYTES: usize = 1024;

/// Asks the CPU to bring `bytes` into cache (a hint: no effect on any value).
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch reads nothing the program sees, and the address is in `bytes`.
        unsafe { std::arch::x86_64::_mm_prefetch(line.as_ptr().cast(), std::arch::x86_64::_MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// A few stored rows against every row of `x`: `out[r * m + i] = x[i] · rows[r]`, with
/// `sums` (as long as `out`) as scratch.
type GroupKernel = fn(GgmlType, &[&[u8]], &[f32], &mut [f32], &mut [[f32; LANES]]);

/// The widest build of [`group`] this CPU runs.
fn group_kernel() -> GroupKernel {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
        if fma && is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") {
            // SAFETY: the CPU has the features the function is compiled for.
            return |ty, rows, x, out, sums| unsafe { group_avx512(ty, rows, x, out, sums) };
        }
        if fma && is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return |ty, rows, x, out, sums| unsafe { group_avx2(ty, rows, x, out, sums) };
        }
    }
    group
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma,f16c")]
unsafe fn group_avx512(ty: GgmlType, rows: &[&[u8]], x: &[f32], out: &mut [f32], sums: &mut [[f32; LANES]]) {
    group(ty, rows, x, out, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group_avx2(ty: GgmlType, rows: &[&[u8]], x: &[f32], out: &mut [f32], sums: &mut [[f32; LANES]]) {
    group(ty, rows, x, out, sums)
}

/// Each (stored row, x row) pair sums in `LANES` running sums, lane j taking the products at
/// columns j, j + LANES, ... in order (a tail shorter than `LANES` goes into the first lanes), then
/// halves them pairwise: an order fixed by the row length alone, tiles or not.
#[inline(always)]
fn group(ty: GgmlType, rows: &[&[u8]], x: &[f32], out: &mut [f32], acc: &mut [[f32; LANES]]) {
    debug_assert!(rows.len() <= ROW_GROUP && acc.len() == out.len());
    let m = out.len() / rows.len();
    let cols = x.len() / m;
    let tile_bytes = ty.byte_size(TILE as u64).unwrap_or(0) as usize;
    // Chosen once for the group, not for each tile of each row.
    let decode = quant::decoder_for(ty);
    let mut weights = [[0.0f32; TILE]; ROW_GROUP];
    acc.fill([0.0; LANES]);
    for (t, first_col) in (0..cols).step_by(TILE).enumerate() {
        let width = TILE.min(cols - first_col);
        for (row, decoded) in rows.iter().zip(&mut weights) {
            let end = (t * tile_bytes + tile_bytes).min(row.len());
            decode(&row[t * tile_bytes..end], &mut decoded[..width]);
        }
        for i in 0..m {
            let x_tile = &x[i * cols + first_col..][..width];
            for (r, decoded) in weights[..rows.len()].iter().enumerate() {
                accumulate(&mut acc[r * m + i], &decoded[..width], x_tile);
            }
        }
    }
    for (y, lanes) in out.iter_mut().zip(acc) {
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for j in 0..width {
                lanes[j] += lanes[j + width];
            }
        }
        *y = lanes[0];
    }
}

#[inline(always)]
fn accumulate(acc: &mut [f32; LANES], w: &[f32], x: &[f32]) {
    // Local sums of one vector each, which the compiler keeps in registers (through `acc` it
    // loads and stores every sum at every step).
    let mut sums: [[f32; VECTOR]; LANES / VECTOR] =
        std::array::from_fn(|k| acc[k * VECTOR..][..VECTOR].try_into().unwrap());
    let ((w_body, w_tail), (x_body, x_tail)) = (w.as_chunks::<LANES>(), x.as_chunks::<LANES>());
    for (w, x) in w_body.iter().zip(x_body) {
        let (w, x) = (w.as_chunks::<VECTOR>().0, x.as_chunks::<VECTOR>().0);
        for k in 0..LANES / VECTOR {
            for j in 0..VECTOR {
                sums[k][j] = w[k][j].mul_add(x[k][j], sums[k][j]);
            }
        }
    }
    for (k, sum) in sums.iter().enumerate() {
        acc[k * VECTOR..][..VECTOR].copy_from_slice(sum);
    }
    // After the local sums are written back: indexing them by a run-time lane would keep them
    // in memory for the whole loop.
    for (j, (w, x)) in w_tail.iter().zip(x_tail).enumerate() {
        acc[j] = w.mul_add(*x, acc[j]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i + salt) * 7919 % 1009) as f32 - 504.0) / 97.0)
            .collect()
    }

    /// `n` values of `ty`: finite one-value types, random blocks otherwise.
    fn stored(ty: GgmlType, n: usize) -> Vec<u8> {
        let values = values(n, 1);
        match ty {
            GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            GgmlType::BF16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
            _ => quant::random_blocks(ty, n),
        }
    }

    /// Every decodable type, a row length that is not a multiple of 16
    /// (F32/F16/BF16), permuted rows: each product is the f64 dot of the exactly decoded row, to
    /// f32 rounding; one row's bits do not depend on the other rows of `x`; and the portable
    /// build gives the bits of the widest one this CPU has.
    #[test]
    fn products_equal_the_decoded_matrix_times_x() {
        let (rows, m) = (37, 5);
        // 576 columns: a last tile of 64 (two Q8_0 blocks).
        for (ty, cols) in [
            (GgmlType::F32, 300),
            (GgmlType::Q8_0, 576),
            (GgmlType::F16, 300),
            (GgmlType::BF16, 300),
            (GgmlType::Q4_0, 512),
            (GgmlType::Q4_1, 512),
            (GgmlType::Q5_0, 512),
            (GgmlType::Q5_1, 512),
            (GgmlType::Q8_0, 512),
            (GgmlType::Q2_K, 512),
            (GgmlType::Q3_K, 512),
            (GgmlType::Q4_K, 512),
            (GgmlType::Q5_K, 512),
            (GgmlType::Q6_K, 512),
        ] {
            let bytes = stored(ty, rows * cols);
            let decoded = quant::dequantize(ty, &bytes, rows * cols).unwrap();
            let x = values(m * cols, 7);
            let source = |n: usize| (n * 5) % rows;
            let y = products(ty, &bytes, (rows, cols), source, &x);
            for i in 0..m {
                for n in 0..rows {
                    let w = &decoded[source(n) * cols..][..cols];
                    let exact: f64 = w.iter().zip(&x[i * cols..]).map(|(&a, &b)| a as f64 * b as f64).sum();
                    let magnitude: f64 = w
                        .iter()
                        .zip(&x[i * cols..])
                        .map(|(&a, &b)| (a as f64 * b as f64).abs())
                        .sum();
                    let got = y[i * rows + n] as f64;
                    assert!(
                        (got - exact).abs() <= 1e-6 * magnitude,
                        "{} row {i} col {n}: {got} against {exact}",
                        ty.name()
                    );
                }
            }
            let alone = products(ty, &bytes, (rows, cols), source, &x[2 * cols..3 * cols]);
            assert_eq!(
                alone.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y[2 * rows..3 * rows].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{}: a row's products depend on the other rows",
                ty.name()
            );
            let row_bytes = bytes.len() / rows;
            for group_size in [ROW_GROUP - 1, ROW_GROUP] {
                let group_rows: Vec<&[u8]> = bytes.chunks_exact(row_bytes).take(group_size).collect();
                let (mut portable, mut widest) = (vec![0.0; group_size * m], vec![0.0; group_size * m]);
                let mut sums = vec![[0.0; LANES]; group_size * m];
                group(ty, &group_rows, &x, &mut portable, &mut sums);
                group_kernel()(ty, &group_rows, &x, &mut widest, &mut sums);
                assert_eq!(
                    portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    widest.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{}: the vector build sums differently",
                    ty.name()
                );
                for (r, row) in group_rows.iter().enumerate() {
                    let mut alone = vec![0.0; m];
                    group_kernel()(ty, &[row], &x, &mut alone, &mut sums[..m]);
                    assert_eq!(
                        alone.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        widest[r * m..(r + 1) * m]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect::<Vec<_>>(),
                        "{}: a weight row sums differently in a group of {group_size}",
                        ty.name()
                    );
                }
            }
        }
    }
}
