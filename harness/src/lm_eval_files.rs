//! A finished run as lm-evaluation-harness writes it (reports::lm_eval): the results file and
//! one samples file per task, built from the plan's tasks (documents, targets, configs), the
//! journals (requests, responses, per-item scores) and scores.csv. `harness eval` writes them
//! after scores.csv; `harness export --format lm-eval RUN_DIR` writes them for an existing run.
//!
//! Metric names are lm-eval's: `acc,none`, `exact_match,strict-match`, `pass@1,create_test`;
//! maj@k of a text task is `exact_match` under a filter named `maj@k-<filter>` (lm-eval's
//! self-consistency tasks name their voting filter `maj@k`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use reports::lm_eval::{GroupResult, MetricResult, RunInfo, SampleLine, TaskResult};
use reports::python_json::str_of;
use reports::run_dir::ScoreRow;
use serde_json::{Value, json};
use tasks::{GenMetric, Item, OutputType, Request, Task};

use crate::journal::{Journal, Record, check_docs};
use crate::options::RunOptions;
use crate::plan::RunPlan;
use crate::run_task::Scored;
use crate::run_task::generate::{GenSample, metric_name};
use crate::run_task::multiple_choice::McSample;

/// What the results file says about the run itself.
pub struct RunFacts {
    /// Unix seconds at the start, and the evaluation's wall time.
    pub started: f64,
    pub seconds: f64,
    pub max_length: usize,
    pub chat_template: Option<String>,
}

