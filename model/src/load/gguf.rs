//! GGUF (v2 and v3, little-endian) reader: metadata, tensor directory and dequantized tensors,
//! plus the llama GGUF -> HuggingFace naming and q/k row order.
//!
//! Layout: magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the metadata
//! key/value pairs, the tensor-info records, padding to `general.alignment`, then the tensor data.
//! `open` checks the whole directory against the file size before anything is returned, so
//! later reads only slice memory that is known to be there.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use super::quant::{self, GgmlType};
use super::stored::{StoredBytes, StoredTensor};
use crate::error::{ModelError, Result};

const MAGIC: &[u8; 4] = b"GGUF";
/// The per-pair RoPE frequency factors llama.cpp's converter writes for Llama 3.1 scaling:
/// read into the config (`RopeScaling::FreqFactors`), not a weight.
pub const ROPE_FREQS: &str = "rope_freqs.weight";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most 4 dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal; a bound keeps a crafted file from exhausting the stack.
const MAX_ARRAY_DEPTH: usize = 8;
/// Never reserve more than this many elements up front on the word of a header.
const MAX_PREALLOC: usize = 1 << 16;

/// One metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value type's id in the file format (what the parser reads before each value).
    pub fn type_id(&self) -> u32 {
        match self {
            GgufValue::U8(_) => 0,
            GgufValue::I8(_) => 1,
            GgufValue::U16(_) => 2,
            GgufValue::I16(_) => 3,
            GgufValue::U32(_) => 4,
            GgufValue::I32(_) => 5,
            GgufValue::F32(_) => 6,
            GgufValue::Bool(_) => 7,
            GgufValue::String(_) => 8,
            GgufValue::Array(_) => 9,
            GgufValue::U64(_) => 10,
            GgufValue::I64(_) => 11,
            GgufValue::F64(_) => 12,
        }
    }

    /// Any integer that is non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            _ => self.as_i64().and_then(|v| u64::try_from(v).ok()),
        }
    }

    /// Any integer that fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::I8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::U64(v) => i64::try_from(v).ok(),
            Self::I64(v) => Some(v),
            _ => None,
        }
    }

    /// Floats (an f32 is widened exactly) and integers.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            Self::U64(v) => Some(v as f64),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }
}

/// One tensor-info record.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufTensorInfo {
    pub name: String,
    /// Dimensions in GGUF order: the contiguous dimension first.
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset of the data, relative to the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Element count; `None` on overflow.
    pub fn n_elements(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// torch's shape: `ne` reversed (row-major, slowest dimension first).
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An open, validated, memory-mapped GGUF file.
#[derive(Debug)]
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<GgufTensorInfo>,
    mmap: Arc<Mmap>,
    /// File offset of the data section.
    data_start: u64,
    alignment: u64,
}

