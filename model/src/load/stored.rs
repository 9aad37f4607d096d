//! A tensor kept in the form its checkpoint stores it (f32, f16, bf16 or quantized ggml blocks),
//! usually still inside the memory-mapped file, and turned into f32 only when asked.
//!
//! Every format goes through one choice of decoder, `quant::decoder_for` (behind
//! [`quant::dequantize`]): safetensors' F32/F16/BF16 are the ggml types of the same name (the
//! same bytes, the same exact widening), so a bf16 safetensors file and a BF16 GGUF tensor
//! decode identically.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, UncheckedAdvice};
use rayon::prelude::*;

use super::gguf::qk_source_rows;
use super::quant::{self, GgmlType};
use crate::bands::{BAND_WIDTH, band_columns, band_count};
use crate::error::{ModelError, Result};

/// Rows decoded per parallel task: large enough that the scheduling cost vanishes.
const ROWS_PER_TASK: usize = 64;

/// [`StoredTensor::to_columns`] gives each task this many stored columns, or one block where
/// blocks are wider (K-quants: 256; so a row's slice is whole blocks), and decodes `LINE_ROWS`
/// rows of them at a time (16 values per write: a cache line in f32).
const COLUMNS_PER_TASK: usize = 64;
const LINE_ROWS: usize = 16;

/// Where the stored bytes live.
#[derive(Clone)]
pub enum StoredBytes {
    /// A range of a memory-mapped checkpoint file: nothing is read until it is decoded.
    Mapped { map: Arc<Mmap>, range: Range<usize> },
    /// Bytes made in memory (random weights for benchmarks and tests).
    Owned(Arc<Vec<u8>>),
}

impl StoredBytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            StoredBytes::Mapped { map, range } => &map[range.clone()],
            StoredBytes::Owned(bytes) => bytes,
        }
    }
}

/// One tensor of a checkpoint, in its stored encoding, with PyTorch's shape (row-major,
/// slowest dimension first) and HF's row order once [`Self::rows`] is applied.
#[derive(Clone)]
pub struct StoredTensor {
    /// The file it came from and its name there, for messages.
    pub path: PathBuf,
    pub name: String,
    pub shape: Vec<usize>,
    pub encoding: GgmlType,
    bytes: StoredBytes,
    /// llama.cpp stores q/k rows permuted per head (fixtures README §2.5): where each row of
    /// HF's order is stored, when that is not the same row, so the rotate-half RoPE applies.
    source_rows: Option<Arc<[usize]>>,
}

impl StoredTensor {
    /// Checks that `encoding` can be decoded and that `bytes` hold exactly `shape`'s elements of
    /// it, so decoding can never fail later, in the middle of a forward pass.
    pub fn new(path: &Path, name: &str, shape: Vec<usize>, encoding: GgmlType, bytes: StoredBytes) -> Result<Self> {
        if !encoding.can_dequantize() {
            return Err(ModelError::unsupported(
                path,
                format!(
                    "tensor `{name}` is stored as {} (ggml type id {}), which this build cannot decode",
                    encoding.name(),
                    encoding.id()
                ),
            ));
        }
        let elements = shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
        let expected = elements.and_then(|n| encoding.byte_size(n));
        let found = bytes.as_slice().len() as u64;
        if expected != Some(found) {
            return Err(ModelError::format(
                path,
                format!(
                    "tensor `{name}`: shape {shape:?} of {} needs {} bytes, the file holds {found}",
                    encoding.name(),
                    expected.map_or("an impossible number of".to_string(), |b| b.to_string())
                ),
            ));
        }
        // Rows are decoded one at a time (`to_f32`, `apply_to_rows`): each must be whole blocks
        // (GGUF requires it of the contiguous dimension; a file that breaks it is refused here).
        let row_len: usize = if shape.len() < 2 {
            shape.iter().product()
        } else {
            shape[1..].iter().product()
        };
        let block = encoding.block_size().unwrap_or(1) as usize;
        if !row_len.is_multiple_of(block) {
            return Err(ModelError::format(
                path,
                format!(
                    "tensor `{name}`: rows of {row_len} values are not whole {} blocks of {block}",
                    encoding.name()
                ),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            name: name.to_string(),
            shape,
            encoding,
            bytes,
            source_rows: None,
        })
    }

    /// `values` encoded as `ty` in memory (tests of the decoders).
    #[cfg(test)]
    pub(crate) fn encoded(ty: GgmlType, shape: Vec<usize>, values: &[f32]) -> Self {
        let bytes = super::quantize::quantize(ty, values).expect("a writable type and whole blocks");
        Self::new(
            Path::new("test.gguf"),
            "w",
            shape,
            ty,
            StoredBytes::Owned(Arc::new(bytes)),
        )
        .unwrap()
    }

    /// f32 values made in memory (random weights).
    pub fn from_f32(path: &Path, name: &str, shape: Vec<usize>, values: &[f32]) -> Result<Self> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Self::new(path, name, shape, GgmlType::F32, StoredBytes::Owned(Arc::new(bytes)))
    }

