//! HuggingFace safetensors checkpoints: one `model.safetensors`, or shards listed in
//! `model.safetensors.index.json`. Shards are memory-mapped and read one tensor at a time, so a
//! sharded checkpoint is never held twice in memory.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};
use crate::load::weights::{HostTensor, WeightSource};

pub struct SafetensorsSource {
    /// The file a user named (index or single file), for messages.
    path: PathBuf,
    shards: Vec<Shard>,
    /// tensor name → shard index
    names: HashMap<String, usize>,
}

struct Shard {
    path: PathBuf,
    map: Mmap,
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
            let owner = source.names.get(name).map(|&i| &source.shards[i].path);
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
            let parsed = SafeTensors::deserialize(&map)
                .map_err(|e| ModelError::format(&shard_path, format!("not a valid safetensors file: {e}")))?;
            for name in parsed.names() {
                if names.insert(name.to_string(), shards.len()).is_some() {
                    return Err(ModelError::format(
                        &shard_path,
                        format!("tensor `{name}` appears in two shards"),
                    ));
                }
            }
            shards.push(Shard { path: shard_path, map });
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

    fn has(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    fn tensor(&self, name: &str) -> Result<HostTensor> {
        let &index = self.names.get(name).ok_or_else(|| ModelError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        let shard = &self.shards[index];
        let parsed = SafeTensors::deserialize(&shard.map)
            .map_err(|e| ModelError::format(&shard.path, format!("not a valid safetensors file: {e}")))?;
        let view = parsed
            .tensor(name)
            .map_err(|e| ModelError::format(&shard.path, format!("tensor `{name}`: {e}")))?;
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::unsupported(
                    &shard.path,
                    format!("tensor `{name}` has dtype {other:?}"),
                ));
            }
        };
        Ok(HostTensor {
            shape: view.shape().to_vec(),
            data,
        })
    }
}
