//! Reading a run directory as `harness eval` writes it:
//!
//! - `scores.csv`: one row per task and metric, columns exactly [`CSV_COLUMNS`];
//! - `samples/<task>.jsonl`: one JSON object per item with `doc_id` and its per-item scores, either
//!   as top-level numbers (multiple choice: `acc`, `acc_norm`) or inside a `scores` object
//!   (generative: `{"scores": {"exact_match": 1.0}}`);
//! - `run.json` (configuration, model and data hashes, harness git) and `identity.json` (what makes
//!   two runs the same run).
//!
//! Every error names the file, and the line where there is one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::RunIdentity;

/// The header of scores.csv; the column order is part of the interface.
pub const CSV_COLUMNS: [&str; 11] = [
    "model",
    "attention",
    "backend",
    "task",
    "shots",
    "n",
    "metric",
    "value",
    "stderr",
    "seconds",
    "items_per_s",
];

/// One row of scores.csv. `value` and `stderr` are fractions in [0, 1].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScoreRow {
    pub model: String,
    pub attention: String,
    pub backend: String,
    pub task: String,
    pub shots: usize,
    pub n: usize,
    pub metric: String,
    pub value: f64,
    pub stderr: f64,
    pub seconds: f64,
    pub items_per_s: f64,
}

/// One item of a samples file, kept verbatim so that merged files reproduce it byte for byte.
#[derive(Clone, Debug)]
pub struct Item {
    /// 1-based line number in the file it came from.
    pub line: usize,
    /// The JSON line as written (no newline).
    pub raw: String,
    pub value: Value,
}

/// One `samples/<task>.jsonl`, keyed by doc_id.
#[derive(Clone, Debug)]
pub struct TaskSamples {
    pub path: PathBuf,
    pub items: BTreeMap<usize, Item>,
}

/// A loaded run directory. `run.json` and `identity.json` are optional (None when absent); a
/// present but malformed file is an error.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub rows: Vec<ScoreRow>,
    pub run: Option<Value>,
    pub identity: Option<RunIdentity>,
    /// Task name (the file stem) → its samples.
    pub samples: BTreeMap<String, TaskSamples>,
}

impl RunDir {
    /// Loads `dir/scores.csv` (required), `run.json`, `identity.json` and `samples/*.jsonl`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: not a run directory (no such folder)", dir.display());
        }
        let rows = read_scores_csv(&dir.join("scores.csv"))?;
        let run = read_optional_json(&dir.join("run.json"))?;
        let identity = RunIdentity::read(dir)?;
        let mut samples = BTreeMap::new();
        let samples_dir = dir.join("samples");
        if samples_dir.is_dir() {
            let entries =
                std::fs::read_dir(&samples_dir).with_context(|| format!("{}: cannot list", samples_dir.display()))?;
            let mut paths = Vec::new();
            for entry in entries {
                let entry = entry.with_context(|| format!("{}: cannot list", samples_dir.display()))?;
                paths.push(entry.path());
            }
            paths.sort();
            for path in paths {
                if path.extension().is_some_and(|e| e == "jsonl") && path.is_file() {
                    let task = path.file_stem().unwrap_or_default().to_string_lossy().to_string();
                    samples.insert(task, TaskSamples::load(&path)?);
                }
            }
        }
        Ok(Self {
            path: dir.to_path_buf(),
            rows,
            run,
            identity,
            samples,
        })
    }

    /// The scores.csv row for a task and metric.
    pub fn row(&self, task: &str, metric: &str) -> Option<&ScoreRow> {
        self.rows.iter().find(|r| r.task == task && r.metric == metric)
    }

    /// Per-item values (doc_id → value) of a task's metric; None when the run has no samples file
    /// for the task or no item carries the metric.
    /// The values must be those scores.csv's row was computed from (its `n` items, their mean):
    /// otherwise one of the two files was edited or comes from another run, and a judgement on
    /// the one would not hold for the other.
    pub fn per_item(&self, task: &str, metric: &str) -> Result<Option<BTreeMap<usize, f64>>> {
        let Some(samples) = self.samples.get(task) else {
            return Ok(None);
        };
        let values = samples.metric(metric)?;
        if let (Some(values), Some(row)) = (&values, self.row(task, metric)) {
            let items: Vec<f64> = values.values().copied().collect();
            let (mean, _) = crate::aggregate::mean_and_stderr(&items);
            if items.len() != row.n || !crate::aggregate::agree(mean, row.value, 1e-9) {
                bail!(
                    "{}: {task} {metric} is {} over {} items, but its {} items in {} average {mean}: the files were edited or come from different runs",
                    self.path.join("scores.csv").display(),
                    row.value,
                    row.n,
                    items.len(),
                    samples.path.display()
                );
            }
        }
        Ok(values)
    }
}