    /// Undo llama.cpp's q/k row permutation for `heads` heads when decoding.
    pub fn unpermuting_qk_rows(mut self, heads: usize) -> Result<Self> {
        let rows = self.shape.first().copied().unwrap_or(0);
        let wrong_shape = || {
            ModelError::format(
                &self.path,
                format!(
                    "tensor `{}` has shape {:?}: its rows are not {heads} heads (the file's head count) of rotary pairs",
                    self.name, self.shape
                ),
            )
        };
        if self.shape.len() != 2 || heads == 0 || !rows.is_multiple_of(2 * heads) {
            return Err(wrong_shape());
        }
        let source = qk_source_rows(rows, self.shape[1], heads).map_err(|_| wrong_shape())?;
        self.source_rows = Some(source.into());
        Ok(self)
    }

    /// Bytes as stored.
    pub fn stored_bytes(&self) -> usize {
        self.bytes.as_slice().len()
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Every value, in f32 and HF's row order, bit-identical to the checkpoint's own widening
    /// (gguf-py's for ggml types): each row decoded straight from the stored row it comes from
    /// (llama.cpp's q/k order undone on the way), a band of rows per task on all cores.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0.0f32; self.num_elements()];
        let decode = quant::decoder_for(self.encoding);
        self.rows_in_parallel(&mut out, decode);
        out
    }

    /// [`Self::to_f32`] transposed, the [cols, rows] matrix contiguous, each value converted as
    /// it is written (to f16 or bf16 for a half-precision model: one pass, one buffer): how a weight
    /// is kept in half precision or off flex (f32 on flex: [`Self::to_bands`]), so that the matrix
    /// product reads it in place. Read through a transposed view,
    /// the product copies the weight into panels at every call: at a decode step of a few rows
    /// that copy was the step's largest cost. Decoded straight into the one buffer it returns:
    /// a band of `COLUMNS_PER_TASK` stored columns per task, `LINE_ROWS` rows at a time through
    /// a scratch that stays in L1.
    pub fn to_columns<T: Copy + Default + Send>(&self, convert: impl Fn(f32) -> T + Sync) -> Vec<T> {
        let (rows, cols) = (self.row_count(), self.row_len());
        let mut out = vec![T::default(); rows * cols];
        if out.is_empty() {
            return out;
        }
        let (bytes, row_bytes) = (self.bytes.as_slice(), self.row_bytes());
        let decode = quant::decoder_for(self.encoding);
        // Whole blocks: `cols` is a multiple of the block size (checked at open), and so is
        // `band_width` (every block size divides or is a multiple of 64).
        let band_width = COLUMNS_PER_TASK.max(self.encoding.block_size().unwrap_or(1) as usize);
        out.par_chunks_mut(band_width * rows)
            .enumerate()
            .for_each(|(band, out_rows)| {
                let first_col = band * band_width;
                let width = out_rows.len() / rows;
                let in_row = self.byte_offset(first_col)..self.byte_offset(first_col + width);
                let mut scratch = vec![0.0f32; LINE_ROWS * width];
                for first_row in (0..rows).step_by(LINE_ROWS) {
                    let line = (rows - first_row).min(LINE_ROWS);
                    for (k, decoded) in scratch.chunks_exact_mut(width).take(line).enumerate() {
                        let from = self.source_row(first_row + k) * row_bytes;
                        decode(&bytes[from..][in_row.clone()], decoded);
                    }
                    for (j, out_row) in out_rows.chunks_exact_mut(rows).enumerate() {
                        for (k, value) in out_row[first_row..first_row + line].iter_mut().enumerate() {
                            *value = convert(scratch[k * width + j]);
                        }
                    }
                }
            });
        out
    }

