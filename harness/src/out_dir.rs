//! The run folder, claimed for one process at a time.
//!
//! - A lock (`.lock`, holding the owner's pid) is taken for the whole run: a second run on a
//!   folder in use stops with "in use by pid N" instead of evaluating everything twice. The
//!   kernel releases it when the process ends, however it ends (`kill -9` included).
//! - `identity.json` says which run the folder holds. A different run is refused when the folder
//!   holds results of it; a folder with an identity but no results (a run that failed before
//!   scoring anything) is taken over.
//! - Temporary files left by a killed writer are removed (nobody else writes while we hold the
//!   lock).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use reports::identity::RunIdentity;

pub struct OutDir {
    pub path: PathBuf,
    /// Held for the life of the run.
    _lock: File,
}

impl OutDir {
    pub fn claim(path: &Path, identity: &RunIdentity) -> anyhow::Result<OutDir> {
        std::fs::create_dir_all(path).with_context(|| format!("{}: cannot create output folder", path.display()))?;
        let lock = lock(path)?;
        remove_stale_temporaries(path);
        let existing = RunIdentity::read(path)?;
        if existing.is_none() && holds_results(path) {
            // Without identity.json nothing says which model and settings made these results:
            // resuming into them could report another run's scores as this one's.
            bail!(
                "{} holds results (scores.csv or samples/) but no {}, so which run made them cannot be told; choose another --out or remove it",
                path.display(),
                RunIdentity::FILE
            );
        }
        if let Some(existing) = existing
            && &existing != identity
        {
            if holds_results(path) {
                let fields: Vec<String> = existing.differences(identity).into_iter().map(|d| d.0).collect();
                bail!(
                    "{} holds results of a different run (it differs in: {}); choose another --out or remove it",
                    path.display(),
                    fields.join(", ")
                );
            }
            eprintln!(
                "note: {} held the identity of a run that scored nothing; it is replaced",
                path.display()
            );
        }
        identity.write(path)?;
        Ok(OutDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

fn lock(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open the lock file", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut owner = String::new();
            let _ = file.read_to_string(&mut owner);
            bail!(
                "{} is in use by pid {} (another harness run writes there); wait for it or choose another --out",
                dir.display(),
                owner.trim()
            );
        }
        Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("{}: cannot lock", path.display())),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| write!(file, "{}", std::process::id()))
        .with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(file)
}

/// Whether the folder holds any scored item or score.
fn holds_results(dir: &Path) -> bool {
    if dir.join("scores.csv").exists() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir.join("samples")) else {
        return false;
    };
    entries
        .flatten()
        .any(|e| e.metadata().map(|m| m.is_file() && m.len() > 0).unwrap_or(false))
}

/// `<name>.tmp.<pid>.<n>` files (reports::run_dir::write_atomic) of a writer that was killed.
fn remove_stale_temporaries(dir: &Path) {
    for folder in [dir.to_path_buf(), dir.join("samples")] {
        for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().contains(".tmp.") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(limit: usize) -> RunIdentity {
        serde_json::from_value(serde_json::json!({
            "model": "m", "model_sha256": "a", "tasks": ["arc_easy"], "shots": null, "limit": limit,
            "attention": "native", "backend": "flex", "seed": 1, "data_sha256": {},
        }))
        .unwrap()
    }

    #[test]
    fn one_process_at_a_time_and_one_run_per_folder() {
        let dir = tempfile::tempdir().unwrap();
        let claimed = OutDir::claim(dir.path(), &identity(5)).unwrap();
        // The lock is per open file: a second claim, even from this process, is refused.
        let err = format!("{:#}", OutDir::claim(dir.path(), &identity(5)).err().unwrap());
        assert!(err.contains(&format!("in use by pid {}", std::process::id())), "{err}");
        drop(claimed);
        // A different run may take over a folder that holds no results …
        drop(OutDir::claim(dir.path(), &identity(6)).unwrap());
        // … but not one that does.
        std::fs::create_dir_all(dir.path().join("samples")).unwrap();
        std::fs::write(dir.path().join("samples/arc_easy.jsonl"), "{\"doc_id\":0}\n").unwrap();
        let err = format!("{:#}", OutDir::claim(dir.path(), &identity(7)).err().unwrap());
        assert!(err.contains("different run") && err.contains("limit"), "{err}");
        drop(OutDir::claim(dir.path(), &identity(6)).unwrap());
        // Results whose identity.json is gone are nobody's to resume.
        std::fs::remove_file(dir.path().join(RunIdentity::FILE)).unwrap();
        let err = format!("{:#}", OutDir::claim(dir.path(), &identity(6)).err().unwrap());
        assert!(err.contains("no identity.json"), "{err}");
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("scores.csv.tmp.123.0"), "half").unwrap();
        drop(OutDir::claim(dir.path(), &identity(5)).unwrap());
        assert!(!dir.path().join("scores.csv.tmp.123.0").exists());
    }
}
