//! lm-evaluation-harness 0.4's output files, so that tooling built for lm-eval reads our runs:
//! `results_<timestamp>.json` (aggregated scores, groups, configs, counts) and
//! `samples_<task>_<timestamp>.jsonl` (one line per document and filter), written field for
//! field as lm-eval 0.4.13 writes them (`lm_eval/evaluator.py` `evaluate`, `consolidate_results`,
//! `lm_eval/loggers/evaluation_tracker.py`): metric keys `"<metric>,<filter>"`, their stderrs
//! `"<metric>_stderr,<filter>"` ("N/A" where undefined), `resps` as Python `str()` of each value,
//! `arguments` as `{"gen_args_i": {"arg_j": ...}}`, and `doc_hash` / `prompt_hash` /
//! `target_hash` as sha256 of `json.dumps(doc, indent=2)`, the first request's context and
//! `str(target)`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::python_json::{dumps, dumps_indented};
use crate::run_dir::write_atomic;

/// One metric of a task or group under one filter.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricResult {
    /// lm-eval's metric name (`acc`, `exact_match`, `pass@1`).
    pub metric: String,
    /// lm-eval's filter name (`none`, `strict-match`, `create_test`).
    pub filter: String,
    pub value: f64,
    /// NaN where undefined (one item): written "N/A", as lm-eval does.
    pub stderr: f64,
    pub higher_is_better: bool,
}

/// A task's aggregated results.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskResult {
    pub name: String,
    pub alias: String,
    pub version: Value,
    pub shots: usize,
    /// Documents in the evaluated split, and those evaluated (after --limit).
    pub original: usize,
    pub effective: usize,
    pub metrics: Vec<MetricResult>,
    /// The task's configuration as lm-eval's `configs` section shows it.
    pub config: Value,
}

/// A group's aggregated results.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupResult {
    pub name: String,
    pub alias: String,
    pub version: Value,
    /// Direct members (tasks or groups), in order.
    pub subtasks: Vec<String>,
    pub sample_len: usize,
    pub metrics: Vec<MetricResult>,
}

/// Run-level fields of the results file.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// lm-eval's `config` section: model, batch size, limit, seeds.
    pub config: Value,
    /// Unix time of the start.
    pub date: f64,
    pub total_evaluation_time_seconds: f64,
    pub model_name: String,
    pub max_length: usize,
    pub system_instruction: Option<String>,
    pub chat_template: Option<String>,
    pub harness_git: String,
}

/// One line of a samples file: one document under one filter.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleLine {
    pub doc_id: usize,
    pub doc: Value,
    pub target: String,
    /// Per request, its arguments: (context, continuation) strings, or (context, gen_kwargs).
    pub arguments: Vec<Vec<Value>>,
    /// Per request, its responses: `[[loglikelihood, is_greedy]]` or `[[text, ...]]`, as values
    /// that Python's `str()` turns into the strings lm-eval writes.
    pub resps: Vec<Value>,
    pub filtered_resps: Vec<Value>,
    pub filter: String,
    /// (metric, value) in lm-eval's order.
    pub metrics: Vec<(String, f64)>,
}

impl SampleLine {
    pub fn doc_hash(&self) -> String {
        sha256(&dumps_indented(&self.doc, 2))
    }

    pub fn prompt_hash(&self) -> String {
        let first = self.arguments.first().and_then(|a| a.first());
        sha256(first.and_then(Value::as_str).unwrap_or(""))
    }

    pub fn target_hash(&self) -> String {
        sha256(&self.target)
    }

    pub fn to_json(&self) -> Value {
        let arguments: Map<String, Value> = self
            .arguments
            .iter()
            .enumerate()
            .map(|(i, args)| {
                let args: Map<String, Value> = args
                    .iter()
                    .enumerate()
                    .map(|(j, a)| (format!("arg_{j}"), a.clone()))
                    .collect();
                (format!("gen_args_{i}"), Value::Object(args))
            })
            .collect();
        let mut line = json!({
            "doc_id": self.doc_id,
            "doc": self.doc,
            "target": self.target,
            "arguments": arguments,
            "resps": py_str_list(&Value::Array(self.resps.clone())),
            "filtered_resps": py_str_list(&Value::Array(self.filtered_resps.clone())),
            "filter": self.filter,
            "metrics": self.metrics.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(),
            "doc_hash": self.doc_hash(),
            "prompt_hash": self.prompt_hash(),
            "target_hash": self.target_hash(),
        });
        for (metric, value) in &self.metrics {
            line[metric] = json!(value);
        }
        line
    }
}

