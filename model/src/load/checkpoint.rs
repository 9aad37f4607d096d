//! A checkpoint as the harness sees it: opened from a path or a hub id, with its config, weights,
//! tokenizer, files and a display name. Everything that depends on the format is here, so the
//! harness never looks at file extensions: a new format is a `Format` variant, its detection in
//! `open_path`/`open_folder`, and an arm in `config`, `weights`, `tokenizer` and `files`.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::attention_spec::AttentionSpec;
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::load::gguf::GgufFile;
use crate::load::gguf_source::GgufSource;
use crate::load::hub::{self, HubId};
use crate::load::memory::{MemoryPlan, available_memory};
use crate::load::safetensors::SafetensorsSource;
use crate::load::tokenizer::TextTokenizer;
use crate::load::weights::{Target, WeightSource, build_decoder, with_stored_head};
use crate::load::{LoadOptions, LoadedModel};

/// Files of an HF folder that make up the checkpoint: what the loader reads (config, weights,
/// tokenizer and its config, chat template) and the other JSON beside them.
fn is_hf_checkpoint_file(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".json") || name == "chat_template.jinja"
}

/// One file of a checkpoint, by name (relative to the checkpoint's folder) and sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointFile {
    pub name: String,
    pub sha256: String,
}

enum Format {
    /// A folder with config.json, safetensors weights and (optionally) tokenizer.json.
    HfFolder { config: ModelConfig },
    /// One GGUF file: config, weights and tokenizer all inside.
    Gguf { file: Box<GgufFile>, config: ModelConfig },
}

/// An opened checkpoint. Opening reads the config (and a GGUF header), not the weights.
pub struct Checkpoint {
    /// The folder or file the model is read from (for a hub id, the snapshot folder).
    location: PathBuf,
    /// `org/name` for a hub model, else the file or folder name.
    name: String,
    format: Format,
}

impl Checkpoint {
    /// Opens `model`: an existing path (an HF folder or a GGUF file) or, when no such path
    /// exists, a hub id `org/name[@revision]` resolved offline from the HuggingFace cache.
    pub fn open(model: &Path) -> Result<Self> {
        if std::fs::symlink_metadata(model).is_ok() {
            return Self::open_path(model, None);
        }
        let Some(id) = model.to_str().and_then(HubId::parse) else {
            return Err(ModelError::NotFound(format!(
                "{}: no such file or folder (--model takes a GGUF file, an HF folder with \
                 config.json, or a hub id org/name[@revision] from the HuggingFace cache)",
                model.display()
            )));
        };
        let (cache, origin) = hub::cache_dir();
        let snapshot = hub::resolve(&id, &cache, &origin).map_err(|e| match e {
            ModelError::NotFound(why) => {
                ModelError::NotFound(format!("{}: no such file or folder, and {why}", model.display()))
            }
            other => other,
        })?;
        Self::open_path(&snapshot.dir, Some(id.repo))
    }