/// Writes results_<stamp>.json and samples_<task>_<stamp>.jsonl into the run folder.
pub fn write(plan: &RunPlan, rows: &[ScoreRow], facts: &RunFacts) -> anyhow::Result<PathBuf> {
    let options = &plan.options;
    let samples_k = options.samples();
    let mut results = Vec::new();
    let mut samples = Vec::new();
    for task in &plan.tasks {
        let lines = match task.output_type {
            OutputType::MultipleChoice => choice_lines(task, &read_journal::<McSample>(&plan.out_dir, task)?),
            OutputType::GenerateUntil => {
                generation_lines(task, &read_journal::<GenSample>(&plan.out_dir, task)?, samples_k)
            }
        };
        results.push(task_result(plan, task, rows)?);
        samples.push((task.name.clone(), lines));
    }
    let groups: Vec<GroupResult> = plan
        .groups
        .iter()
        .map(|group| GroupResult {
            name: group.name.clone(),
            alias: plan
                .registry
                .group(&group.name)
                .and_then(|g| g.alias.clone())
                .unwrap_or_else(|| group.name.clone()),
            version: json!(null),
            subtasks: plan.registry.children(&group.name).unwrap_or_default(),
            sample_len: rows.iter().find(|r| r.task == group.name).map_or(0, |r| r.n),
            metrics: row_metrics(rows, &group.name, |metric| lm_eval_key(None, metric, samples_k)),
        })
        .collect();
    let run = RunInfo {
        config: json!({
            "model": plan.model_name, "model_args": null, "batch_size": options.batch_size(), "batch_sizes": [],
            "device": options.backend().to_string(), "limit": options.limit, "gen_kwargs": null,
            "random_seed": options.seed(), "numpy_seed": options.seed(), "torch_seed": options.seed(),
            "fewshot_seed": options.seed(),
        }),
        date: facts.started,
        total_evaluation_time_seconds: facts.seconds,
        model_name: plan.model_name.clone(),
        max_length: facts.max_length,
        system_instruction: options.system_prompt.clone(),
        chat_template: facts.chat_template.clone(),
        harness_git: env!("HARNESS_GIT_HASH").into(),
    };
    let stamp = reports::lm_eval::file_timestamp(now());
    reports::lm_eval::write(&plan.out_dir, &stamp, &results, &groups, &run, &samples)
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A finished task's journal: one record for each of the run's documents, and no other (the
/// files would otherwise claim documents they lack, or show one the run never had).
fn read_journal<R: Record>(out_dir: &Path, task: &Task) -> anyhow::Result<Vec<R>> {
    let path = out_dir.join("samples").join(format!("{}.jsonl", task.name));
    let records = Journal::<R>::read(&path)?;
    let planned = task.items.iter().map(|i| i.doc_id).collect();
    check_docs(&path, records.iter().map(Record::doc_id), &planned, &task.name, true)?;
    Ok(records)
}

/// The task's entry in the results file, its metrics from scores.csv.
fn task_result(plan: &RunPlan, task: &Task, rows: &[ScoreRow]) -> anyhow::Result<TaskResult> {
    let samples = plan.options.samples();
    Ok(TaskResult {
        name: task.name.clone(),
        alias: task
            .config
            .get("task_alias")
            .and_then(Value::as_str)
            .unwrap_or(&task.name)
            .to_string(),
        version: task.version.clone().unwrap_or(Value::Null),
        shots: task.shots,
        original: plan
            .registry
            .item_count(&task.name)
            .with_context(|| format!("{}: counting its documents", task.name))?,
        effective: task.items.len(),
        metrics: row_metrics(rows, &task.name, |metric| lm_eval_key(Some(task), metric, samples)),
        config: task.config.clone(),
    })
}

/// scores.csv's rows of one task or group as lm-eval metrics.
fn row_metrics(rows: &[ScoreRow], task: &str, key: impl Fn(&str) -> (String, String)) -> Vec<MetricResult> {
    rows.iter()
        .filter(|r| r.task == task)
        .map(|r| {
            let (metric, filter) = key(&r.metric);
            MetricResult {
                metric,
                filter,
                value: r.value,
                stderr: r.stderr,
                higher_is_better: true,
            }
        })
        .collect()
}

/// (lm-eval metric, filter) of one of our metric names.
fn lm_eval_key(task: Option<&Task>, ours: &str, samples: usize) -> (String, String) {
    let split = |key: &str| {
        let (m, f) = key.split_once(',').unwrap_or((key, "none"));
        (m.to_string(), f.to_string())
    };
    let Some(task) = task.filter(|t| t.output_type == OutputType::GenerateUntil) else {
        return (ours.to_string(), "none".into());
    };
    let known = task
        .gen_metrics()
        .into_iter()
        .map(|(m, _)| m)
        .chain([1, 10, 100].map(GenMetric::PassAt));
    for metric in known {
        if metric_name(metric, samples) == ours {
            let (m, f) = split(&task.metric_key(metric).unwrap_or_else(|| metric.name()));
            return match ours.starts_with("maj@") {
                true => (m, format!("maj@{samples}-{f}")),
                false => (m, f),
            };
        }
    }
    (ours.to_string(), "none".into())
}

fn item_of(task: &Task, doc_id: usize) -> Option<&Item> {
    task.items.iter().find(|i| i.doc_id == doc_id)
}

/// One line per document: each choice's request and `[loglikelihood, is_greedy]`.
fn choice_lines(task: &Task, samples: &[McSample]) -> Vec<SampleLine> {
    let metrics: Vec<&str> = task.choice_metrics().iter().map(|m| m.name()).collect();
    samples
        .iter()
        .filter_map(|s| {
            let item = item_of(task, s.doc_id)?;
            let contexts = s
                .contexts
                .clone()
                .unwrap_or_else(|| vec![s.prompt.clone(); s.choices.len()]);
            Some(SampleLine {
                doc_id: s.doc_id,
                doc: item.doc.clone(),
                target: str_of(&item.target),
                arguments: contexts
                    .iter()
                    .zip(&s.choices)
                    .map(|(c, x)| vec![json!(c), json!(x)])
                    .collect(),
                resps: s
                    .loglikelihoods
                    .iter()
                    .zip(&s.is_greedy)
                    .map(|(ll, g)| json!([[ll, g]]))
                    .collect(),
                filtered_resps: s
                    .loglikelihoods
                    .iter()
                    .zip(&s.is_greedy)
                    .map(|(ll, g)| json!([ll, g]))
                    .collect(),
                filter: "none".into(),
                metrics: metrics
                    .iter()
                    .filter_map(|m| Some((m.to_string(), s.value(m)?)))
                    .collect(),
            })
        })
        .collect()
}

/// One line per document and filter: the responses, the filtered answer, the metric.
fn generation_lines(task: &Task, samples: &[GenSample], k: usize) -> Vec<SampleLine> {
    let kwargs = task.config.get("generation_kwargs").cloned().unwrap_or(json!({}));
    let mut lines = Vec::new();
    for (metric, ours) in task_metrics(task, k) {
        let (lm_metric, filter) = lm_eval_key(Some(task), &ours, k);
        for s in samples {
            let Some(item) = item_of(task, s.doc_id) else { continue };
            let Some(&value) = s.scores.get(&ours) else { continue };
            let filtered = match (&item.request, metric) {
                (Request::Generate(g), GenMetric::PassAt(_)) => match &g.code {
                    Some(code) => json!([s
                        .responses
                        .iter()
                        .map(|r| format!("{}{r}", code.prefix))
                        .collect::<Vec<_>>()]),
                    None => json!([s.responses]),
                },
                _ => json!([s.answers.get(&ours).cloned().unwrap_or_default()]),
            };
            lines.push(SampleLine {
                doc_id: s.doc_id,
                doc: item.doc.clone(),
                target: str_of(&item.target),
                arguments: vec![vec![json!(s.prompt), kwargs.clone()]],
                resps: vec![json!(s.responses)],
                filtered_resps: filtered.as_array().cloned().unwrap_or_default(),
                filter: filter.clone(),
                metrics: vec![(lm_metric.clone(), value)],
            });
        }
    }
    lines
}

/// (metric, our name) of a generative task at `k` samples per item.
fn task_metrics(task: &Task, k: usize) -> Vec<(GenMetric, String)> {
    crate::run_task::generate::metric_names(task, k)
        .into_iter()
        .filter_map(|name| {
            let known = task
                .gen_metrics()
                .into_iter()
                .map(|(m, _)| m)
                .chain([1, 10, 100].map(GenMetric::PassAt));
            known
                .into_iter()
                .find(|m| metric_name(*m, k) == name)
                .map(|m| (m, name))
        })
        .collect()
}

#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// The output format (only `lm-eval`: lm-evaluation-harness 0.4's results and samples files).
    #[arg(long, value_parser = ["lm-eval"])]
    pub format: String,
    /// The run folder (as `harness eval` wrote it).
    pub run_dir: PathBuf,
}

/// `harness export --format lm-eval RUN_DIR`: the run's own options rebuild its plan (its
/// identity must still match: same model, data and task definitions); the files are written
/// from its journals and scores.csv.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let dir = &args.run_dir;
    let record_path = dir.join("run.json");
    let text = std::fs::read_to_string(&record_path).with_context(|| {
        format!(
            "{}: cannot read (is this a finished run folder?)",
            record_path.display()
        )
    })?;
    let record: reports::run_record::RunRecord = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a run record of this harness version", record_path.display()))?;
    let mut options: RunOptions = serde_json::from_value(record.config.clone())
        .with_context(|| format!("{}: its \"config\" is not a run configuration", record_path.display()))?;
    options.out = Some(dir.clone());
    let plan = RunPlan::new(&options)?;
    let identity =
        reports::identity::RunIdentity::read(dir)?.with_context(|| format!("{}: no identity.json", dir.display()))?;
    let differences: Vec<String> = identity.differences(&plan.identity).into_iter().map(|d| d.0).collect();
    anyhow::ensure!(
        differences.is_empty(),
        "{}: the run's model, data or tasks changed since it ran (differs in: {}); cannot rebuild its documents",
        dir.display(),
        differences.join(", ")
    );
    // scores.csv goes out as lm-eval's numbers: it must be what the journals say.
    let run = reports::run_dir::RunDir::load(dir)?;
    for row in &run.rows {
        run.per_item(&row.task, &row.metric)?;
    }
    let rows = run.rows;
    let facts = RunFacts {
        started: reports::run_record::unix_seconds(&record.started).unwrap_or(0.0),
        seconds: record.seconds_this_invocation,
        max_length: plan.checkpoint.config().max_position_embeddings,
        chat_template: None,
    };
    let path = write(&plan, &rows, &facts)?;
    println!("wrote {} and its samples files", path.display());
    Ok(())
}