impl GgufFile {
    /// Memory-maps `path` and validates the header, every metadata value and every tensor's
    /// type, shape, alignment and extent.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
        if len == 0 {
            return Err(ModelError::format(path, "file is empty, not a GGUF file"));
        }
        // SAFETY: the map is read-only. As with every mmap-based loader, the file must not be
        // truncated or rewritten by another process while it is open.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(path, e))?;
        let header = Parser::new(path, &mmap).parse()?;
        let gguf = Self {
            path: path.to_path_buf(),
            version: header.version,
            metadata: header.metadata,
            tensors: header.tensors,
            mmap: Arc::new(mmap),
            data_start: header.data_start,
            alignment: header.alignment,
        };
        gguf.check_tensors()?;
        Ok(gguf)
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// `general.alignment`, or the default 32.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset where the tensor data section starts.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// A tensor's raw (still quantized) bytes.
    pub fn tensor_bytes(&self, name: &str) -> Result<(&GgufTensorInfo, &[u8])> {
        let info = self.tensor_info(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        // `tensors` is public and may have been edited since open, so check again.
        let range = self.tensor_range(info)?;
        Ok((info, &self.mmap[range]))
    }

    /// The file's size in bytes.
    pub fn file_bytes(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// A tensor still quantized and mapped, with torch's shape (ne reversed).
    pub fn stored(&self, name: &str) -> Result<StoredTensor> {
        let (info, _) = self.tensor_bytes(name)?;
        let range = self.tensor_range(info)?;
        let bytes = StoredBytes::Mapped {
            map: Arc::clone(&self.mmap),
            range,
        };
        StoredTensor::new(&self.path, name, info.shape(), info.ggml_type, bytes)
    }

    /// Dequantized values in row-major order with torch's shape (ne reversed), e.g. attn_k
    /// ne=[576,192] -> shape [192,576].
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let (info, bytes) = self.tensor_bytes(name)?;
        if !info.ggml_type.can_dequantize() {
            return Err(ModelError::unsupported(
                &self.path,
                format!(
                    "tensor `{name}` has ggml type {} (id {}); only {} can be dequantized",
                    info.ggml_type.name(),
                    info.ggml_type.id(),
                    GgmlType::dequantizable_names()
                ),
            ));
        }
        // `tensor_bytes` checked the count; this only fails where usize is narrower than u64.
        let n = usize::try_from(info.n_elements().unwrap_or(0))
            .map_err(|_| self.err(format!("tensor `{name}` has too many elements for this machine")))?;
        let values = quant::dequantize(info.ggml_type, bytes, n)
            .map_err(|m| ModelError::format(&self.path, format!("tensor `{name}`: {m}")))?;
        Ok((info.shape(), values))
    }

    /// [`Self::tensor_f32`] followed by [`unpermute_qk_rows`] on a 2-D tensor (for `attn_q`
    /// with the head count, `attn_k` with the kv-head count), returning an error rather than
    /// panicking when `n_head` does not fit the tensor.
    pub fn tensor_f32_unpermuted(&self, name: &str, n_head: usize) -> Result<(Vec<usize>, Vec<f32>)> {
        let (shape, data) = self.tensor_f32(name)?;
        let &[rows, cols] = shape.as_slice() else {
            return Err(ModelError::format(
                &self.path,
                format!("tensor `{name}` has shape {shape:?}; q/k un-permutation needs 2-D"),
            ));
        };
        let data = try_unpermute_qk_rows(&data, rows, cols, n_head)
            .map_err(|m| ModelError::format(&self.path, format!("tensor `{name}`: {m}")))?;
        Ok((shape, data))
    }

    fn check_tensors(&self) -> Result<()> {
        let mut seen = HashSet::new();
        let mut sizes = Vec::with_capacity(self.tensors.len());
        for info in &self.tensors {
            if !seen.insert(info.name.as_str()) {
                return Err(self.err(format!("tensor `{}` is listed twice", info.name)));
            }
            sizes.push(self.tensor_range(info)?.len() as u64);
        }
        // llama.cpp's rule (gguf.cpp): each tensor's data starts where the one before it ends,
        // padded to the alignment. A file that breaks it has tensors sharing bytes, or a type
        // that does not match its data (a relabelled tensor): either would be read as garbage.
        let mut expected = 0u64;
        for (info, size) in self.tensors.iter().zip(sizes) {
            if info.offset != expected {
                return Err(self.err(format!(
                    "tensor `{}`: data offset {} where the tensors before it end at {expected} \
                     (each tensor's data must follow the one before it, as llama.cpp requires)",
                    info.name, info.offset
                )));
            }
            expected = (expected + size).div_ceil(self.alignment) * self.alignment;
        }
        Ok(())
    }

    /// The byte range of a tensor's data in the file, after checking its type, shape,
    /// alignment and that it lies inside the file.
    fn tensor_range(&self, info: &GgufTensorInfo) -> Result<std::ops::Range<usize>> {
        let name = &info.name;
        let ty = info.ggml_type;
        let (Some(block), Some(_)) = (ty.block_size(), ty.type_size()) else {
            return Err(ModelError::unsupported(
                &self.path,
                format!("tensor `{name}` has unknown ggml type id {}", ty.id()),
            ));
        };
        if info.ne.len() > MAX_DIMS as usize {
            return Err(self.err(format!(
                "tensor `{name}` has {} dimensions (at most {MAX_DIMS})",
                info.ne.len()
            )));
        }
        let n = info
            .n_elements()
            .ok_or_else(|| self.err(format!("tensor `{name}`: element count of {:?} overflows", info.ne)))?;
        // ggml stores whole blocks per row, so the contiguous dimension must be a multiple.
        let ne0 = info.ne.first().copied().unwrap_or(1);
        if !ne0.is_multiple_of(block) {
            return Err(self.err(format!(
                "tensor `{name}`: ne[0] = {ne0} is not a multiple of the {} block size {block}",
                ty.name()
            )));
        }
        let size = ty.byte_size(n).ok_or_else(|| {
            self.err(format!(
                "tensor `{name}`: byte size of {n} {} elements overflows",
                ty.name()
            ))
        })?;
        if !info.offset.is_multiple_of(self.alignment) {
            return Err(self.err(format!(
                "tensor `{name}`: data offset {} is not a multiple of the alignment {}",
                info.offset, self.alignment
            )));
        }
        let file_len = self.mmap.len() as u64;
        let start = self.data_start.checked_add(info.offset);
        let end = start.and_then(|s| s.checked_add(size));
        match (start, end) {
            (Some(start), Some(end)) if end <= file_len => Ok(start as usize..end as usize),
            _ => Err(self.err(format!(
                "tensor `{name}`: data ({size} bytes at data offset {}, file offset {}) runs \
                 past the end of the file ({file_len} bytes)",
                info.offset,
                self.data_start as u128 + info.offset as u128
            ))),
        }
    }

    fn err(&self, message: String) -> ModelError {
        ModelError::format(&self.path, message)
    }
}

/// What the header parse yields, before the tensor extents are checked.
struct Header {
    version: u32,
    metadata: BTreeMap<String, GgufValue>,
    tensors: Vec<GgufTensorInfo>,
    data_start: u64,
    alignment: u64,
}

/// A bounds-checked little-endian cursor over the mapped file.
struct Parser<'a> {
    path: &'a Path,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(path: &'a Path, buf: &'a [u8]) -> Self {
        Self { path, buf, pos: 0 }
    }

    fn err(&self, message: String) -> ModelError {
        ModelError::format(self.path, message)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "file is truncated: {what} at byte {} needs {n} bytes but the file has {} bytes",
                self.pos,
                self.buf.len()
            )));
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A u64 count that promises at least `min_item_bytes` bytes per item, checked against the
    /// rest of the file before anyone allocates for it.
    fn count(&mut self, min_item_bytes: usize, what: &str) -> Result<usize> {
        let at = self.pos;
        let n = self.u64(what)?;
        let fits = (self.remaining() / min_item_bytes.max(1)) as u64;
        if n > fits {
            return Err(self.err(format!(
                "{what} at byte {at} is {n}, but the remaining {} bytes can hold at most {fits}",
                self.remaining()
            )));
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.count(1, &format!("length of {what}"))?;
        let at = self.pos;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err(format!("{what} at byte {at} is not valid UTF-8")))
    }

    fn parse(mut self) -> Result<Header> {
        let version = self.preamble()?;
        // Smallest tensor info: empty name (8), n_dims (4), type (4), offset (8).
        let n_tensors = self.count(24, "tensor count")?;
        // Smallest key/value: empty key (8), type (4), one byte of value.
        let n_kv = self.count(13, "metadata count")?;
        let metadata = self.metadata(n_kv)?;
        let tensors = (0..n_tensors)
            .map(|i| self.tensor_info(i))
            .collect::<Result<Vec<_>>>()?;
        let alignment = self.alignment(&metadata)?;
        let data_start = (self.pos as u64).div_ceil(alignment) * alignment;
        Ok(Header {
            version,
            metadata,
            tensors,
            data_start,
            alignment,
        })
    }

    fn preamble(&mut self) -> Result<u32> {
        let magic = self.take(4.min(self.remaining()), "magic")?;
        if magic != MAGIC {
            return Err(self.err(format!(
                "not a GGUF file: starts with {:?} instead of the magic \"GGUF\"",
                String::from_utf8_lossy(magic)
            )));
        }
        let version = self.u32("version")?;
        match version {
            2 | 3 => Ok(version),
            1 => Err(ModelError::unsupported(
                self.path,
                "GGUF version 1 (only versions 2 and 3 are supported)",
            )),
            // A big-endian file has its version's bytes swapped, so the low half is zero.
            v if v != 0 && v & 0xFFFF == 0 => Err(ModelError::unsupported(
                self.path,
                format!("big-endian GGUF (version field {v:#x}); only little-endian is supported"),
            )),
            v => Err(ModelError::unsupported(
                self.path,
                format!("GGUF version {v} (only versions 2 and 3 are supported)"),
            )),
        }
    }

    fn metadata(&mut self, n_kv: usize) -> Result<BTreeMap<String, GgufValue>> {
        let mut metadata = BTreeMap::new();
        for i in 0..n_kv {
            let at = self.pos;
            let key = self.string(&format!("key of metadata entry {i}"))?;
            let ty = self.u32(&format!("value type of metadata key `{key}`"))?;
            let value = self.value(ty, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(self.err(format!("metadata key `{key}` (at byte {at}) appears twice")));
            }
        }
        Ok(metadata)
    }

    /// One value of GGUF value type `ty`, belonging to metadata key `key`.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<GgufValue> {
        let what = format!("value of metadata key `{key}`");
        Ok(match ty {
            0 => GgufValue::U8(u8::from_le_bytes(self.array(&what)?)),
            1 => GgufValue::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => GgufValue::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => GgufValue::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => self.bool(key, &what)?,
            8 => GgufValue::String(self.string(&what)?),
            9 => self.array_value(key, depth)?,
            10 => GgufValue::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => GgufValue::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array(&what)?)),
            other => {
                return Err(self.err(format!(
                    "metadata key `{key}` has unknown value type {other} (byte {})",
                    self.pos - 4
                )));
            }
        })
    }

    fn bool(&mut self, key: &str, what: &str) -> Result<GgufValue> {
        match self.take(1, what)?[0] {
            0 => Ok(GgufValue::Bool(false)),
            1 => Ok(GgufValue::Bool(true)),
            b => Err(self.err(format!("metadata key `{key}`: bool value is {b}, not 0 or 1"))),
        }
    }

    fn array_value(&mut self, key: &str, depth: usize) -> Result<GgufValue> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(self.err(format!(
                "metadata key `{key}`: arrays nested more than {MAX_ARRAY_DEPTH} deep"
            )));
        }
        let elem_ty = self.u32(&format!("array element type of metadata key `{key}`"))?;
        let min_bytes = match elem_ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            8 | 10..=12 => 8,
            9 => 12,
            other => {
                return Err(self.err(format!("metadata key `{key}`: array has unknown element type {other}")));
            }
        };
        let n = self.count(min_bytes, &format!("array length of metadata key `{key}`"))?;
        let mut items = Vec::with_capacity(n.min(MAX_PREALLOC));
        for _ in 0..n {
            items.push(self.value(elem_ty, key, depth + 1)?);
        }
        Ok(GgufValue::Array(items))
    }

    fn tensor_info(&mut self, index: usize) -> Result<GgufTensorInfo> {
        let name = self.string(&format!("name of tensor {index}"))?;
        let n_dims = self.u32(&format!("dimension count of tensor `{name}`"))?;
        if n_dims > MAX_DIMS {
            return Err(self.err(format!("tensor `{name}` has {n_dims} dimensions (at most {MAX_DIMS})")));
        }
        let ne = (0..n_dims)
            .map(|d| self.u64(&format!("dimension {d} of tensor `{name}`")))
            .collect::<Result<Vec<_>>>()?;
        let ggml_type = GgmlType::from_u32(self.u32(&format!("type of tensor `{name}`"))?);
        let offset = self.u64(&format!("data offset of tensor `{name}`"))?;
        Ok(GgufTensorInfo {
            name,
            ne,
            ggml_type,
            offset,
        })
    }

    /// `general.alignment`: a u32 power of two, as gguf-py requires.
    fn alignment(&self, metadata: &BTreeMap<String, GgufValue>) -> Result<u64> {
        match metadata.get("general.alignment") {
            None => Ok(DEFAULT_ALIGNMENT),
            Some(GgufValue::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
            Some(other) => Err(self.err(format!("general.alignment is {other:?}; it must be a u32 power of two"))),
        }
    }
}