/// lm-eval's `sanitize_list`: every leaf of nested lists as Python's `str()` of it.
fn py_str_list(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(py_str_list).collect()),
        Value::String(s) => Value::String(s.clone()),
        Value::Bool(b) => Value::String(if *b { "True" } else { "False" }.into()),
        Value::Number(n) => Value::String(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => crate::python_json::float_repr(f),
            _ => n.to_string(),
        }),
        Value::Null => Value::String("None".into()),
        other => Value::String(dumps(other)),
    }
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// lm-eval's timestamp in file names: `datetime.now().isoformat().replace(":", "-")`.
pub fn file_timestamp(unix_seconds: f64) -> String {
    let secs = unix_seconds.floor() as i64;
    let micros = ((unix_seconds - secs as f64) * 1e6).round().min(999_999.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::run_record::civil_date(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}.{micros:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn metric_entries(metrics: &[MetricResult], entry: &mut Map<String, Value>) {
    for m in metrics {
        entry.insert(format!("{},{}", m.metric, m.filter), json!(m.value));
        let stderr = if m.stderr.is_finite() {
            json!(m.stderr)
        } else {
            json!("N/A")
        };
        entry.insert(format!("{}_stderr,{}", m.metric, m.filter), stderr);
    }
}

fn higher_is_better(metrics: &[MetricResult]) -> Value {
    let map: Map<String, Value> = metrics
        .iter()
        .map(|m| (m.metric.clone(), Value::Bool(m.higher_is_better)))
        .collect();
    Value::Object(map)
}

/// The results file's JSON.
pub fn results_json(
    tasks: &[TaskResult],
    groups: &[GroupResult],
    run: &RunInfo,
    task_hashes: &Map<String, Value>,
) -> Value {
    let mut results = Map::new();
    let (mut configs, mut versions, mut n_shot, mut better, mut n_samples) =
        (Map::new(), Map::new(), Map::new(), Map::new(), Map::new());
    for task in tasks {
        let mut entry = Map::new();
        entry.insert("name".into(), json!(task.name));
        entry.insert("alias".into(), json!(task.alias));
        entry.insert("sample_len".into(), json!(task.effective));
        metric_entries(&task.metrics, &mut entry);
        results.insert(task.name.clone(), Value::Object(entry));
        configs.insert(task.name.clone(), task.config.clone());
        versions.insert(task.name.clone(), task.version.clone());
        n_shot.insert(task.name.clone(), json!(task.shots));
        better.insert(task.name.clone(), higher_is_better(&task.metrics));
        n_samples.insert(
            task.name.clone(),
            json!({"original": task.original, "effective": task.effective}),
        );
    }
    let mut group_entries = Map::new();
    let mut group_subtasks = Map::new();
    for group in groups {
        let mut entry = Map::new();
        entry.insert("alias".into(), json!(group.alias));
        entry.insert("name".into(), json!(group.name));
        entry.insert("sample_len".into(), json!(group.sample_len));
        metric_entries(&group.metrics, &mut entry);
        let counts: Map<String, Value> = group
            .metrics
            .iter()
            .map(|m| (format!("{},{}", m.metric, m.filter), json!(group.sample_len)))
            .collect();
        entry.insert("sample_count".into(), Value::Object(counts));
        results.insert(group.name.clone(), Value::Object(entry.clone()));
        group_entries.insert(group.name.clone(), Value::Object(entry));
        group_subtasks.insert(group.name.clone(), json!(group.subtasks));
        versions.insert(group.name.clone(), group.version.clone());
        better.insert(group.name.clone(), higher_is_better(&group.metrics));
    }
    let mut out = Map::new();
    out.insert("results".into(), Value::Object(results));
    if !group_entries.is_empty() {
        out.insert("groups".into(), Value::Object(group_entries));
    }
    for (key, value) in [
        ("group_subtasks", Value::Object(group_subtasks)),
        ("configs", Value::Object(configs)),
        ("versions", Value::Object(versions)),
        ("n-shot", Value::Object(n_shot)),
        ("higher_is_better", Value::Object(better)),
        ("n-samples", Value::Object(n_samples)),
        ("config", run.config.clone()),
        ("git_hash", json!(run.harness_git)),
        ("date", json!(run.date)),
        ("lm_eval_version", json!("0.4 (format; written by llm-harness)")),
        ("max_length", json!(run.max_length)),
        ("task_hashes", Value::Object(task_hashes.clone())),
        ("model_source", json!("llm-harness")),
        ("model_name", json!(run.model_name)),
        ("model_name_sanitized", json!(sanitize_model_name(&run.model_name))),
        ("system_instruction", json!(run.system_instruction)),
        (
            "system_instruction_sha",
            json!(run.system_instruction.as_deref().map(sha256)),
        ),
        ("fewshot_as_multiturn", json!(false)),
        ("chat_template", json!(run.chat_template)),
        ("chat_template_sha", json!(run.chat_template.as_deref().map(sha256))),
        (
            "total_evaluation_time_seconds",
            json!(crate::python_json::float_repr(run.total_evaluation_time_seconds)),
        ),
    ] {
        out.insert(key.into(), value);
    }
    Value::Object(out)
}

/// lm-eval's `sanitize_model_name`: path separators and other unsafe characters as `__`.
fn sanitize_model_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c.to_string()
            } else {
                "__".into()
            }
        })
        .collect()
}

