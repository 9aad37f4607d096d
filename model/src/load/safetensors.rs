//! HuggingFace safetensors checkpoints: one `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`. Shards are memory-mapped and their headers read once at
//! open; tensors are handed out still mapped, so nothing is read until a tensor is decoded.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::error::{ModelError, Result};
use crate::load::quant::GgmlType;
use crate::load::stored::{StoredBytes, StoredTensor};
use crate::load::weights::WeightSource;

pub struct SafetensorsSource {
    /// The file a user named (index or single file), for messages.
    path: PathBuf,
    shards: Vec<Shard>,
    /// tensor name → where it is
    names: HashMap<String, Entry>,
}

struct Shard {
    path: PathBuf,
    map: Arc<Mmap>,
}

struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    range: Range<usize>,
}

impl SafetensorsSource {
    /// `dir` holds `model.safetensors` or `model.safetensors.index.json`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            return Self::open_index(&index);
        }
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return Self::open_files(&single, vec![single.clone()]);
        }
        Err(ModelError::format(
            dir,
            "no model.safetensors or model.safetensors.index.json in this folder",
        ))
    }

    fn open_index(index: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index).map_err(|e| ModelError::io(index, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::format(index, format!("not valid JSON: {e}")))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::format(index, "no `weight_map` object"))?;
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut files = BTreeMap::new();
        for (name, file) in map {
            let file = file
                .as_str()
                .ok_or_else(|| ModelError::format(index, format!("weight_map entry `{name}` is not a file name")))?;
            files.insert(file.to_string(), ());
        }
        let shard_paths = files.keys().map(|f| dir.join(f)).collect();
        let source = Self::open_files(index, shard_paths)?;
        for (name, file) in map {
            let owner = source.names.get(name).map(|e| &source.shards[e.shard].path);
            if owner != Some(&dir.join(file.as_str().unwrap_or_default())) {
                return Err(ModelError::format(
                    index,
                    format!("tensor `{name}` is not in its listed shard `{file}`"),
                ));
            }
        }
        Ok(source)
    }

    fn open_files(path: &Path, shard_paths: Vec<PathBuf>) -> Result<Self> {
        let mut shards = Vec::new();
        let mut names = HashMap::new();
        for shard_path in shard_paths {
            let file = File::open(&shard_path).map_err(|e| ModelError::io(&shard_path, e))?;
            // SAFETY: the file is opened read-only; a checkpoint changed underneath a running
            // evaluation is outside what we can defend against.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&shard_path, e))?;
            let parsed = SafeTensors::deserialize(&map).map_err(|e| invalid_file(&shard_path, &map, e))?;
            let base = map.as_ptr() as usize;
            for (name, view) in parsed.tensors() {
                let start = view.data().as_ptr() as usize - base;
                let entry = Entry {
                    shard: shards.len(),
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    range: start..start + view.data().len(),
                };
                if names.insert(name.clone(), entry).is_some() {
                    return Err(ModelError::format(
                        &shard_path,
                        format!("tensor `{name}` appears in two shards"),
                    ));
                }
            }
            shards.push(Shard {
                path: shard_path,
                map: Arc::new(map),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            shards,
            names,
        })
    }
}

impl WeightSource for SafetensorsSource {
    fn path(&self) -> &Path {
        &self.path
    }

    fn stored_bytes(&self) -> u64 {
        self.shards.iter().map(|s| s.map.len() as u64).sum()
    }

    fn tensor_names(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    fn tensor(&self, name: &str) -> Result<StoredTensor> {
        let entry = self.names.get(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let shard = &self.shards[entry.shard];
        let encoding = match entry.dtype {
            Dtype::F32 => GgmlType::F32,
            Dtype::F16 => GgmlType::F16,
            Dtype::BF16 => GgmlType::BF16,
            other => {
                return Err(ModelError::unsupported(
                    &shard.path,
                    format!("tensor `{name}` has dtype {other:?} (supported: F32, F16, BF16)"),
                ));
            }
        };
        let bytes = StoredBytes::Mapped {
            map: Arc::clone(&shard.map),
            range: entry.range.clone(),
        };
        StoredTensor::new(&shard.path, name, entry.shape.clone(), encoding, bytes)
    }
}

/// Why a shard is not a valid safetensors file; a truncated one says by how much.
fn invalid_file(path: &Path, bytes: &[u8], error: SafeTensorError) -> ModelError {
    if let SafeTensorError::MetadataIncompleteBuffer = error
        && let Some(needed) = declared_size(bytes)
        && needed > bytes.len() as u64
    {
        return ModelError::format(
            path,
            format!(
                "truncated: its header lists {needed} bytes of header and tensor data, the file has {}",
                bytes.len()
            ),
        );
    }
    if let SafeTensorError::TensorInvalidInfo = error
        && let Some((name, span, size)) = missized_tensor(bytes)
    {
        return ModelError::format(
            path,
            format!("tensor `{name}`: its data_offsets span {span} bytes, its dtype and shape need {size}"),
        );
    }
    ModelError::format(path, format!("not a valid safetensors file: {error}"))
}

/// The first tensor whose data span is not its shape's size (the crate's `TensorInvalidInfo`
/// does not say which): (name, span, size).
fn missized_tensor(bytes: &[u8]) -> Option<(String, u64, u64)> {
    let (_, json) = header_json(bytes)?;
    json.as_object()?.iter().find_map(|(name, t)| {
        let value_bytes: u64 = match t.get("dtype")?.as_str()? {
            "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
            "U16" | "I16" | "F16" | "BF16" => 2,
            "U32" | "I32" | "F32" => 4,
            "U64" | "I64" | "F64" => 8,
            _ => return None,
        };
        let offsets = t.get("data_offsets")?;
        let span = offsets.get(1)?.as_u64()?.checked_sub(offsets.get(0)?.as_u64()?)?;
        let size = t
            .get("shape")?
            .as_array()?
            .iter()
            .try_fold(value_bytes, |acc, d| acc.checked_mul(d.as_u64()?))?;
        (span != size).then(|| (name.clone(), span, size))
    })
}

/// The header's length and its JSON, read leniently (for messages about a file the crate refused).
fn header_json(bytes: &[u8]) -> Option<(u64, serde_json::Value)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(n).ok()?)?)?;
    Some((n, serde_json::from_slice(header).ok()?))
}

/// The file size a safetensors header promises: 8 + header length + the furthest data offset.
fn declared_size(bytes: &[u8]) -> Option<u64> {
    let (n, json) = header_json(bytes)?;
    let end = json
        .as_object()?
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Some(8 + n + end)
}
