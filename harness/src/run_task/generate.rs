//! Generative tasks: generate (KV-cached, batched), extract and score as lm-eval does
//! (`Task::score_generation`), run generated code in the sandbox ([`super::code`]), journal every
//! finished item so a killed run resumes.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tasks::{GenItem, GenMetric, Item, ItemScores, Request, Task};

use super::code::{CodeRunner, ExecutionRecord};
use super::{GenSettings, Scored, TaskContext, TaskScores, journaled, task_scores};
use crate::chat::ChatPrompt;
use crate::journal::Record;
use crate::lm::{GenRequest, Generation, StopReason};
use crate::sampling::item_seed;

/// Items generated between two journal writes, per row of the batch.
const ITEMS_PER_CHUNK_PER_ROW: usize = 4;

/// One generative item's outcome, as written to `samples/<task>.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GenSample {
    pub doc_id: usize,
    /// The exact text the model was given (after the chat template, when used).
    pub prompt: String,
    pub target: String,
    /// One per sample, cut at the stop strings.
    pub responses: Vec<String>,
    pub stop_reasons: Vec<StopReason>,
    pub generated_tokens: Vec<usize>,
    /// Per metric: the answer compared (after extraction and, with several samples, the vote).
    pub answers: BTreeMap<String, String>,
    /// Per metric: each sample's extracted answer.
    pub answers_per_sample: BTreeMap<String, Vec<String>>,
    /// Code tasks: each sample's execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executions: Option<Vec<ExecutionRecord>>,
    /// Per metric: this item's value.
    pub scores: BTreeMap<String, f64>,
    /// This item's share of the run time, for throughput that survives a resume.
    pub seconds: f64,
    /// Prompt tokens given to the model (0 in journals written before they were recorded).
    #[serde(default)]
    pub prompt_tokens: usize,
    /// Whether the prompt was cut on the left to fit the model's length.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Record for GenSample {
    fn doc_id(&self) -> usize {
        self.doc_id
    }
    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}

impl Scored for GenSample {
    fn value(&self, metric: &str) -> Option<f64> {
        self.scores.get(metric).copied()
    }
    fn seconds(&self) -> f64 {
        self.seconds
    }
    fn truncated(&self) -> bool {
        self.truncated
    }
}

/// The metric names a generative task reports with `samples` per item: lm-eval's names for one
/// sample; maj@k for several samples of a text task (exact_match of the voted answer).
pub fn metric_name(metric: GenMetric, samples: usize) -> String {
    match metric {
        GenMetric::ExactMatch if samples > 1 => format!("maj@{samples}"),
        GenMetric::ExactMatchFlexible if samples > 1 => format!("maj@{samples}_flexible"),
        other => other.name(),
    }
}

/// Generates and scores a task's missing items, journaling as it goes; its per-item metrics.
pub fn run(context: &TaskContext, task: &Task) -> anyhow::Result<TaskScores> {
    let settings = &context.generation;
    let is_code = task
        .items
        .iter()
        .any(|i| matches!(&i.request, Request::Generate(g) if g.code.is_some()));
    let runner = is_code.then(|| CodeRunner::new(task)).transpose()?;
    let per_chunk = (context.lm.batch_size * ITEMS_PER_CHUNK_PER_ROW)
        .div_ceil(settings.samples)
        .max(1);
    let samples = journaled(
        context,
        &task.name,
        &task.items,
        |i| i.doc_id,
        per_chunk,
        |chunk| {
            let chunk = chunk
                .iter()
                .map(|item| generation_item(task, item))
                .collect::<anyhow::Result<Vec<&GenItem>>>()?;
            let prompts = chunk
                .iter()
                .map(|item| prompt_of(context.chat, item))
                .collect::<anyhow::Result<Vec<String>>>()?;
            let requests: Vec<GenRequest> = chunk
                .iter()
                .zip(&prompts)
                .flat_map(|(item, prompt)| requests_of(settings, &task.name, item, prompt))
                .collect();
            let generations = context.lm.generate_until(&requests)?;
            let mut samples = Vec::with_capacity(chunk.len());
            for ((item, prompt), outs) in chunk.iter().zip(prompts).zip(generations.chunks(settings.samples)) {
                let responses: Vec<String> = outs.iter().map(|g| g.text.clone()).collect();
                let (scores, executions) = match &item.code {
                    Some(code) => {
                        let runner = runner.as_ref().context("a code item in a task without code")?;
                        let runs = runner.run(code, &responses)?;
                        let passed: Vec<bool> = runs.iter().map(|r| r.passed).collect();
                        (task.score_code(&passed), Some(runs))
                    }
                    None => (task.score_generation(item, &responses), None),
                };
                samples.push(sample_of(
                    item,
                    prompt,
                    outs,
                    responses,
                    &scores,
                    executions,
                    settings.samples,
                ));
            }
            Ok(samples)
        },
    )?;
    task_scores(&task.name, task.shots, &metric_names(task, settings.samples), &samples)
}