/// GGUF tensor name -> HF parameter name for the llama architecture (token_embd.weight ->
/// model.embed_tokens.weight, blk.N.attn_q.weight -> model.layers.N.self_attn.q_proj.weight,
/// ...); `None` for names outside that map.
pub fn hf_name(gguf_name: &str) -> Option<String> {
    let (base, suffix) = gguf_name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let hf_base = match MODEL_PARTS.iter().find(|(g, _)| *g == base) {
        Some((_, hf)) => hf.to_string(),
        None => {
            let (layer, part) = base.strip_prefix("blk.")?.split_once('.')?;
            format!("model.layers.{}.{}", layer_index(layer)?, hf_block_part(part)?)
        }
    };
    Some(format!("{hf_base}.{suffix}"))
}

/// A canonical decimal layer number ("0", "17"; not "+1" or "01").
fn layer_index(s: &str) -> Option<usize> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

/// Per-layer tensors: (GGUF name, HF name) under `blk.N.` / `model.layers.N.`.
const BLOCK_PARTS: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// Whole-model tensors: (GGUF name, HF name).
const MODEL_PARTS: [(&str, &str); 3] = [
    ("token_embd", "model.embed_tokens"),
    ("output_norm", "model.norm"),
    ("output", "lm_head"),
];

fn hf_block_part(part: &str) -> Option<&'static str> {
    BLOCK_PARTS.iter().find(|(g, _)| *g == part).map(|(_, hf)| *hf)
}

