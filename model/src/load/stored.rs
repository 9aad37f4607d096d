//! A tensor kept in the form its checkpoint stores it (f32, f16, bf16 or quantized ggml blocks),
//! usually still inside the memory-mapped file, and turned into f32 only when asked.
//!
//! Every format goes through the one dequantization entry point, [`quant::dequantize`]:
//! safetensors' F32/F16/BF16 are the ggml types of the same name (the same bytes, the same
//! exact widening), so a bf16 safetensors file and a BF16 GGUF tensor decode identically.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Mmap, UncheckedAdvice};
use rayon::prelude::*;

use super::gguf::{qk_source_rows, try_unpermute_qk_rows};
use super::quant::{self, GgmlType};
use crate::error::{ModelError, Result};

/// Rows decoded per parallel task: large enough that the scheduling cost vanishes.
const ROWS_PER_TASK: usize = 64;

/// [`StoredTensor::to_f32_transposed`] gives each task this many stored columns (a multiple of
/// every ggml block size, so a row's slice of them is whole blocks) and walks the rows
/// `LINE_ROWS` at a time, so that each write to the transposed buffer fills one cache line.
const TRANSPOSE_COLS: usize = 256;
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
    /// llama.cpp stores q/k rows permuted per head (fixtures README §2.5); `Some(heads)` undoes
    /// that on decoding, so the rotate-half RoPE applies.
    unpermute_heads: Option<usize>,
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
        Ok(Self {
            path: path.to_path_buf(),
            name: name.to_string(),
            shape,
            encoding,
            bytes,
            unpermute_heads: None,
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
        if self.shape.len() != 2 || heads == 0 || !rows.is_multiple_of(2 * heads) {
            return Err(ModelError::Shape {
                path: self.path.clone(),
                name: self.name.clone(),
                found: self.shape.clone(),
                expected: vec![heads * 2, 0],
            });
        }
        self.unpermute_heads = Some(heads);
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
    /// (gguf-py's for ggml types). Decoded on all cores, a band of rows per task.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut values = self.decode_rows(0..self.row_count());
        if let (Some(heads), &[rows, cols]) = (self.unpermute_heads, self.shape.as_slice()) {
            // `unpermuting_qk_rows` checked the head count against the shape.
            values = try_unpermute_qk_rows(&values, rows, cols, heads).unwrap_or(values);
        }
        values
    }

    /// A 2-D tensor [rows, cols] as f32 [cols, rows] in HF's row order (a PyTorch [out, in]
    /// linear weight as the [in, out] matrix the model multiplies by): bit-identical to
    /// transposing [`Self::to_f32`], but decoded straight into the one buffer it returns.
    pub fn to_f32_transposed(&self) -> Vec<f32> {
        self.to_transposed(|value| value)
    }

    /// [`Self::to_f32_transposed`] with each f32 value converted as it is written (to f16 or
    /// bf16 for a half-precision model: one pass and one buffer, no f32 copy to cast). A band of
    /// `TRANSPOSE_COLS` stored columns per task, decoded through a scratch that stays in L1.
    pub fn to_transposed<T: Copy + Send>(&self, convert: impl Fn(f32) -> T + Sync) -> Vec<T> {
        let (rows, cols) = (self.row_count(), self.row_len());
        let mut out: Vec<T> = Vec::with_capacity(rows * cols);
        if rows * cols == 0 {
            return out;
        }
        let permuted: Option<Vec<usize>> = self.unpermute_heads.map(|heads| {
            qk_source_rows(rows, cols, heads).expect("unpermuting_qk_rows checked the heads against the shape")
        });
        let source_row = |row: usize| permuted.as_ref().map_or(row, |rows| rows[row]);
        let (row_bytes, block) = (self.row_bytes(), self.encoding.block_size().unwrap_or(1) as usize);
        let bytes = self.bytes.as_slice();
        out.spare_capacity_mut()[..rows * cols]
            .par_chunks_mut(TRANSPOSE_COLS * rows)
            .enumerate()
            .for_each(|(band, dst)| {
                let first_col = band * TRANSPOSE_COLS;
                let width = dst.len() / rows;
                let byte_range = self.encoding.byte_size(first_col as u64).unwrap_or(0) as usize
                    ..self.encoding.byte_size((first_col + width) as u64).unwrap_or(0) as usize;
                debug_assert!(first_col.is_multiple_of(block) && width.is_multiple_of(block));
                let mut scratch = [0.0f32; LINE_ROWS * TRANSPOSE_COLS];
                for first_row in (0..rows).step_by(LINE_ROWS) {
                    let line = (rows - first_row).min(LINE_ROWS);
                    for k in 0..line {
                        let src = &bytes[source_row(first_row + k) * row_bytes..][byte_range.clone()];
                        quant::dequantize_into(self.encoding, src, &mut scratch[k * width..(k + 1) * width])
                            .expect("StoredTensor::new checked the encoding");
                    }
                    for j in 0..width {
                        let out_row = &mut dst[j * rows + first_row..][..line];
                        for (k, value) in out_row.iter_mut().enumerate() {
                            value.write(convert(scratch[k * width + j]));
                        }
                    }
                }
            });
        // SAFETY: the bands cover all `cols` output rows and each band's lines all `rows`
        // columns, so every one of the `rows * cols` slots was written above.
        unsafe { out.set_len(rows * cols) };
        out
    }

    /// `x` [m, cols] times this [rows, cols] matrix transposed, y [m, rows] (a linear layer on
    /// m rows of activations), read straight from the stored bytes: each weight decoded exactly
    /// as [`Self::to_f32`] decodes it, summed in `direct`'s fixed order. `x` must be whole rows.
    pub fn apply_to_rows(&self, x: &[f32]) -> Vec<f32> {
        let (rows, cols) = (self.row_count(), self.row_len());
        let permuted: Option<Vec<usize>> = self.unpermute_heads.map(|heads| {
            qk_source_rows(rows, cols, heads).expect("unpermuting_qk_rows checked the heads against the shape")
        });
        let source_row = |row: usize| permuted.as_ref().map_or(row, |rows| rows[row]);
        super::direct::products(self.encoding, self.bytes.as_slice(), (rows, cols), source_row, x)
    }

    /// The given rows of a 2-D tensor, in f32 (an embedding lookup without decoding the table).
    /// Ids must be below the row count (the decoder checks token ids first).
    pub fn gather_rows_f32(&self, ids: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(ids.len() * self.row_len());
        for &id in ids {
            out.extend(self.decode_rows(id..id + 1));
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

    /// Rows of the stored order, decoded in parallel bands. Whole rows are whole blocks: GGUF
    /// requires the contiguous dimension to be a multiple of the block size.
    fn decode_rows(&self, rows: Range<usize>) -> Vec<f32> {
        let (row_len, row_bytes) = (self.row_len(), self.row_bytes());
        let bytes = &self.bytes.as_slice()[rows.start * row_bytes..rows.end * row_bytes];
        let mut out = vec![0.0f32; rows.len() * row_len];
        if row_len == 0 {
            return out;
        }
        out.par_chunks_mut(ROWS_PER_TASK * row_len)
            .zip(bytes.par_chunks(ROWS_PER_TASK * row_bytes))
            .for_each(|(dst, src)| {
                // `new` checked the encoding and the byte count; were that ever wrong, stopping
                // beats scoring with a band of zeros.
                quant::dequantize_into(self.encoding, src, dst).expect("StoredTensor::new checked the encoding");
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(ty: GgmlType, rows: usize, cols: usize) -> StoredTensor {
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919 % 1009) as f32 - 504.0) / 97.0)
            .collect();
        StoredTensor::encoded(ty, vec![rows, cols], &values)
    }

    fn bits_of_transpose(values: &[f32], rows: usize, cols: usize) -> Vec<u32> {
        (0..cols)
            .flat_map(|c| (0..rows).map(move |r| values[r * cols + c].to_bits()))
            .collect()
    }

    /// Every band edge: rows not a multiple of the 16-row line, columns not a multiple of the
    /// 256-column band, one-value and block types, with and without the q/k row un-permutation.
    #[test]
    fn decoding_into_the_transposed_buffer_equals_transposing_the_decoded_rows() {
        let cases = [
            (GgmlType::F32, 40),
            (GgmlType::F16, 300),
            (GgmlType::BF16, 600),
            (GgmlType::Q8_0, 576),
            (GgmlType::Q4_K, 256),
            (GgmlType::Q4_K, 768),
        ];
        for (ty, cols) in cases {
            for rows in [1, 17, 48] {
                let tensor = stored(ty, rows, cols);
                let fused: Vec<u32> = tensor.to_f32_transposed().iter().map(|v| v.to_bits()).collect();
                assert_eq!(
                    fused,
                    bits_of_transpose(&tensor.to_f32(), rows, cols),
                    "{} {rows}x{cols}",
                    ty.name()
                );
            }
            let permuted = stored(ty, 48, cols).unpermuting_qk_rows(3).unwrap();
            let fused: Vec<u32> = permuted.to_f32_transposed().iter().map(|v| v.to_bits()).collect();
            assert_eq!(
                fused,
                bits_of_transpose(&permuted.to_f32(), 48, cols),
                "{} un-permuted",
                ty.name()
            );
        }
    }
}
