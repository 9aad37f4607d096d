//! Generative tasks: generate (KV-cached, batched), extract and score as
//! lm-eval does (tasks::score_responses), run generated code in the sandbox (tasks::CodeCheck →
//! sandbox::Sandbox), journal every finished item so a killed run resumes.

use std::collections::BTreeMap;

use anyhow::Context as _;
use rayon::prelude::*;
use sandbox::{Limits, Sandbox};
use serde::{Deserialize, Serialize};
use tasks::{GenItem, GenMetric, GenTaskInstance, ItemScores};

use super::{GenSettings, Scored, TaskContext, TaskScores, journaled, task_scores};
use crate::journal::Record;
use crate::lm::{GenRequest, Generation, StopReason};
use crate::sampling::item_seed;

/// Items generated between two journal writes, per row of the batch.
const ITEMS_PER_CHUNK_PER_ROW: usize = 2;

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

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExecutionRecord {
    pub passed: bool,
    pub status: String,
    pub wall_ms: f64,
    /// The end of stderr (the assertion or error), for reading failures.
    pub stderr_tail: String,
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

/// The sandbox for code tasks, built once per run (its set-up checks run a test program).
pub fn code_sandbox(task: &GenTaskInstance) -> anyhow::Result<Sandbox> {
    let timeout = task
        .items
        .iter()
        .filter_map(|i| i.code.as_ref().map(|c| c.timeout_s))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let limits = Limits {
        wall: std::time::Duration::from_secs_f64(timeout),
        cpu_seconds: timeout.ceil() as u64,
        ..Limits::default()
    };
    let sandbox = Sandbox::new(limits).context("setting up the code sandbox")?;
    for warning in sandbox.capabilities().warnings() {
        eprintln!("sandbox warning: {warning}");
    }
    Ok(sandbox)
}

/// Generates and scores a task's missing items, journaling as it goes; its per-item metrics.
pub fn run(context: &TaskContext, task: &GenTaskInstance) -> anyhow::Result<TaskScores> {
    let settings = &context.generation;
    let mut sandbox = None;
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
            let prompts = chunk
                .iter()
                .map(|item| prompt_of(context, item))
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
                        if sandbox.is_none() {
                            sandbox = Some(code_sandbox(task)?);
                        }
                        let runs = execute(sandbox.as_ref().expect("made above"), code, &responses)?;
                        let passed: Vec<bool> = runs.iter().map(|r| r.passed).collect();
                        (tasks::score_code(task, &passed), Some(runs))
                    }
                    None => (tasks::score_responses(task, item, &responses), None),
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
    let metrics: Vec<String> = task.metrics.iter().map(|m| metric_name(*m, settings.samples)).collect();
    task_scores(&task.name, task.shots, &metrics, &samples)
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
fn prompt_of(context: &TaskContext, item: &GenItem) -> anyhow::Result<String> {
    match context.chat {
        Some(chat) => chat
            .wrap(&item.description, &item.context)
            .with_context(|| format!("doc {}", item.doc_id)),
        None => Ok(item.context.clone()),
    }
}

/// Runs each sample's program in the sandbox (in parallel: each run is its own process).
fn execute(sandbox: &Sandbox, code: &tasks::CodeCheck, responses: &[String]) -> anyhow::Result<Vec<ExecutionRecord>> {
    responses
        .par_iter()
        .map(|response| {
            let run = sandbox
                .run_python(&code.program(response))
                .with_context(|| format!("running {} in the sandbox", code.task_id))?;
            let tail: String = {
                let chars: Vec<char> = run.stderr.chars().collect();
                chars[chars.len().saturating_sub(400)..].iter().collect()
            };
            Ok(ExecutionRecord {
                passed: run.passed(),
                status: format!("{:?}", run.status),
                wall_ms: run.wall.as_secs_f64() * 1000.0,
                stderr_tail: tail,
            })
        })
        .collect()
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
