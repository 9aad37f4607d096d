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

use super::gguf::try_unpermute_qk_rows;
use super::quant::{self, GgmlType};
use crate::error::{ModelError, Result};

/// Rows decoded per parallel task: large enough that the scheduling cost vanishes.
const ROWS_PER_TASK: usize = 64;

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

    /// Rows of the stored order, decoded in parallel bands. Whole rows are whole blocks: GGUF
    /// requires the contiguous dimension to be a multiple of the block size.
    fn decode_rows(&self, rows: Range<usize>) -> Vec<f32> {
        let row_len = self.row_len();
        let row_bytes = self.encoding.byte_size(row_len as u64).unwrap_or(0) as usize;
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
