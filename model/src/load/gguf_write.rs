//! Writes GGUF v3 files (the layout `gguf.rs` reads): the header and tensor directory first,
//! then each tensor's data streamed in directory order, so a 7B file is never held in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::gguf::GgufValue;
use super::quant::GgmlType;
use crate::error::{ModelError, Result};

const ALIGNMENT: u64 = 32;

/// A tensor to be written: its GGUF name, `ne` (contiguous dimension first) and type.
pub struct TensorEntry {
    pub name: String,
    pub ne: Vec<u64>,
    pub ggml_type: GgmlType,
}

impl TensorEntry {
    fn byte_size(&self) -> Result<u64> {
        let n = self.ne.iter().product();
        self.ggml_type.byte_size(n).ok_or_else(|| {
            ModelError::Invalid(format!(
                "tensor `{}`: {n} elements are not whole {} blocks",
                self.name, self.ggml_type
            ))
        })
    }
}

/// A GGUF file being written: `new` writes the header, then `write_tensor` once per entry, in
/// order, then `finish`.
pub struct GgufWriter {
    path: PathBuf,
    out: BufWriter<File>,
    entries: Vec<TensorEntry>,
    next: usize,
}

impl GgufWriter {
    pub fn new(path: &Path, metadata: &[(String, GgufValue)], entries: Vec<TensorEntry>) -> Result<Self> {
        let file = File::create(path).map_err(|e| ModelError::io(path, e))?;
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&3u32.to_le_bytes());
        header.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        header.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_string(&mut header, key);
            header.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut header, value);
        }
        let mut offset = 0u64;
        for entry in &entries {
            put_string(&mut header, &entry.name);
            header.extend_from_slice(&(entry.ne.len() as u32).to_le_bytes());
            for d in &entry.ne {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&entry.ggml_type.id().to_le_bytes());
            header.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + entry.byte_size()?).div_ceil(ALIGNMENT) * ALIGNMENT;
        }
        pad(&mut header);
        let mut out = BufWriter::with_capacity(1 << 22, file);
        out.write_all(&header).map_err(|e| ModelError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            entries,
            next: 0,
        })
    }

    /// The next tensor's data, exactly its byte size.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<()> {
        let entry = self
            .entries
            .get(self.next)
            .ok_or_else(|| ModelError::Invalid(format!("{}: more tensors than announced", self.path.display())))?;
        if bytes.len() as u64 != entry.byte_size()? {
            return Err(ModelError::Invalid(format!(
                "tensor `{}`: {} bytes given, {} expected",
                entry.name,
                bytes.len(),
                entry.byte_size()?
            )));
        }
        let mut padded = bytes.len() as u64;
        padded = padded.div_ceil(ALIGNMENT) * ALIGNMENT;
        let zeros = vec![0u8; (padded - bytes.len() as u64) as usize];
        self.out
            .write_all(bytes)
            .and_then(|()| self.out.write_all(&zeros))
            .map_err(|e| ModelError::io(&self.path, e))?;
        self.next += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        if self.next != self.entries.len() {
            return Err(ModelError::Invalid(format!(
                "{}: {} of {} tensors written",
                self.path.display(),
                self.next,
                self.entries.len()
            )));
        }
        self.out.flush().map_err(|e| ModelError::io(&self.path, e))
    }
}

fn pad(out: &mut Vec<u8>) {
    let len = (out.len() as u64).div_ceil(ALIGNMENT) * ALIGNMENT;
    out.resize(len as usize, 0);
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, value: &GgufValue) {
    match value {
        GgufValue::U8(v) => out.push(*v),
        GgufValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Bool(v) => out.push(u8::from(*v)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        GgufValue::Array(items) => {
            // An empty array is written as an array of u8.
            out.extend_from_slice(&items.first().map_or(0, GgufValue::type_id).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
    }
}
