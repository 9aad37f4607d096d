//! Running one task against the [`Lm`]: the items a journal does not hold yet are scored chunk
//! by chunk, each chunk journaled as it finishes (a killed run loses at most the chunk in
//! flight) and counted in the progress output. Both request families share this loop
//! ([`journaled`]); [`multiple_choice`] and [`generate`] say how a chunk is scored.

pub mod code;
pub mod generate;
pub mod multiple_choice;

use std::path::Path;
use std::time::Instant;

use crate::chat::ChatPrompt;
use crate::journal::{Journal, Record, check_docs};
use crate::lm::Lm;
use crate::progress::{Progress, ProgressMode, TaskPosition};
use crate::sampling::Sampling;

/// What every task of a run shares, and the task's place in the run.
#[derive(Clone, Copy)]
pub struct TaskContext<'a> {
    pub lm: &'a Lm<'a>,
    pub out_dir: &'a Path,
    pub progress: ProgressMode,
    pub position: TaskPosition,
    /// `--chat`: prompts wrapped in the model's chat template.
    pub chat: Option<&'a ChatPrompt>,
    pub generation: GenSettings,
}

/// How the generative tasks of a run are decoded.
#[derive(Clone, Copy, Debug)]
pub struct GenSettings {
    pub samples: usize,
    pub sampling: Sampling,
    pub run_seed: u64,
    /// Overrides each task's max_gen_toks.
    pub max_gen_toks: Option<usize>,
}

/// What a finished task reports: per metric, one value per item (doc order), and the time.
pub struct TaskScores {
    pub name: String,
    pub shots: usize,
    pub metrics: Vec<(String, Vec<f64>)>,
    /// Seconds spent on the items (summed over invocations of a resumed run).
    pub seconds: f64,
    /// Items whose prompt was cut on the left to fit the model's length.
    pub truncated: usize,
}

/// A journal record that knows its metric values.
pub trait Scored: Record {
    fn value(&self, metric: &str) -> Option<f64>;
    fn seconds(&self) -> f64;
    fn truncated(&self) -> bool;
}

/// Per-item values of each metric, from the finished samples; a sample without one (a journal
/// from another configuration) is an error naming the item.
pub fn task_scores<S: Scored>(
    name: &str,
    shots: usize,
    metrics: &[String],
    samples: &[S],
) -> anyhow::Result<TaskScores> {
    let metrics = metrics
        .iter()
        .map(|metric| {
            let values = samples
                .iter()
                .map(|s| {
                    s.value(metric).ok_or_else(|| {
                        anyhow::anyhow!("{name}: doc {} has no `{metric}` score in its journal", s.doc_id())
                    })
                })
                .collect::<anyhow::Result<Vec<f64>>>()?;
            Ok((metric.clone(), values))
        })
        .collect::<anyhow::Result<_>>()?;
    let truncated = samples.iter().filter(|s| s.truncated()).count();
    if truncated > 0 {
        eprintln!(
            "warning: {name}: {truncated} of {} items had prompts longer than the model's context and were cut on the left (as lm-eval does); run.json counts them",
            samples.len()
        );
    }
    Ok(TaskScores {
        name: name.to_string(),
        shots,
        metrics,
        seconds: samples.iter().map(Scored::seconds).sum(),
        truncated,
    })
}

/// The shared loop: scores the items `done` does not hold, `per_chunk` at a time, journaling
/// each chunk; returns every sample of the task in doc_id order.
pub fn journaled<I, R: Record>(
    context: &TaskContext,
    name: &str,
    items: &[I],
    doc_id: impl Fn(&I) -> usize,
    per_chunk: usize,
    mut score: impl FnMut(&[&I]) -> anyhow::Result<Vec<R>>,
) -> anyhow::Result<Vec<R>> {
    let path = context.out_dir.join("samples").join(format!("{name}.jsonl"));
    let mut journal = Journal::open(&path)?;
    let planned: std::collections::BTreeSet<usize> = items.iter().map(&doc_id).collect();
    check_docs(&path, journal.done().keys().copied(), &planned, name, false)?;
    let pending: Vec<&I> = items
        .iter()
        .filter(|i| !journal.done().contains_key(&doc_id(i)))
        .collect();
    let done = items.len() - pending.len();
    let mut progress = Progress::start(context.progress, name, context.position, items.len(), done);
    for chunk in pending.chunks(per_chunk.max(1)) {
        let clock = Instant::now();
        let mut samples = score(chunk)?;
        let share = clock.elapsed().as_secs_f64() / chunk.len() as f64;
        samples.iter_mut().for_each(|s| s.set_seconds(share));
        journal.append(samples)?;
        progress.advance(chunk.len());
    }
    progress.finish();
    journal.finish()
}