/// The inverse of [`hf_name`]: HF parameter name -> llama GGUF tensor name.
pub fn gguf_name(hf: &str) -> Option<String> {
    let (base, suffix) = hf.rsplit_once('.')?;
    if let Some((gguf, _)) = MODEL_PARTS.iter().find(|(_, h)| *h == base) {
        return Some(format!("{gguf}.{suffix}"));
    }
    let (layer, part) = base.strip_prefix("model.layers.")?.split_once('.')?;
    let (gguf, _) = BLOCK_PARTS.iter().find(|(_, h)| *h == part)?;
    Some(format!("blk.{}.{gguf}.{suffix}", layer_index(layer)?))
}

/// llama.cpp's q/k row permutation (convert_hf_to_gguf.py `permute`), the inverse of
/// [`unpermute_qk_rows`]: HF row h*D + s*D/2 + i goes to GGUF row h*D + 2i + s.
pub fn permute_qk_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> std::result::Result<Vec<f32>, String> {
    let mut out = vec![0.0f32; data.len()];
    for (hf_row, gguf_row) in qk_row_pairs(data.len(), rows, cols, n_head)? {
        out[gguf_row * cols..(gguf_row + 1) * cols].copy_from_slice(&data[hf_row * cols..(hf_row + 1) * cols]);
    }
    Ok(out)
}

