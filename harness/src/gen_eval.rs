//! Generative tasks in `harness eval`: generate (KV-cached, batched), extract and score as
//! lm-eval does (tasks::score_responses), run generated code in the sandbox (tasks::CodeCheck →
//! sandbox::Sandbox), journal every finished item so a killed run resumes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use rayon::prelude::*;
use sandbox::{Limits, Sandbox};
use serde::{Deserialize, Serialize};
use tasks::{GenItem, GenTaskInstance, ItemScores};

use crate::chat::{ChatTemplate, resolve_system_prompt, system_message};
use crate::generate::{GenRequest, Generator, StopReason};
use crate::journal::{Journal, Record};
use crate::sampling::{Sampling, item_seed};

/// Items generated between two journal writes, per row of the batch.
const ITEMS_PER_CHUNK_PER_ROW: usize = 2;

/// How every generative task of a run is decoded.
pub struct GenSettings<'a> {
    pub samples: usize,
    pub sampling: Sampling,
    pub run_seed: u64,
    /// Overrides each task's max_gen_toks.
    pub max_gen_toks: Option<usize>,
    pub chat: Option<&'a ChatTemplate>,
    pub system_prompt: Option<String>,
}

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
}

impl Record for GenSample {
    fn doc_id(&self) -> usize {
        self.doc_id
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
pub fn metric_name(metric: tasks::GenMetric, samples: usize) -> String {
    match metric {
        tasks::GenMetric::ExactMatch if samples > 1 => format!("maj@{samples}"),
        tasks::GenMetric::ExactMatchFlexible if samples > 1 => format!("maj@{samples}_flexible"),
        other => other.name(),
    }
}

/// The sandbox for code tasks, built once per run (its set-up checks run a test program). The
/// task's timeout (code_eval's 3 s) is the run's CPU time; see `Limits::for_timeout` for why.
pub fn code_sandbox(task: &GenTaskInstance) -> anyhow::Result<Sandbox> {
    let timeout = task
        .items
        .iter()
        .filter_map(|i| i.code.as_ref().map(|c| c.timeout_s))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let limits = Limits::for_timeout(std::time::Duration::from_secs_f64(timeout));
    let sandbox = Sandbox::new(limits).context("setting up the code sandbox")?;
    for warning in sandbox.warnings() {
        eprintln!("sandbox warning: {warning}");
    }
    Ok(sandbox)
}

/// Generates and scores a task's missing items, journaling as it goes; all samples in doc order.
pub fn run_gen_task(
    generator: &Generator,
    task: &GenTaskInstance,
    settings: &GenSettings,
    out_dir: &Path,
    bar: &ProgressBar,
) -> anyhow::Result<Vec<GenSample>> {
    let mut journal: Journal<GenSample> = Journal::open(&out_dir.join("samples").join(format!("{}.jsonl", task.name)))?;
    let pending: Vec<&GenItem> = task
        .items
        .iter()
        .filter(|i| !journal.done().contains_key(&i.doc_id))
        .collect();
    bar.set_position((task.items.len() - pending.len()) as u64);
    let is_code = task.items.iter().any(|i| i.code.is_some());
    let sandbox = if is_code && !pending.is_empty() {
        Some(code_sandbox(task)?)
    } else {
        None
    };
    let per_chunk = (generator.batch_size * ITEMS_PER_CHUNK_PER_ROW)
        .div_ceil(settings.samples)
        .max(1);
    for chunk in pending.chunks(per_chunk) {
        let clock = Instant::now();
        let prompts = chunk
            .iter()
            .map(|item| prompt_of(task, item, settings))
            .collect::<anyhow::Result<Vec<String>>>()?;
        let requests: Vec<GenRequest> = chunk
            .iter()
            .zip(&prompts)
            .flat_map(|(item, prompt)| {
                (0..settings.samples).map(move |s| GenRequest {
                    context: prompt.clone(),
                    until: item.until.clone(),
                    max_gen_toks: settings.max_gen_toks.unwrap_or(item.max_gen_toks),
                    sampling: settings.sampling,
                    seed: item_seed(settings.run_seed, &task.name, item.doc_id, s),
                })
            })
            .collect();
        let generations = generator.generate(&requests, |_, _| Ok(()))?;
        let mut samples = Vec::with_capacity(chunk.len());
        for ((item, prompt), outs) in chunk.iter().zip(prompts).zip(generations.chunks(settings.samples)) {
            let responses: Vec<String> = outs.iter().map(|g| g.text.clone()).collect();
            let (scores, executions) = match (&item.code, &sandbox) {
                (Some(code), Some(sandbox)) => {
                    let runs = execute(sandbox, code, &responses)?;
                    let passed: Vec<bool> = runs.iter().map(|r| r.passed).collect();
                    (tasks::score_code(task, &passed), Some(runs))
                }
                _ => (tasks::score_responses(task, item, &responses), None),
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
        let share = clock.elapsed().as_secs_f64() / chunk.len() as f64;
        samples.iter_mut().for_each(|s| s.seconds = share);
        journal.append(samples)?;
        bar.inc(chunk.len() as u64);
    }
    journal.finish()
}

/// The text given to the model: the task's context, or with --chat the chat template over a
/// system turn (system prompt + description) and one user turn (shots + question).
fn prompt_of(task: &GenTaskInstance, item: &GenItem, settings: &GenSettings) -> anyhow::Result<String> {
    let Some(template) = settings.chat else {
        return Ok(item.context.clone());
    };
    let description = item.description.as_str();
    let user = item.context.strip_prefix(description).unwrap_or(&item.context);
    let system = system_message(
        settings.system_prompt.as_deref().map(resolve_system_prompt),
        description,
    );
    let rendered = template
        .render(system.as_deref(), user)
        .with_context(|| format!("{}: doc {}", task.name, item.doc_id))?;
    Ok(rendered.text)
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
    outs: &[crate::generate::Generation],
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
    }
}