impl TaskSamples {
    /// Reads a samples file: one JSON object per non-empty line, each with a non-negative integer
    /// `doc_id`, no doc_id twice.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let mut items: BTreeMap<usize, Item> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(raw)
                .with_context(|| format!("{}: line {line}: not valid JSON", path.display()))?;
            let Some(doc_id) = value.get("doc_id").and_then(Value::as_u64) else {
                bail!("{}: line {line}: no non-negative integer \"doc_id\"", path.display());
            };
            let doc_id = doc_id as usize;
            if let Some(earlier) = items.get(&doc_id) {
                bail!(
                    "{}: line {line}: doc_id {doc_id} already appears on line {}",
                    path.display(),
                    earlier.line
                );
            }
            items.insert(
                doc_id,
                Item {
                    line,
                    raw: raw.to_string(),
                    value,
                },
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            items,
        })
    }

    /// Per-item values of `metric`: `obj[metric]` if it is a number, else `obj["scores"][metric]`.
    /// None when no item has the metric; an error naming the line when only some do.
    pub fn metric(&self, metric: &str) -> Result<Option<BTreeMap<usize, f64>>> {
        let mut values = BTreeMap::new();
        let mut missing = None;
        for (&doc_id, item) in &self.items {
            match item_metric(&item.value, metric) {
                Some(v) => {
                    values.insert(doc_id, v);
                }
                None => {
                    missing.get_or_insert(item.line);
                }
            }
        }
        match missing {
            None if values.is_empty() => Ok(None),
            None => Ok(Some(values)),
            Some(_) if values.is_empty() => Ok(None),
            Some(line) => bail!(
                "{}: line {line}: no numeric per-item value for metric \"{metric}\" (other items have one)",
                self.path.display()
            ),
        }
    }
}

/// The per-item value of a metric in one samples object (see [`TaskSamples::metric`]).
pub fn item_metric(object: &Value, metric: &str) -> Option<f64> {
    object
        .get(metric)
        .and_then(Value::as_f64)
        .or_else(|| object.get("scores")?.get(metric)?.as_f64())
}

/// Reads scores.csv, checking the header against [`CSV_COLUMNS`].
pub fn read_scores_csv(path: &Path) -> Result<Vec<ScoreRow>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut reader = csv::Reader::from_reader(file);
    let header = reader
        .headers()
        .with_context(|| format!("{}: line 1: cannot read the header", path.display()))?
        .clone();
    if header.iter().ne(CSV_COLUMNS) {
        bail!(
            "{}: line 1: columns are `{}`, expected `{}`",
            path.display(),
            header.iter().collect::<Vec<_>>().join(","),
            CSV_COLUMNS.join(",")
        );
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: malformed CSV", path.display()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row: ScoreRow = record
            .deserialize(Some(&header))
            .with_context(|| format!("{}: line {line}: malformed row", path.display()))?;
        rows.push(row);
    }
    Ok(rows)
}

/// Writes scores.csv with the [`CSV_COLUMNS`] header (also when there are no rows), atomically.
pub fn write_scores_csv(path: &Path, rows: &[ScoreRow]) -> Result<()> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS)?;
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    write_atomic(path, &bytes)
}

/// Writes through a temporary file in the same folder and a rename, so readers never see half a
/// file. The temporary name is unique to this process and call (concurrent writers never share
/// one), and it is removed when writing fails (a full disk leaves no partial file behind).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create folder", dir.display()))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tmp.push(format!(".tmp.{}.{n}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    // Durable before the rename: a crash leaves the old file or the whole new one.
    let written = std::fs::File::create(&tmp)
        .with_context(|| format!("{}: cannot create", tmp.display()))
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, bytes)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("{}: cannot write", tmp.display()))
        })
        .and_then(|()| std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot replace", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).with_context(|| format!("{}: cannot encode", path.display()))?;
    write_atomic(path, text.as_bytes())
}