/// A task's hash in the results file: sha256 of its samples' doc, prompt and target hashes.
pub fn task_hash(lines: &[SampleLine]) -> String {
    let joined: String = lines
        .iter()
        .map(|l| format!("{}{}{}", l.doc_hash(), l.prompt_hash(), l.target_hash()))
        .collect();
    sha256(&joined)
}

/// Writes `results_<stamp>.json` and one `samples_<task>_<stamp>.jsonl` per task into `dir`
/// (replacing earlier lm-eval files there, so that a resumed run leaves one set); returns the
/// results file's path.
pub fn write(
    dir: &Path,
    stamp: &str,
    tasks: &[TaskResult],
    groups: &[GroupResult],
    run: &RunInfo,
    samples: &[(String, Vec<SampleLine>)],
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let ours = (name.starts_with("results_") && name.ends_with(".json"))
            || (name.starts_with("samples_") && name.ends_with(".jsonl"));
        if ours {
            std::fs::remove_file(entry.path())?;
        }
    }
    let mut hashes = Map::new();
    for (task, lines) in samples {
        hashes.insert(task.clone(), json!(task_hash(lines)));
        let text: String = lines.iter().map(|l| dumps(&l.to_json()) + "\n").collect();
        write_atomic(&dir.join(format!("samples_{task}_{stamp}.jsonl")), text.as_bytes())?;
    }
    let path = dir.join(format!("results_{stamp}.json"));
    write_atomic(
        &path,
        dumps_indented(&results_json(tasks, groups, run, &hashes), 2).as_bytes(),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piqa_line_hashes_as_lm_eval_does() {
        // The first line of ../shared/lm-eval-format/samples_piqa_*.jsonl, rebuilt.
        let reference = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/lm-eval-format"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().starts_with("samples_piqa_"))
            .unwrap()
            .path();
        let text = std::fs::read_to_string(reference).unwrap();
        let want: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let args = &want["arguments"];
        let line = SampleLine {
            doc_id: 0,
            doc: want["doc"].clone(),
            target: "0".into(),
            arguments: (0..2)
                .map(|i| {
                    let a = &args[format!("gen_args_{i}")];
                    vec![a["arg_0"].clone(), a["arg_1"].clone()]
                })
                .collect(),
            resps: vec![
                json!([[-110.69859313964844, false]]),
                json!([[-110.98271942138672, false]]),
            ],
            filtered_resps: vec![json!([-110.69859313964844, false]), json!([-110.98271942138672, false])],
            filter: "none".into(),
            metrics: vec![("acc".into(), 1.0), ("acc_norm".into(), 0.0)],
        };
        let ours = line.to_json();
        assert_eq!(ours, want);
        // Key order too, as lm-eval writes it.
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<String>>();
        assert_eq!(keys(&ours), keys(&want));
        assert_eq!(keys(&ours["doc"]), keys(&want["doc"]));
    }

    #[test]
    fn timestamps_look_like_lm_evals() {
        assert_eq!(file_timestamp(1_795_939_165.181_013_6), "2026-11-29T07-59-25.181014");
    }
}
