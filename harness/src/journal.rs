//! The per-sample journal: one JSON line per finished item, appended and flushed as items
//! finish, so a killed run loses at most the batch in flight. A rerun of the same command reads
//! it back and scores only the items that are missing. A torn last line (a kill mid-write: no
//! newline after it) is dropped and cut off, with a warning; any other line that is not a record
//! is an error.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A journal record: one finished item, keyed by its doc_id.
pub trait Record: Serialize + DeserializeOwned {
    fn doc_id(&self) -> usize;
    /// This item's share of the time its batch took, for throughput that survives a resume.
    fn set_seconds(&mut self, seconds: f64);
}

pub struct Journal<T: Record> {
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
        let (done, keep_bytes) = read_records(path)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot open for writing", path.display()))?;
        // Only a torn last line is cut (a journal on an append-only file is fine otherwise); a
        // whole last record that lost its newline gets it back before anything is appended.
        let len = file
            .metadata()
            .with_context(|| format!("{}: cannot stat", path.display()))?
            .len();
        if len > keep_bytes {
            eprintln!(
                "warning: {}: dropped a torn last line ({} bytes, a run killed mid-write); its items run again",
                path.display(),
                len - keep_bytes
            );
            file.set_len(keep_bytes)
                .with_context(|| format!("{}: cannot cut the torn last line", path.display()))?;
        } else if len < keep_bytes {
            (&file)
                .write_all(b"\n")
                .with_context(|| format!("{}: cannot append", path.display()))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            done,
        })
    }

    /// The records of a finished journal, in doc_id order, without opening it for writing. A
    /// torn last line is an error here: a finished run rewrote its journal whole.
    pub fn read(path: &Path) -> anyhow::Result<Vec<T>> {
        if !path.exists() {
            anyhow::bail!(
                "{}: no such journal (the task never ran in this folder)",
                path.display()
            );
        }
        let (records, whole_bytes) = read_records::<T>(path)?;
        let len = std::fs::metadata(path)
            .with_context(|| format!("{}: cannot stat", path.display()))?
            .len();
        if len > whole_bytes {
            bail!(
                "{}: the last line is cut short (the run did not finish)",
                path.display()
            );
        }
        Ok(records.into_values().collect())
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

/// Checks the docs a journal at `path` holds against the run's `planned` docs of `task`: none
/// other (a run's identity fixes its items, so another doc means an edited file), and with
/// `complete` every one of them.
pub fn check_docs(
    path: &Path,
    recorded: impl IntoIterator<Item = usize>,
    planned: &std::collections::BTreeSet<usize>,
    task: &str,
    complete: bool,
) -> anyhow::Result<()> {
    let mut count = 0;
    for doc in recorded {
        if !planned.contains(&doc) {
            bail!(
                "{}: holds doc {doc}, which is not among this run's {} items of {task}; remove the file to score the task again",
                path.display(),
                planned.len()
            );
        }
        count += 1;
    }
    if complete && count != planned.len() {
        bail!(
            "{}: {count} of this run's {} items of {task} are recorded; finish the run first (the same command resumes it)",
            path.display(),
            planned.len()
        );
    }
    Ok(())
}

/// The records of `path` (none when it does not exist) and the bytes they take up to the end of
/// the last whole record (a torn last line excluded).
fn read_records<T: Record>(path: &Path) -> anyhow::Result<(BTreeMap<usize, T>, u64)> {
    let mut done = BTreeMap::new();
    let mut keep_bytes = 0u64;
    if !path.exists() {
        return Ok((done, keep_bytes));
    }
    let reader = BufReader::new(File::open(path).with_context(|| format!("{}: cannot read", path.display()))?);
    for (number, line) in reader.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("{}: cannot read", path.display()))?;
        match serde_json::from_slice::<T>(&line) {
            Ok(sample) => {
                keep_bytes += line.len() as u64 + 1;
                let doc = sample.doc_id();
                if done.insert(doc, sample).is_some() {
                    // Appends never repeat a doc: the file was edited or joined from two runs.
                    bail!(
                        "{}: line {}: doc {doc} is recorded a second time; remove the file to score the task again",
                        path.display(),
                        number + 1
                    );
                }
            }
            // Only a final line without its newline may be torn (appends end every record with
            // one); anything else means the file was edited or is not ours.
            Err(_) if is_unterminated_last_line(path, keep_bytes + line.len() as u64)? => break,
            Err(e) => bail!("{}: line {}: not a journal record: {e}", path.display(), number + 1),
        }
    }
    Ok((done, keep_bytes))
}