/// Undo llama.cpp's q/k row permutation: HF row h*D + s*D/2 + i = GGUF row h*D + 2i + s
/// (s in {0,1}, i < D/2, D = rows / n_head). `data` is row-major [rows, cols].
///
/// # Panics
/// When `n_head` is 0, does not divide `rows` into an even head size, or `data.len()` is not
/// `rows * cols`. Use [`try_unpermute_qk_rows`] (or [`GgufFile::tensor_f32_unpermuted`]) when
/// these numbers come from a file.
pub fn unpermute_qk_rows(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
    try_unpermute_qk_rows(data, rows, cols, n_head).unwrap_or_else(|m| panic!("{m}"))
}

/// [`unpermute_qk_rows`] that reports inconsistent arguments instead of panicking.
pub fn try_unpermute_qk_rows(
    data: &[f32],
    rows: usize,
    cols: usize,
    n_head: usize,
) -> std::result::Result<Vec<f32>, String> {
    let mut out = vec![0.0f32; data.len()];
    for (hf_row, gguf_row) in qk_row_pairs(data.len(), rows, cols, n_head)? {
        out[hf_row * cols..(hf_row + 1) * cols].copy_from_slice(&data[gguf_row * cols..(gguf_row + 1) * cols]);
    }
    Ok(out)
}

/// For each HF row of a q/k matrix, the GGUF row it is stored in (the map of
/// [`try_unpermute_qk_rows`], for decoders that read rows in place).
pub fn qk_source_rows(rows: usize, cols: usize, n_head: usize) -> std::result::Result<Vec<usize>, String> {
    let mut source = vec![0; rows];
    for (hf_row, gguf_row) in qk_row_pairs(rows * cols, rows, cols, n_head)? {
        source[hf_row] = gguf_row;
    }
    Ok(source)
}

/// (HF row, GGUF row) for every row of a q or k matrix of `len` values, [rows, cols], after
/// checking that the rows split into `n_head` heads of even size.
fn qk_row_pairs(
    len: usize,
    rows: usize,
    cols: usize,
    n_head: usize,
) -> std::result::Result<impl Iterator<Item = (usize, usize)>, String> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(format!("q/k un-permutation: {len} values are not {rows} x {cols}"));
    }
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!(
            "q/k un-permutation: {rows} rows do not split into {n_head} heads of even size"
        ));
    }
    let head_dim = rows / n_head;
    let half = head_dim / 2;
    Ok((0..n_head).flat_map(move |h| {
        (0..2).flat_map(move |s| (0..half).map(move |i| (h * head_dim + s * half + i, h * head_dim + 2 * i + s)))
    }))
}
