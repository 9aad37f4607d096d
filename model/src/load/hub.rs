//! Models in the HuggingFace hub cache, found offline by id (`org/name[@revision]`).
//!
//! The cache layout is huggingface_hub's (`file_download.py`, "Understand caching" in its docs):
//! `<cache>/models--<org>--<name>/refs/<branch or tag>` holds a commit hash,
//! `snapshots/<commit>/<file>` are symlinks to `blobs/<id>`, and a blob's id is the sha256 of
//! its content for LFS files (the weights) and the git sha1 of the file for the others.

use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// A hub model id: `org/name` and the revision asked for, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubId {
    pub repo: String,
    pub revision: Option<String>,
}

impl HubId {
    /// `org/name` or `org/name@revision`, with the characters hub repo names allow (letters,
    /// digits, `-`, `_`, `.`); anything else is not a hub id.
    pub fn parse(text: &str) -> Option<Self> {
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (text, None),
        };
        let (org, name) = repo.split_once('/')?;
        let part_ok = |p: &str| {
            !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        let revision_ok = revision.is_none_or(|r| !r.is_empty() && !r.split('/').any(|p| p.is_empty() || p == ".."));
        (part_ok(org) && part_ok(name) && revision_ok).then(|| Self {
            repo: repo.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    /// The repo's folder name in the cache: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        format!("models--{}", self.repo.replace('/', "--"))
    }

    fn revision(&self) -> &str {
        self.revision.as_deref().unwrap_or("main")
    }

    /// The command that puts this model in the cache.
    pub fn download_command(&self) -> String {
        match &self.revision {
            Some(revision) => format!("huggingface-cli download {} --revision {revision}", self.repo),
            None => format!("huggingface-cli download {}", self.repo),
        }
    }
}

/// The hub cache folder and the setting it came from, as huggingface_hub chooses it:
/// `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
/// `~/.cache/huggingface/hub`.
pub fn cache_dir() -> (PathBuf, String) {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("HF_HUB_CACHE") {
        return (dir, "HF_HUB_CACHE".into());
    }
    if let Some(home) = var("HF_HOME") {
        return (home.join("hub"), "HF_HOME/hub".into());
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return (cache.join("huggingface/hub"), "XDG_CACHE_HOME/huggingface/hub".into());
    }
    let home = var("HOME").unwrap_or_else(|| PathBuf::from("~"));
    (
        home.join(".cache/huggingface/hub"),
        "the default ~/.cache/huggingface/hub".into(),
    )
}

/// A resolved snapshot: the folder holding the model's files at one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub id: HubId,
    pub commit: String,
    pub dir: PathBuf,
}

/// Finds `id` in the cache at `cache`: the revision is a commit hash with a snapshot, or a
/// branch or tag name in `refs/` (`main` when none is given). `origin` names where `cache` came
/// from, for the error a missing model gets.
pub fn resolve(id: &HubId, cache: &Path, origin: &str) -> Result<Snapshot> {
    let repo_dir = cache.join(id.cache_folder());
    let revision = id.revision();
    let missing = |looked: &Path, why: &str| {
        ModelError::NotFound(format!(
            "model `{}` (revision {revision}) is not in the HuggingFace cache: {why} {} (cache from {origin}). \
             Download it with `{}` (or `hf download {}`), or pass a local path",
            id.repo,
            looked.display(),
            id.download_command(),
            id.repo,
        ))
    };
    if !repo_dir.is_dir() {
        return Err(missing(&repo_dir, "there is no"));
    }
    let commit = if is_commit_hash(revision) {
        revision.to_string()
    } else {
        let ref_file = repo_dir.join("refs").join(revision);
        match std::fs::read_to_string(&ref_file) {
            Ok(text) => text.trim().to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing(&ref_file, "no branch or tag, no"));
            }
            Err(e) => return Err(ModelError::io(&ref_file, e)),
        }
    };
    let dir = repo_dir.join("snapshots").join(&commit);
    if !is_commit_hash(&commit) || !dir.is_dir() {
        return Err(missing(&dir, "no snapshot"));
    }
    Ok(Snapshot {
        id: id.clone(),
        commit,
        dir,
    })
}

fn is_commit_hash(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The sha256 a cached file's blob name gives, when the file is a link to an LFS blob (64 hex
/// digits); `None` for a plain file or a git-sha1 blob, which the caller must hash.
pub fn lfs_sha256(file: &Path) -> Option<String> {
    let target = std::fs::read_link(file).ok()?;
    let name = target.file_name()?.to_str()?;
    let in_blobs = target.parent()?.file_name()? == "blobs";
    (in_blobs && name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())).then(|| name.to_ascii_lowercase())
}

/// `org/name` for a folder inside the cache (`.../models--org--name/snapshots/<commit>`).
pub fn repo_of_snapshot_dir(dir: &Path) -> Option<String> {
    let snapshots = dir.parent()?;
    if snapshots.file_name()? != "snapshots" {
        return None;
    }
    let folder = snapshots.parent()?.file_name()?.to_str()?;
    let (org, name) = folder.strip_prefix("models--")?.split_once("--")?;
    Some(format!("{org}/{name}"))
}