fn is_unterminated_last_line(path: &Path, end: u64) -> anyhow::Result<bool> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot stat", path.display()))?
        .len();
    Ok(end >= len)
}

/// Atomic, durable file replacement (one implementation, shared with the reports crate).
pub use reports::run_dir::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Item {
        doc_id: usize,
        text: String,
        seconds: f64,
    }

    impl Record for Item {
        fn doc_id(&self) -> usize {
            self.doc_id
        }
        fn set_seconds(&mut self, seconds: f64) {
            self.seconds = seconds;
        }
    }

    fn item(doc_id: usize) -> Item {
        Item {
            doc_id,
            text: format!("item {doc_id}"),
            seconds: 0.5,
        }
    }

    #[test]
    fn resumes_and_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples/task.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(vec![item(0), item(1)]).unwrap();
        drop(journal);
        // A kill in the middle of writing the third record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"doc_id\":2,\"te").unwrap();
        drop(file);
        let mut journal: Journal<Item> = Journal::open(&path).unwrap();
        assert_eq!(journal.done().keys().copied().collect::<Vec<_>>(), vec![0, 1]);
        journal.append(vec![item(2)]).unwrap();
        let samples = journal.finish().unwrap();
        assert_eq!(samples.len(), 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn an_append_only_journal_without_a_torn_line_opens() {
        let dir = tempfile::tempdir_in(std::env::var_os("CARGO_TARGET_TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
            .unwrap_or_else(|_| tempfile::tempdir().unwrap());
        let path = dir.path().join("task.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(vec![item(0)]).unwrap();
        drop(journal);
        // chattr +a needs root and a file system that has the attribute; skip where it is not.
        let appended = std::process::Command::new("chattr").arg("+a").arg(&path).status();
        if !appended.is_ok_and(|s| s.success()) {
            eprintln!("skipped: chattr +a is not available here");
            return;
        }
        let reopened = Journal::<Item>::open(&path).map(|j| j.done().len());
        let _ = std::process::Command::new("chattr").arg("-a").arg(&path).status();
        assert_eq!(reopened.unwrap(), 1);
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.jsonl");
        std::fs::write(
            &path,
            format!("garbage\n{}\n", serde_json::to_string(&item(0)).unwrap()),
        )
        .unwrap();
        let err = Journal::<Item>::open(&path).err().unwrap().to_string();
        assert!(err.contains("task.jsonl") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn a_corrupt_last_line_with_its_newline_is_an_error_not_a_torn_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.jsonl");
        let record = serde_json::to_string(&item(0)).unwrap();
        for last in ["garbage\n", "{\"doc\": 1}\n"] {
            std::fs::write(&path, format!("{record}\n{last}")).unwrap();
            let err = Journal::<Item>::open(&path).err().unwrap().to_string();
            assert!(err.contains("task.jsonl") && err.contains("line 2"), "{err}");
            assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{record}\n{last}"));
        }
    }

    #[test]
    fn a_finished_journal_read_back_may_not_end_torn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.jsonl");
        let record = serde_json::to_string(&item(0)).unwrap();
        std::fs::write(&path, format!("{record}\n{}", &record[..10])).unwrap();
        let err = Journal::<Item>::read(&path).err().unwrap().to_string();
        assert!(err.contains("task.jsonl: the last line is cut short"), "{err}");
        // A last record without its newline is whole.
        std::fs::write(&path, &record).unwrap();
        assert_eq!(Journal::<Item>::read(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_doc_recorded_twice_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("task.jsonl");
        let line = |doc| serde_json::to_string(&item(doc)).unwrap();
        std::fs::write(&path, format!("{}\n{}\n{}\n", line(0), line(1), line(0))).unwrap();
        let err = Journal::<Item>::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("task.jsonl: line 3: doc 0 is recorded a second time"),
            "{err}"
        );
    }
}