fn generation_item<'t>(task: &Task, item: &'t Item) -> anyhow::Result<&'t GenItem> {
    match &item.request {
        Request::Generate(g) => Ok(g),
        Request::Choice(_) => anyhow::bail!("{}: doc {} is not a generation item", task.name, item.doc_id),
    }
}

/// The metrics a generative task reports with `samples` per item: code tasks pass@k for the
/// usual k (1, 10, 100) that `samples` allows (code_eval reports pass@k only for k ≤ n).
pub fn metric_names(task: &Task, samples: usize) -> Vec<String> {
    let metrics: Vec<GenMetric> = task.gen_metrics().into_iter().map(|(m, _)| m).collect();
    if metrics.iter().any(|m| matches!(m, GenMetric::PassAt(_))) {
        return [1, 10, 100]
            .into_iter()
            .filter(|&k| k <= samples)
            .map(|k| GenMetric::PassAt(k).name())
            .collect();
    }
    metrics.into_iter().map(|m| metric_name(m, samples)).collect()
}

/// `samples` requests of one item, each with its own seed (so a sample does not depend on
/// batching).
fn requests_of<'r>(
    settings: &'r GenSettings,
    task: &'r str,
    item: &'r GenItem,
    prompt: &'r str,
) -> impl Iterator<Item = GenRequest> + 'r {
    (0..settings.samples).map(move |s| GenRequest {
        context: prompt.to_string(),
        until: item.until.clone(),
        max_gen_toks: settings.max_gen_toks.unwrap_or(item.max_gen_toks),
        sampling: settings.sampling,
        seed: item_seed(settings.run_seed, task, item.doc_id, s),
    })
}

/// The text given to the model: the item's context, or with --chat the context wrapped in the
/// chat template.
pub fn prompt_of(chat: Option<&ChatPrompt>, item: &GenItem) -> anyhow::Result<String> {
    match chat {
        Some(chat) => chat
            .wrap(&item.description, &item.context)
            .with_context(|| format!("doc {}", item.doc_id)),
        None => Ok(item.context.clone()),
    }
}

fn sample_of(
    item: &GenItem,
    prompt: String,
    outs: &[Generation],
    responses: Vec<String>,
    scores: &ItemScores,
    executions: Option<Vec<ExecutionRecord>>,
    samples: usize,
) -> GenSample {
    let name = |s: &tasks::MetricScore| metric_name(s.metric, samples);
    GenSample {
        doc_id: item.doc_id,
        prompt,
        target: item.target.clone(),
        responses,
        stop_reasons: outs.iter().map(|g| g.stop).collect(),
        generated_tokens: outs.iter().map(|g| g.ids.len()).collect(),
        answers: scores.scores.iter().map(|s| (name(s), s.answer.clone())).collect(),
        answers_per_sample: scores
            .scores
            .iter()
            .map(|s| (name(s), s.per_response.clone()))
            .collect(),
        executions,
        scores: scores.scores.iter().map(|s| (name(s), s.value)).collect(),
        seconds: 0.0,
        prompt_tokens: outs.first().map_or(0, |g| g.prompt_tokens),
        truncated: outs.iter().any(|g| g.truncated),
    }
}