fn read_optional_json(path: &Path) -> Result<Option<Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: line {}: not valid JSON: {e}", path.display(), e.line()))?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    const HEADER: &str = "model,attention,backend,task,shots,n,metric,value,stderr,seconds,items_per_s\n";

    #[test]
    fn reads_both_sample_shapes() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "scores.csv",
            &format!(
                "{HEADER}m,native,flex,arc_easy,0,2,acc,0.5,0.5,1.0,2.0\nm,native,flex,gsm8k,0,2,exact_match,1.0,0.0,1.0,2.0\n"
            ),
        );
        write(
            dir.path(),
            "samples/arc_easy.jsonl",
            "{\"doc_id\":1,\"acc\":0.0,\"acc_norm\":1.0}\n{\"doc_id\":0,\"acc\":1.0,\"acc_norm\":1.0}\n",
        );
        write(
            dir.path(),
            "samples/gsm8k.jsonl",
            "{\"doc_id\":0,\"scores\":{\"exact_match\":1.0}}\n{\"doc_id\":1,\"scores\":{\"exact_match\":1.0}}\n",
        );
        let run = RunDir::load(dir.path()).unwrap();
        assert_eq!(run.rows.len(), 2);
        assert!(run.run.is_none() && run.identity.is_none());
        let acc = run.per_item("arc_easy", "acc").unwrap().unwrap();
        assert_eq!(acc.into_iter().collect::<Vec<_>>(), vec![(0, 1.0), (1, 0.0)]);
        let em = run.per_item("gsm8k", "exact_match").unwrap().unwrap();
        assert_eq!(em.len(), 2);
        assert!(run.per_item("gsm8k", "pass@1").unwrap().is_none());
        assert!(run.per_item("hellaswag", "acc").unwrap().is_none());

        // scores.csv edited (a fraction written as percent), or items its row did not count.
        for (row, needle) in [
            ("arc_easy,0,2,acc,50.0", "acc is 50 over 2 items, but its 2 items in"),
            ("arc_easy,0,3,acc,0.5", "acc is 0.5 over 3 items, but its 2 items in"),
        ] {
            write(
                dir.path(),
                "scores.csv",
                &format!("{HEADER}m,native,flex,{row},0.5,1.0,2.0\n"),
            );
            let err = format!(
                "{:#}",
                RunDir::load(dir.path())
                    .unwrap()
                    .per_item("arc_easy", "acc")
                    .unwrap_err()
            );
            assert!(
                err.contains("scores.csv") && err.contains("arc_easy.jsonl") && err.contains(needle),
                "{err}"
            );
        }
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            dir.path(),
            "scores.csv",
            &format!("{HEADER}m,native,flex,arc_easy,0,two,acc,0.5,0.5,1.0,2.0\n"),
        );
        let err = format!("{:#}", read_scores_csv(&csv).unwrap_err());
        assert!(err.contains("scores.csv: line 2"), "{err}");

        let bad_header = write(dir.path(), "other.csv", "model,task\nm,t\n");
        let err = format!("{:#}", read_scores_csv(&bad_header).unwrap_err());
        assert!(err.contains("other.csv: line 1: columns"), "{err}");

        let samples = write(
            dir.path(),
            "samples/t.jsonl",
            "{\"doc_id\":0,\"acc\":1.0}\n{\"doc_id\":0,\"acc\":0.0}\n",
        );
        let err = format!("{:#}", TaskSamples::load(&samples).unwrap_err());
        assert!(
            err.contains("t.jsonl: line 2: doc_id 0 already appears on line 1"),
            "{err}"
        );

        let torn = write(
            dir.path(),
            "samples/u.jsonl",
            "{\"doc_id\":0,\"acc\":1.0}\n{\"doc_id\":1,\"ac",
        );
        let err = format!("{:#}", TaskSamples::load(&torn).unwrap_err());
        assert!(err.contains("u.jsonl: line 2: not valid JSON"), "{err}");

        let partial = write(
            dir.path(),
            "samples/v.jsonl",
            "{\"doc_id\":0,\"acc\":1.0}\n{\"doc_id\":1}\n",
        );
        let err = format!("{:#}", TaskSamples::load(&partial).unwrap().metric("acc").unwrap_err());
        assert!(err.contains("v.jsonl: line 2: no numeric per-item value"), "{err}");

        write(dir.path(), "identity.json", "{\"model\": \n");
        let err = format!("{:#}", RunDir::load(dir.path()).unwrap_err());
        assert!(err.contains("scores.csv: line 2"), "{err}"); // scores.csv is read first
    }

    #[test]
    fn scores_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scores.csv");
        let row = ScoreRow {
            model: "m".into(),
            attention: "native".into(),
            backend: "flex".into(),
            task: "piqa".into(),
            shots: 0,
            n: 3,
            metric: "acc".into(),
            value: 2.0 / 3.0,
            stderr: f64::NAN,
            seconds: 1.5,
            items_per_s: 2.0,
        };
        write_scores_csv(&path, std::slice::from_ref(&row)).unwrap();
        let back = read_scores_csv(&path).unwrap();
        assert_eq!(back[0].value, row.value);
        assert!(back[0].stderr.is_nan());
        assert!(std::fs::read_to_string(&path).unwrap().starts_with(HEADER));
    }
}
