//! The per-sample journal: one JSON line per finished item, appended and flushed as items
//! finish, so a killed run loses at most the batch in flight. A rerun of the same command reads
//! it back and scores only the items that are missing. A torn last line (a kill mid-write) is
//! dropped and cut off.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A journal record: one finished item, keyed by its doc_id.
pub trait Record: Serialize + DeserializeOwned {
    fn doc_id(&self) -> usize;
}

/// One multiple-choice item's outcome, as written to `samples/<task>.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct McSample {
    pub doc_id: usize,
    /// The context of the first choice (all choices share it but for winogrande-style tasks).
    pub prompt: String,
    pub contexts: Option<Vec<String>>,
    pub choices: Vec<String>,
    pub loglikelihoods: Vec<f64>,
    pub is_greedy: Vec<bool>,
    pub prediction: usize,
    pub prediction_norm: usize,
    pub gold: usize,
    pub acc: f64,
    pub acc_norm: f64,
    /// This item's share of the scoring time, for throughput that survives a resume.
    pub seconds: f64,
    /// Per choice: context and continuation tokens (empty in journals written before they were
    /// recorded).
    #[serde(default)]
    pub context_tokens: Vec<usize>,
    #[serde(default)]
    pub continuation_tokens: Vec<usize>,
}

impl Record for McSample {
    fn doc_id(&self) -> usize {
        self.doc_id
    }
}

pub struct Journal<T: Record = McSample> {
    path: PathBuf,
    file: File,
    done: BTreeMap<usize, T>,
}

impl<T: Record> Journal<T> {
    /// Opens (or creates) the journal at `path`, reading back what an earlier run finished.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create folder", dir.display()))?;
        }
        let mut done = BTreeMap::new();
        let mut keep_bytes = 0u64;
        if path.exists() {
            let reader = BufReader::new(File::open(path).with_context(|| format!("{}: cannot read", path.display()))?);
            for (number, line) in reader.split(b'\n').enumerate() {
                let line = line.with_context(|| format!("{}: cannot read", path.display()))?;
                match serde_json::from_slice::<T>(&line) {
                    Ok(sample) => {
                        keep_bytes += line.len() as u64 + 1;
                        done.insert(sample.doc_id(), sample);
                    }
                    // Only a final line may be torn; anything earlier means the file is not ours.
                    Err(_) if is_last_line(path, keep_bytes + line.len() as u64)? => break,
                    Err(e) => bail!("{}: line {}: not a journal record: {e}", path.display(), number + 1),
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for writing", path.display()))?;
        file.set_len(keep_bytes)
            .with_context(|| format!("{}: cannot cut the torn last line", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            done,
        })
    }

    pub fn done(&self) -> &BTreeMap<usize, T> {
        &self.done
    }

    /// Appends finished items and makes them durable before returning.
    pub fn append(&mut self, samples: Vec<T>) -> anyhow::Result<()> {
        let mut text = String::new();
        for sample in &samples {
            text.push_str(&serde_json::to_string(sample)?);
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("{}: cannot append", self.path.display()))?;
        for sample in samples {
            self.done.insert(sample.doc_id(), sample);
        }
        Ok(())
    }

    /// Rewrites the journal sorted by doc_id (atomically), for a tidy finished file.
    pub fn finish(self) -> anyhow::Result<Vec<T>> {
        let samples: Vec<T> = self.done.into_values().collect();
        let mut text = String::new();
        for sample in &samples {
            text.push_str(&serde_json::to_string(sample)?);
            text.push('\n');
        }
        write_atomic(&self.path, text.as_bytes())?;
        Ok(samples)
    }
}

fn is_last_line(path: &Path, end: u64) -> anyhow::Result<bool> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot stat", path.display()))?
        .len();
    Ok(end >= len.saturating_sub(1))
}

/// Atomic, durable file replacement (one implementation, shared with the reports crate).
pub use reports::run_dir::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(doc_id: usize) -> McSample {
        McSample {
            doc_id,
            prompt: "Q?".into(),
            contexts: None,
            choices: vec![" a".into(), " b".into()],
            loglikelihoods: vec![-1.0, -2.0],
            is_greedy: vec![true, false],
            prediction: 0,
            prediction_norm: 0,
            gold: 0,
            acc: 1.0,
            acc_norm: 1.0,
            seconds: 0.5,
            context_tokens: vec![2, 2],
            continuation_tokens: vec![1, 1],
        }
    }

    #[test]
    fn resumes_and_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples/task.jsonl");
        let mut journal: Journal = Journal::open(&path).unwrap();
        journal.append(vec![sample(0), sample(1)]).unwrap();
        drop(journal);
        // A kill in the middle of writing the third record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"doc_id\":2,\"prom").unwrap();
        drop(file);
        let mut journal: Journal = Journal::open(&path).unwrap();
        assert_eq!(journal.done().keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        journal.append(vec![sample(2)]).unwrap();
        let samples = journal.finish().unwrap();
        assert_eq!(samples.len(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.jsonl");
        std::fs::write(
            &path,
            format!("garbage\n{}\n", serde_json::to_string(&sample(0)).unwrap()),
        )
        .unwrap();
        let err = Journal::<McSample>::open(&path).err().unwrap().to_string();
        assert!(err.contains("task.jsonl") && err.contains("line 1"), "{err}");
    }
}