    /// The [cols, rows] transpose of [`Self::to_f32`] in f32, held in the bands of
    /// `bands::band_columns` (`bands::Bands`): how a weight is kept for the CPU in f32.
    /// Each task decodes a band's stored rows whole, `LINE_ROWS` at a time through a scratch,
    /// and writes them as the band's columns (16 values per write: a cache line).
    pub fn to_bands(&self) -> Vec<f32> {
        let (rows, cols) = (self.row_count(), self.row_len());
        let mut out = vec![0.0f32; rows * cols];
        if out.is_empty() {
            return out;
        }
        let (bytes, row_bytes) = (self.bytes.as_slice(), self.row_bytes());
        let decode = quant::decoder_for(self.encoding);
        let mut bands = Vec::new();
        let mut rest = out.as_mut_slice();
        for band in 0..band_count(rows) {
            let (out_band, tail) = rest.split_at_mut(band_columns(rows, band).len() * cols);
            bands.push((band * BAND_WIDTH, out_band));
            rest = tail;
        }
        bands.into_par_iter().for_each(|(first_row, out_band)| {
            let width = out_band.len() / cols;
            let mut scratch = vec![0.0f32; LINE_ROWS * cols];
            for line_start in (0..width).step_by(LINE_ROWS) {
                let line = (width - line_start).min(LINE_ROWS);
                for (k, decoded) in scratch.chunks_exact_mut(cols).take(line).enumerate() {
                    let from = self.source_row(first_row + line_start + k) * row_bytes;
                    decode(&bytes[from..][..row_bytes], decoded);
                }
                for (i, out_row) in out_band.chunks_exact_mut(width).enumerate() {
                    for (k, value) in out_row[line_start..line_start + line].iter_mut().enumerate() {
                        *value = scratch[k * cols + i];
                    }
                }
            }
        });
        out
    }

    /// `decode(stored row, output row)` for every row of HF's order, in bands of
    /// `ROWS_PER_TASK` rows on all cores.
    fn rows_in_parallel(&self, out: &mut [f32], decode: impl Fn(&[u8], &mut [f32]) + Sync) {
        let (cols, row_bytes) = (self.row_len(), self.row_bytes());
        if out.is_empty() || cols == 0 {
            return;
        }
        let bytes = self.bytes.as_slice();
        out.par_chunks_mut(ROWS_PER_TASK * cols)
            .enumerate()
            .for_each(|(band, rows)| {
                for (k, row) in rows.chunks_exact_mut(cols).enumerate() {
                    let from = self.source_row(band * ROWS_PER_TASK + k);
                    decode(&bytes[from * row_bytes..][..row_bytes], row);
                }
            });
    }

    /// Where row `n` of HF's order is stored.
    fn source_row(&self, n: usize) -> usize {
        self.source_rows.as_ref().map_or(n, |source| source[n])
    }

    /// `x` [m, cols] times this [rows, cols] matrix transposed, y [m, rows] (a linear layer on
    /// m rows of activations), read straight from the stored bytes: each weight decoded exactly
    /// as [`Self::to_f32`] decodes it, summed in `direct`'s fixed order. `x` must be whole rows.
    pub fn apply_to_rows(&self, x: &[f32]) -> Vec<f32> {
        let shape = (self.row_count(), self.row_len());
        super::direct::products(self.encoding, self.bytes.as_slice(), shape, |n| self.source_row(n), x)
    }