    fn open_path(path: &Path, hub_name: Option<String>) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| ModelError::io(path, e))?;
        let format = if meta.is_dir() {
            Self::open_folder(path)?
        } else if meta.is_file() {
            let file = GgufFile::open(path)?;
            let config = ModelConfig::from_gguf(&file)?;
            Format::Gguf {
                file: Box::new(file),
                config,
            }
        } else {
            return Err(ModelError::format(
                path,
                "not a regular file or a folder (a device, FIFO or socket cannot be a checkpoint)",
            ));
        };
        let in_cache = || meta.is_dir().then(|| hub::repo_of_snapshot_dir(path)).flatten();
        let name = hub_name.or_else(in_cache).unwrap_or_else(|| local_name(path));
        Ok(Self {
            location: path.to_path_buf(),
            name,
            format,
        })
    }

    fn open_folder(dir: &Path) -> Result<Format> {
        let config_file = dir.join("config.json");
        if !config_file.is_file() {
            let ggufs = files_named(dir, |name| name.ends_with(".gguf"))?;
            let hint = match ggufs.first() {
                Some(first) => format!("; for a GGUF file pass its path, e.g. {}", dir.join(first).display()),
                None => String::new(),
            };
            return Err(ModelError::format(
                dir,
                format!(
                    "no config.json in this folder: --model takes an HF folder (config.json, \
                     model.safetensors or a sharded index, tokenizer.json) or a GGUF file{hint}"
                ),
            ));
        }
        Ok(Format::HfFolder {
            config: ModelConfig::from_hf_file(&config_file)?,
        })
    }

    /// For display, run folders and scores.csv: `org/name` for a hub model (also when opened by
    /// its snapshot path), the GGUF file name without `.gguf`, or the folder name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// [`Self::name`] as one path component (`org--name`), for run-folder names.
    pub fn folder_name(&self) -> String {
        self.name.replace('/', "--")
    }

    /// The folder or file the model is read from.
    pub fn location(&self) -> &Path {
        &self.location
    }

    pub fn config(&self) -> &ModelConfig {
        match &self.format {
            Format::HfFolder { config } | Format::Gguf { config, .. } => config,
        }
    }

    /// The weights, read tensor by tensor as the decoder is built.
    pub fn weights(&self) -> Result<Box<dyn WeightSource + '_>> {
        Ok(match &self.format {
            Format::HfFolder { .. } => Box::new(SafetensorsSource::open_dir(&self.location)?),
            Format::Gguf { file, config } => Box::new(GgufSource::new(file, config)),
        })
    }

    /// The tokenizer the checkpoint ships, if any (an HF folder may have no tokenizer.json).
    pub fn tokenizer(&self) -> Result<Option<TextTokenizer>> {
        let tokenizer = match &self.format {
            Format::HfFolder { .. } => {
                let file = self.location.join("tokenizer.json");
                file.is_file().then(|| TextTokenizer::from_file(&file)).transpose()?
            }
            Format::Gguf { file, .. } => Some(TextTokenizer::from_gguf(file)?),
        };
        if let Some(t) = &tokenizer {
            t.check_fits(self.config().vocab_size)?;
        }
        Ok(tokenizer)
    }

    /// The decoder, converted to the attention variant `spec`, in f32, and the tokenizer.
    pub fn load(&self, spec: &AttentionSpec, device: &Device) -> Result<LoadedModel> {
        self.load_with(spec, device, &LoadOptions::default())
    }

    /// [`Self::load`] in `options`' precision, weights resident or streamed as the memory plan
    /// says; the plan is made, and a model that cannot fit refused, before any weight is read.
    pub fn load_with(&self, spec: &AttentionSpec, device: &Device, options: &LoadOptions) -> Result<LoadedModel> {
        let tokenizer = self.tokenizer()?;
        let weights = self.weights()?;
        let config = &with_stored_head(self.config(), weights.as_ref());
        let memory = MemoryPlan::new(
            &self.location,
            config,
            &spec.resolve(config)?,
            options.dtype,
            options.weights,
            weights.stored_bytes(),
            options.available_memory.or_else(available_memory),
        )?;
        let target = Target {
            device: device.clone(),
            dtype: options.dtype,
            residency: memory.residency,
        };
        Ok(LoadedModel {
            path: self.location.clone(),
            decoder: build_decoder(config, weights.as_ref(), spec, &target)?,
            tokenizer,
            memory,
        })
    }

    /// The checkpoint's files with their sha256, in name order. A file in the hub cache that
    /// links to an LFS blob takes the blob's name as its hash; every other file is read.
    pub fn files(&self) -> Result<Vec<CheckpointFile>> {
        let (dir, names) = match &self.format {
            Format::Gguf { .. } => {
                let dir = self.location.parent().unwrap_or(Path::new("."));
                (dir.to_path_buf(), vec![local_file_name(&self.location)])
            }
            Format::HfFolder { .. } => (
                self.location.clone(),
                files_named(&self.location, is_hf_checkpoint_file)?,
            ),
        };
        names
            .into_iter()
            .map(|name| {
                let path = dir.join(&name);
                let sha256 = match hub::lfs_sha256(&path) {
                    Some(sha256) => sha256,
                    None => sha256_of_file(&path)?,
                };
                Ok(CheckpointFile { name, sha256 })
            })
            .collect()
    }
}

/// One hash for a list of files: a single file's own sha256, else the sha256 of their hex
/// hashes concatenated in name order (what run identities have always recorded).
pub fn files_sha256(files: &[CheckpointFile]) -> String {
    match files {
        [one] => one.sha256.clone(),
        many => {
            let mut sorted: Vec<&CheckpointFile> = many.iter().collect();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            let joined: String = sorted.iter().map(|f| f.sha256.as_str()).collect();
            hex(&Sha256::digest(joined.as_bytes()))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads and hashes a regular file; anything else (a FIFO, a device) is refused unread, so
/// hashing can never block or run forever.
fn sha256_of_file(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| ModelError::io(path, e))?;
    if !meta.is_file() {
        return Err(ModelError::format(path, "not a regular file, so it cannot be hashed"));
    }
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// The names of the entries of `dir` that `keep` accepts, sorted.
fn files_named(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ModelError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn local_file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A GGUF file's name without `.gguf`, or a folder's name (of its absolute path for `.`).
fn local_name(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let name = local_file_name(&absolute);
    let name = name.strip_suffix(".gguf").unwrap_or(&name);
    if name.is_empty() {
        "model".into()
    } else {
        name.to_string()
    }
}
