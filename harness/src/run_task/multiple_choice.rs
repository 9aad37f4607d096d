//! Multiple-choice tasks: one `loglikelihood` request per choice, acc and acc_norm per item
//! (`tasks::McItem::predictions`, lm-eval's `process_results`).

use serde::{Deserialize, Serialize};
use tasks::{LoglikelihoodRequest, McItem, TaskInstance};

use super::{Scored, TaskContext, TaskScores, journaled, task_scores};
use crate::journal::Record;
use crate::lm::Loglikelihood;

/// Items scored between two journal writes, per row of the batch.
const ITEMS_PER_CHUNK_PER_ROW: usize = 4;

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
    /// Whether a request was cut on the left to fit the model's length.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Record for McSample {
    fn doc_id(&self) -> usize {
        self.doc_id
    }
    fn set_seconds(&mut self, seconds: f64) {
        self.seconds = seconds;
    }
}

impl Scored for McSample {
    fn value(&self, metric: &str) -> Option<f64> {
        match metric {
            "acc" => Some(self.acc),
            "acc_norm" => Some(self.acc_norm),
            _ => None,
        }
    }
    fn seconds(&self) -> f64 {
        self.seconds
    }
    fn truncated(&self) -> bool {
        self.truncated
    }
}

/// Scores a task's missing items, journaling as it goes; its per-item metrics.
pub fn run(context: &TaskContext, task: &TaskInstance, shots: usize) -> anyhow::Result<TaskScores> {
    let per_chunk = context.lm.batch_size * ITEMS_PER_CHUNK_PER_ROW;
    let samples = journaled(
        context,
        &task.name,
        &task.items,
        |i| i.doc_id,
        per_chunk,
        |chunk| {
            let requests = chunk
                .iter()
                .map(|item| requests_of(context, task, item))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let pairs: Vec<(&str, &str)> = requests
                .iter()
                .flatten()
                .map(|r| (r.context.as_str(), r.continuation.as_str()))
                .collect();
            let mut results = context.lm.loglikelihood(&pairs)?.into_iter();
            Ok(chunk
                .iter()
                .zip(&requests)
                .map(|(item, requests)| {
                    let mine: Vec<Loglikelihood> = results.by_ref().take(requests.len()).collect();
                    sample_of(item, requests, &mine)
                })
                .collect())
        },
    )?;
    let metrics: Vec<String> = task.metrics.iter().map(|m| m.name().to_string()).collect();
    task_scores(&task.name, shots, &metrics, &samples)
}

/// The item's requests as the model sees them: as built, or with `--chat` each context wrapped
/// in the chat template and the target delimiter dropped from the continuation (lm-eval's
/// `construct_requests` with `apply_chat_template` and no `gen_prefix`).
fn requests_of(context: &TaskContext, task: &TaskInstance, item: &McItem) -> anyhow::Result<Vec<LoglikelihoodRequest>> {
    let Some(chat) = context.chat else {
        return Ok(item.requests.clone());
    };
    item.requests
        .iter()
        .map(|r| {
            Ok(LoglikelihoodRequest {
                context: chat.wrap(&task.description, &r.context)?,
                continuation: r
                    .continuation
                    .strip_prefix(task.target_delimiter.as_str())
                    .unwrap_or(&r.continuation)
                    .to_string(),
            })
        })
        .collect()
}

fn sample_of(item: &McItem, requests: &[LoglikelihoodRequest], results: &[Loglikelihood]) -> McSample {
    let lls: Vec<f64> = results.iter().map(|r| r.logprob).collect();
    let (prediction, prediction_norm) = item.predictions(&lls);
    let contexts: Vec<String> = requests.iter().map(|r| r.context.clone()).collect();
    let shared = contexts.iter().all(|c| c == &contexts[0]);
    McSample {
        doc_id: item.doc_id,
        prompt: contexts.first().cloned().unwrap_or_default(),
        contexts: (!shared).then_some(contexts),
        choices: requests.iter().map(|r| r.continuation.clone()).collect(),
        loglikelihoods: lls,
        is_greedy: results.iter().map(|r| r.is_greedy).collect(),
        prediction,
        prediction_norm,
        gold: item.gold,
        acc: f64::from(prediction == item.gold),
        acc_norm: f64::from(prediction_norm == item.gold),
        seconds: 0.0,
        context_tokens: results.iter().map(|r| r.context_tokens).collect(),
        continuation_tokens: results.iter().map(|r| r.tokens).collect(),
        truncated: results.iter().any(|r| r.truncated),
    }
}