    /// The given rows of a 2-D tensor, in f32 (an embedding lookup without decoding the table).
    /// Ids must be below the row count (the decoder checks token ids first).
    pub fn gather_rows_f32(&self, ids: &[usize]) -> Vec<f32> {
        let (cols, row_bytes) = (self.row_len(), self.row_bytes());
        let mut out = vec![0.0f32; ids.len() * cols];
        let decode = quant::decoder_for(self.encoding);
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(cols.max(1))) {
            decode(&self.bytes.as_slice()[id * row_bytes..][..row_bytes], row);
        }
        out
    }

    /// Drops the pages of this tensor from the process's memory (they stay in the page cache
    /// and come back from the file if touched again): after converting a tensor once at load,
    /// its stored copy should not stay counted against the process.
    pub fn release_pages(&self) {
        if let StoredBytes::Mapped { map, range } = &self.bytes {
            // SAFETY: the map is a read-only file mapping, so dropped pages are re-read from the
            // file on the next access: no data can be lost or zeroed. A failure only means the
            // pages stay resident.
            let _ = unsafe { map.unchecked_advise_range(UncheckedAdvice::DontNeed, range.start, range.len()) };
        }
    }

    /// A 2-D or higher tensor is rows of its trailing dimensions; a vector is one row.
    fn row_count(&self) -> usize {
        if self.shape.len() < 2 { 1 } else { self.shape[0] }
    }

    fn row_len(&self) -> usize {
        if self.shape.len() < 2 {
            self.num_elements()
        } else {
            self.shape[1..].iter().product()
        }
    }

    /// Bytes of one stored row: whole blocks (GGUF requires the contiguous dimension to be a
    /// multiple of the block size, and `new` checked the total).
    fn row_bytes(&self) -> usize {
        self.encoding.byte_size(self.row_len() as u64).unwrap_or(0) as usize
    }

    /// Where column `col` starts within a stored row (`col` a multiple of the block size).
    fn byte_offset(&self, col: usize) -> usize {
        let bytes = self.encoding.byte_size(col as u64);
        bytes.expect("a column at a block boundary of a decodable type") as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::gguf::try_unpermute_qk_rows;

    fn stored(ty: GgmlType, rows: usize, cols: usize) -> StoredTensor {
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 97.0)
            .collect();
        StoredTensor::encoded(ty, vec![rows, cols], &values)
    }

    fn bits<T: Copy>(values: &[T], to_bits: impl Fn(T) -> u32) -> Vec<u32> {
        values.iter().map(|&v| to_bits(v)).collect()
    }

    /// Rows decoded from the stored row they come from equal the whole tensor decoded at once
    /// and then un-permuted (the q/k rows llama.cpp stores per head), bands of 64 rows or not;
    /// converted as they are written, they equal the f32 rows converted.
    #[test]
    fn rows_decoded_from_their_stored_rows_equal_the_decoded_tensor_unpermuted() {
        for (ty, cols) in [
            (GgmlType::F32, 40),
            (GgmlType::F16, 300),
            (GgmlType::BF16, 600),
            (GgmlType::Q8_0, 576),
            (GgmlType::Q4_K, 768),
        ] {
            for rows in [1, 17, 132] {
                let tensor = stored(ty, rows, cols);
                let whole = quant::dequantize(ty, tensor.bytes.as_slice(), rows * cols).unwrap();
                assert_eq!(
                    bits(&tensor.to_f32(), f32::to_bits),
                    bits(&whole, f32::to_bits),
                    "{} {rows}x{cols}",
                    ty.name()
                );
            }
            let permuted = stored(ty, 132, cols).unpermuting_qk_rows(3).unwrap();
            let whole = quant::dequantize(ty, permuted.bytes.as_slice(), 132 * cols).unwrap();
            let expected = try_unpermute_qk_rows(&whole, 132, cols, 3).unwrap();
            let decoded = permuted.to_f32();
            assert_eq!(
                bits(&decoded, f32::to_bits),
                bits(&expected, f32::to_bits),
                "{} un-permuted",
                ty.name()
            );
            let halves = permuted.to_columns(half::f16::from_f32);
            let cast: Vec<half::f16> = (0..cols * 132)
                .map(|i| half::f16::from_f32(decoded[(i % 132) * cols + i / 132]))
                .collect();
            assert_eq!(
                bits(&halves, |v| v.to_bits() as u32),
                bits(&cast, |v| v.to_bits() as u32),
                "{} as f16",
                ty.name()
            );
        }
    }

    /// Rows that are not whole blocks are refused at open, naming the tensor, even when the
    /// total is (rows are decoded one at a time).
    #[test]
    fn rows_that_are_not_whole_blocks_are_refused() {
        let bytes = StoredBytes::Owned(Arc::new(vec![0u8; 3 * 34]));
        let err = StoredTensor::new(Path::new("m.gguf"), "w", vec![2, 48], GgmlType::Q8_0, bytes)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("m.gguf") && err.contains("`w`") && err.contains("not whole Q8_0 blocks"),
            "{err}"
        );
    }

    /// For each case and its twin with GGUF's permuted q/k rows: `held(tensor)` has each value
    /// of `to_f32` (its bits) at `place(rows, cols, r, c)`.
    fn each_value_in_place(
        cases: &[(GgmlType, usize, usize)],
        held: impl Fn(&StoredTensor) -> Vec<f32>,
        place: impl Fn(usize, usize, usize, usize) -> usize,
    ) {
        for &(ty, rows, cols) in cases {
            let tensor = stored(ty, rows, cols);
            let permuted = stored(ty, (rows / 4).max(1) * 4, cols).unpermuting_qk_rows(2).unwrap();
            for tensor in [tensor, permuted] {
                let rows = tensor.shape[0];
                let decoded = bits(&tensor.to_f32(), f32::to_bits);
                let held = bits(&held(&tensor), f32::to_bits);
                for r in 0..rows {
                    for c in 0..cols {
                        assert_eq!(
                            held[place(rows, cols, r, c)],
                            decoded[r * cols + c],
                            "{} {rows} × {cols} at ({r}, {c})",
                            ty.name()
                        );
                    }
                }
            }
        }
    }

    /// Last bands narrower than `COLUMNS_PER_TASK` (300 = 4 × 64 + 44 columns; Q8_0's 96 = 64 +
    /// 32), row counts that are not whole lines, K-quant super-blocks (one block per band): each
    /// value at its transposed place.
    #[test]
    fn columns_hold_the_decoded_rows_transposed() {
        let cases = [
            (GgmlType::F32, 37, 300),
            (GgmlType::BF16, 16, 576),
            (GgmlType::Q8_0, 33, 576),
            (GgmlType::F16, 1, 64),
            (GgmlType::Q8_0, 7, 96),
            (GgmlType::Q4_K, 20, 512),
            (GgmlType::Q4_K, 3, 768),
        ];
        each_value_in_place(&cases, |t| t.to_columns(|v| v), |rows, _, r, c| c * rows + r);
    }

    /// Bands of `BAND_WIDTH` stored rows, the remainder in the last (300 = 128 + 172; 260 = 128 +
    /// 132; 20 and 37 rows in one band, not whole lines of 16), each band the [cols, width]
    /// transpose of its rows: each value at its place.
    #[test]
    fn bands_hold_the_decoded_rows_transposed() {
        let cases = [
            (GgmlType::F32, 300, 64),
            (GgmlType::BF16, 37, 576),
            (GgmlType::Q8_0, 260, 96),
            (GgmlType::Q4_K, 20, 512),
            (GgmlType::F16, 1, 64),
        ];
        each_value_in_place(&cases, StoredTensor::to_bands, |rows, cols, r, c| {
            let band = band_columns(rows, (r / BAND_WIDTH).min(band_count(rows) - 1));
            band.start * cols + c * band.len() + r - band.start
        });
    }
}
