//! Benchmark tasks, defined exactly as EleutherAI lm-evaluation-harness 0.4.x defines them
//! (checked against tag v0.4.12): data sets → log-likelihood requests, plus how they are scored.
//! This crate knows nothing of tensors or models.
//!
//! Two families: the multiple-choice tasks ([`load_task`], this module) and the generative
//! (`generate_until`) tasks gsm8k, gsm8k_cot, minerva_math (group `math`), humaneval, mbpp,
//! nq_open and bbh ([`load_gen_task`], [`score_responses`]; see [`generative`]). [`is_generative`]
//! tells them apart; [`known_tasks`], [`expand_task_names`] and [`group_members`] cover both.
//!
//! Prompt construction (lm_eval/api/task.py, `ConfigurableTask.fewshot_context` and
//! `construct_requests` for `output_type: multiple_choice`), for one evaluated doc:
//!
//! ```text
//! context      = description
//!              + Σ over few-shot docs: doc_to_text(fs) + target_delimiter + answer(fs) + fewshot_delimiter
//!              + doc_to_text(doc)
//! continuation = target_delimiter + choice            (one request per choice)
//! ```
//!
//! with `target_delimiter = " "` and `fewshot_delimiter = "\n\n"` (TaskConfig defaults; no task
//! here overrides them). For winogrande (`doc_to_text` returns an int, "multiple input") the
//! choices are the contexts: `context_i = description + shots + choice_i` and the shared
//! continuation is `" " + doc_to_target(doc)`.
//!
//! Few-shot docs come from `fewshot_split`, else the training split, else validation
//! (`fewshot_docs`). The default sampler (lm_eval/api/samplers.py `ContextSampler`) is one
//! `random.Random(seed)` per task, seeded with the few-shot seed (default 1234,
//! `evaluator.simple_evaluate(fewshot_random_seed=1234)` → `task.set_fewshot_seed`), advanced by
//! one `rnd.sample(fewshot_docs, n)` (or `n + 1`, see `Kind::draws_extra` in defs.rs) per evaluated
//! doc in data order; MMLU uses `first_n` (the first n dev questions, in file order).
//!
//! The rest of this page is about the multiple-choice tasks.
//!
//! Verification: `tests/lm_eval_reference.rs` compares every request of every task (0-shot),
//! every MMLU subject 5-shot, and several seeded few-shot settings with what lm-eval 0.4.12's own
//! code builds from the same files (`tests/reference/lm_eval_reference.py`).
//!
//! Deviations from lm-eval (details in `data/*/SOURCE.md`):
//! - hellaswag data is rebuilt from llama.cpp's preprocessed text dump, not the original JSONL;
//!   prompts can differ from lm-eval's for WikiHow texts that began with a `[tag]` (lm-eval keeps
//!   a leading space there) and the ActivityNet `ctx_a`/`ctx_b` split is heuristic.
//! - Few-shot is unavailable (an error) for hellaswag, piqa, siqa, winogrande and boolq: lm-eval
//!   takes their examples from `train`, which is not bundled.
//! - lm-eval's `social_iqa` is called `siqa` here (`social_iqa` is accepted as an alias).
//! - Few-shot candidates are compared with the evaluated doc by their source record text, where
//!   lm-eval compares HF dicts; this only matters when the few-shot pool is the evaluated split,
//!   which is the case for no task here.
//! - Few-shot pools are taken in file order; lm-eval takes the HF data set's order, which for
//!   these data sets is the order of the original files they were built from.
//! - `limit` is a count; lm-eval also accepts a fraction (`--limit 0.1`).
//! - No chat templates, system instructions or `gen_prefix` (none of these tasks uses them).

mod data;
mod defs;
mod error;
pub mod generative;
pub mod pyrandom;
mod pytext;

use std::path::{Path, PathBuf};

pub use error::TaskError;
pub use generative::{
    CodeCheck, GenItem, GenMetric, GenOptions, GenTaskInstance, ItemScores, MetricScore, canonical_solution,
    default_shots, is_generative, load_gen_task, pass_at_k, score_code, score_responses,
};

use defs::{Doc, Kind, MMLU_SUBJECTS, Query, SamplerKind};
use pyrandom::PyRandom;

/// lm-eval's `target_delimiter` default (api/task.py `TaskConfig`).
pub const TARGET_DELIMITER: &str = " ";
/// lm-eval's `fewshot_delimiter` default (api/task.py `TaskConfig`).
pub const FEWSHOT_DELIMITER: &str = "\n\n";
/// lm-eval's default few-shot seed (`fewshot_random_seed`, evaluator.py).
pub const DEFAULT_FEWSHOT_SEED: u64 = 1234;

/// One log-likelihood request: log P(continuation | context).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoglikelihoodRequest {
    pub context: String,
    pub continuation: String,
}

/// One multiple-choice item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McItem {
    /// Index in the evaluation split, data order.
    pub doc_id: usize,
    /// One per choice, in choice order.
    pub requests: Vec<LoglikelihoodRequest>,
    /// Per choice: the character length acc_norm divides by (lm-eval: `len(choice)` in Unicode
    /// code points of `doc_to_choice(doc)[i]`, without the target delimiter; for winogrande the
    /// choice is the partial sentence).
    pub choice_chars: Vec<usize>,
    pub gold: usize,
}

impl McItem {
    /// (pred, pred_norm) from one log-likelihood per choice, as lm-eval's `process_results`:
    /// `np.argmax(lls)` and `np.argmax(lls / completion_len)` (first maximum; a NaN wins).
    pub fn predictions(&self, loglikelihoods: &[f64]) -> (usize, usize) {
        let norm: Vec<f64> = loglikelihoods
            .iter()
            .zip(&self.choice_chars)
            .map(|(ll, &n)| ll / n as f64)
            .collect();
        (np_argmax(loglikelihoods), np_argmax(&norm))
    }
}

/// `numpy.argmax`: index of the first maximum; the first NaN if there is one.
fn np_argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// The per-item metrics lm-eval reports for these tasks (each aggregated as a mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Acc,
    AccNorm,
}

impl Metric {
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Acc => "acc",
            Metric::AccNorm => "acc_norm",
        }
    }

    /// 1.0 if the item is answered correctly under this metric, else 0.0.
    pub fn score(&self, item: &McItem, loglikelihoods: &[f64]) -> f64 {
        let (pred, pred_norm) = item.predictions(loglikelihoods);
        let pred = match self {
            Metric::Acc => pred,
            Metric::AccNorm => pred_norm,
        };
        if pred == item.gold { 1.0 } else { 0.0 }
    }
}

/// A loaded task: its items and what produced them.
#[derive(Debug, Clone)]
pub struct TaskInstance {
    pub name: String,
    /// The task description every context starts with (lm-eval moves it to the system turn when
    /// a chat template is applied); empty for most tasks.
    pub description: String,
    /// What each continuation starts with (lm-eval's `target_delimiter`).
    pub target_delimiter: String,
    pub metrics: Vec<Metric>,
    pub items: Vec<McItem>,
    /// The data files read (evaluation split, labels, and the few-shot split when shots > 0),
    /// for hashing.
    pub data_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOptions {
    /// Number of few-shot examples (lm-eval `--num_fewshot`).
    pub shots: usize,
    /// Few-shot seed (lm-eval `--seed`'s fewshot part; default 1234).
    pub seed: u64,
    /// Only the first N items, in data order (lm-eval `--limit N`). Few-shot draws for item i
    /// do not depend on N.
    pub limit: Option<usize>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            shots: 0,
            seed: DEFAULT_FEWSHOT_SEED,
            limit: None,
        }
    }
}

/// The single tasks, in a fixed order: the multiple-choice ones ([`load_task`]), then the
/// generative ones ([`load_gen_task`], see [`is_generative`]).
pub fn known_tasks() -> Vec<String> {
    let mut out: Vec<String> = COMMONSENSE.iter().map(|s| s.to_string()).collect();
    out.push("boolq".into());
    out.extend(MMLU_SUBJECTS.iter().map(|(s, _)| format!("mmlu_{s}")));
    out.extend(generative::gen_task_names());
    out
}

/// The groups [`expand_task_names`] accepts.
pub const GROUPS: [&str; 8] = [
    "commonsense",
    "mmlu",
    "mmlu_stem",
    "mmlu_humanities",
    "mmlu_social_sciences",
    "mmlu_other",
    "math",
    "bbh",
];

const COMMONSENSE: [&str; 8] = [
    "hellaswag",
    "winogrande",
    "piqa",
    "siqa",
    "openbookqa",
    "arc_easy",
    "arc_challenge",
    "commonsense_qa",
];

/// lm-eval's own names for tasks and groups this crate names differently.
const ALIASES: [(&str, &str); 3] = [
    ("social_iqa", "siqa"),
    ("minerva_math", "math"),
    ("bbh_cot_fewshot", "bbh"),
];

fn group_tasks(group: &str) -> Option<Vec<String>> {
    let mmlu = |category: Option<&str>| {
        MMLU_SUBJECTS
            .iter()
            .filter(|(_, c)| category.is_none_or(|cat| *c == cat))
            .map(|(s, _)| format!("mmlu_{s}"))
            .collect()
    };
    Some(match group {
        "commonsense" => COMMONSENSE.iter().map(|s| s.to_string()).collect(),
        "mmlu" => mmlu(None),
        "mmlu_stem" => mmlu(Some("stem")),
        "mmlu_humanities" => mmlu(Some("humanities")),
        "mmlu_social_sciences" => mmlu(Some("social_sciences")),
        "mmlu_other" => mmlu(Some("other")),
        _ => return generative::gen_group(group),
    })
}

/// Expands groups into their tasks ("commonsense": hellaswag, winogrande, piqa, siqa,
/// openbookqa, arc_easy, arc_challenge, commonsense_qa; "mmlu": the 57 `mmlu_<subject>`;
/// "mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other": their subjects;
/// "math": the 7 `minerva_math_<subject>`; "bbh": the 27 `bbh_cot_fewshot_<task>`),
/// drops duplicates (first occurrence wins) and rejects unknown names with a list of the known
/// ones. lm-eval's names `social_iqa`, `minerva_math` and `bbh_cot_fewshot` are accepted for
/// `siqa`, `math` and `bbh`.
pub fn expand_task_names(list: &[String]) -> Result<Vec<String>, TaskError> {
    let known = known_tasks();
    let mut out: Vec<String> = Vec::new();
    for raw in list {
        let name = raw.trim();
        let name = ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, canonical)| canonical);
        let expanded = if let Some(tasks) = group_tasks(name) {
            tasks
        } else if known.iter().any(|k| k == name) {
            vec![name.to_string()]
        } else {
            return Err(unknown(raw));
        };
        for t in expanded {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

fn unknown(name: &str) -> TaskError {
    let mut known: Vec<String> = GROUPS.iter().map(|s| s.to_string()).collect();
    known.extend(COMMONSENSE.iter().map(|s| s.to_string()));
    known.push("boolq".into());
    known.push("mmlu_<subject> (".to_string() + &subjects_list() + ")");
    known.extend(
        generative::gen_task_names()
            .into_iter()
            .filter(|t| !t.starts_with("minerva_math_") && !t.starts_with("bbh_cot_fewshot_")),
    );
    known.push(format!(
        "minerva_math_<subject> ({})",
        generative::defs::MATH_SUBJECTS.map(|(s, _)| s).join(" ")
    ));
    known.push(format!(
        "bbh_cot_fewshot_<task> ({})",
        generative::defs::BBH_TASKS.join(" ")
    ));
    TaskError::UnknownTask {
        name: name.to_string(),
        known: known.join(", "),
    }
}

fn subjects_list() -> String {
    MMLU_SUBJECTS.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(" ")
}

/// Groups for reporting, i.e. the groups lm-eval reports an aggregate for: which subtasks a
/// group's score averages, weighted by subtask size (`aggregate_metric_list: weight_by_size:
/// True` in mmlu/default/_mmlu*.yaml). "mmlu" → its 57 subtasks (weighting the four category
/// groups by their sizes equals weighting the 57 subtasks by theirs); "mmlu_stem",
/// "mmlu_humanities", "mmlu_social_sciences", "mmlu_other" → their subjects; "bbh" → its 27
/// tasks (bbh/cot_fewshot/_bbh.yaml: exact_match of the get-answer filter, weight_by_size:
/// true); "math" → the 7 minerva_math subjects (weighted by size the same way; lm-eval 0.4.12
/// ships no minerva_math group file). lm-eval's names `minerva_math`, `bbh_cot_fewshot` work
/// too. "commonsense" is only a selection shorthand for this harness (lm-eval has no such group
/// and reports no combined score), so it gives `None`, as does any other name.
pub fn group_members(group: &str) -> Option<Vec<String>> {
    if group == "commonsense" {
        return None;
    }
    let canonical = ALIASES.iter().find(|(a, _)| *a == group).map_or(group, |(_, c)| c);
    group_tasks(canonical)
}

/// `$HARNESS_DATA_DIR` if set (and not empty), else this crate's `data/` folder.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("HARNESS_DATA_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")),
    }
}

/// Loads one multiple-choice task (not a group) from `data_dir` and builds its requests.
/// Generative tasks are loaded by [`load_gen_task`]; given one, this returns
/// [`TaskError::Generative`] (or the task's loading error, e.g. triviaqa's
/// [`TaskError::NotBundled`]).
pub fn load_task(name: &str, data_dir: &Path, options: &TaskOptions) -> Result<TaskInstance, TaskError> {
    let canonical = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, c)| c);
    if generative::is_generative(canonical) {
        // triviaqa: the not-bundled error; the others are loaded by load_gen_task.
        load_gen_task(canonical, data_dir, &GenOptions::from(options))?;
        return Err(TaskError::Generative {
            task: canonical.to_string(),
        });
    }
    let kind = Kind::from_name(canonical).ok_or_else(|| unknown(name))?;
    let eval = kind.eval_docs(data_dir)?;
    let mut data_files = eval.files;
    let n_items = options.limit.map_or(eval.docs.len(), |l| l.min(eval.docs.len()));

    let description = kind.description();
    let mut shots = FewshotState::None;
    if options.shots > 0 {
        let pool = match kind.fewshot_docs(data_dir)? {
            Ok(loaded) => loaded,
            Err(split) => {
                return Err(TaskError::Fewshot {
                    task: canonical.to_string(),
                    message: format!(
                        "{} shots requested, but lm-eval takes few-shot examples from the `{split}` split, \
                         which is not bundled (see data/{}/SOURCE.md); only 0-shot is available",
                        options.shots,
                        data_folder(kind)
                    ),
                });
            }
        };
        data_files.extend(pool.files);
        // ContextSampler draws shots (+ 1, see `draws_extra`) without replacement (Python's
        // ValueError otherwise); FirstNSampler asserts shots <= len(docs).
        let need = match kind.sampler() {
            SamplerKind::Default => options.shots + usize::from(kind.draws_extra()),
            SamplerKind::FirstN => options.shots,
        };
        if need > pool.docs.len() {
            return Err(TaskError::Fewshot {
                task: canonical.to_string(),
                message: format!(
                    "{} shots requested but the few-shot split has only {} docs",
                    options.shots,
                    pool.docs.len()
                ),
            });
        }
        shots = match kind.sampler() {
            SamplerKind::FirstN => FewshotState::FirstN(pool.docs),
            SamplerKind::Default => FewshotState::Random {
                rng: Box::new(PyRandom::new(options.seed)),
                pool: pool.docs,
            },
        };
    }

    let mut items = Vec::with_capacity(n_items);
    for (doc_id, doc) in eval.docs.iter().take(n_items).enumerate() {
        let mut prefix = description.clone();
        for fs in shots.draw(options.shots, kind.draws_extra().then_some(doc))? {
            prefix.push_str(&fewshot_example(fs));
        }
        let requests = match &doc.query {
            Query::Text(q) => {
                let context = prefix + q;
                doc.choices
                    .iter()
                    .map(|c| LoglikelihoodRequest {
                        context: context.clone(),
                        continuation: format!("{TARGET_DELIMITER}{c}"),
                    })
                    .collect()
            }
            Query::PerChoice => doc
                .choices
                .iter()
                .map(|c| LoglikelihoodRequest {
                    context: format!("{prefix}{c}"),
                    continuation: format!("{TARGET_DELIMITER}{}", doc.answer),
                })
                .collect(),
        };
        items.push(McItem {
            doc_id,
            requests,
            choice_chars: doc.choices.iter().map(|c| c.chars().count()).collect(),
            gold: doc.gold,
        });
    }
    Ok(TaskInstance {
        name: canonical.to_string(),
        description,
        target_delimiter: TARGET_DELIMITER.to_string(),
        metrics: kind.metrics(),
        items,
        data_files,
    })
}

fn data_folder(kind: Kind) -> &'static str {
    match kind {
        Kind::Hellaswag => "hellaswag",
        Kind::ArcEasy => "arc_easy",
        Kind::ArcChallenge => "arc_challenge",
        Kind::Piqa => "piqa",
        Kind::Winogrande => "winogrande",
        Kind::Siqa => "siqa",
        Kind::OpenbookQa => "openbookqa",
        Kind::CommonsenseQa => "commonsense_qa",
        Kind::Boolq => "boolq",
        Kind::Mmlu(_) => "mmlu",
    }
}

/// One few-shot example: `doc_to_text + target_delimiter + answer + fewshot_delimiter`
/// (api/task.py `build_qa_turn`; for "multiple input" docs the text is `choices[gold]`). With an
/// empty answer lm-eval writes the text alone, without either delimiter.
fn fewshot_example(doc: &Doc) -> String {
    let q = match &doc.query {
        Query::Text(q) => q.as_str(),
        Query::PerChoice => doc.choices[doc.gold].as_str(),
    };
    if doc.answer.is_empty() {
        return q.to_string();
    }
    format!("{q}{TARGET_DELIMITER}{}{FEWSHOT_DELIMITER}", doc.answer)
}

enum FewshotState {
    None,
    FirstN(Vec<Doc>),
    Random { rng: Box<PyRandom>, pool: Vec<Doc> },
}

impl FewshotState {
    /// The few-shot docs for one evaluated doc. `eval_doc` is `Some` when lm-eval passes the doc
    /// to the sampler: it then draws n + 1 and keeps the first n that are not equal to it
    /// (samplers.py `ContextSampler.sample` / `rm_eval_doc`).
    fn draw(&mut self, n: usize, eval_doc: Option<&Doc>) -> Result<Vec<&Doc>, TaskError> {
        match self {
            FewshotState::None => Ok(Vec::new()),
            // FirstNSampler.sample: self.df[:n]
            FewshotState::FirstN(pool) => Ok(pool.iter().take(n).collect()),
            FewshotState::Random { rng, pool } => {
                let k = n + usize::from(eval_doc.is_some());
                let picked = rng.sample(pool.len(), k).map_err(|e| TaskError::Fewshot {
                    task: String::new(),
                    message: format!("cannot sample {} of {} few-shot docs", e.k, e.population),
                })?;
                Ok(picked
                    .into_iter()
                    .map(|i| &pool[i])
                    .filter(|d| eval_doc.is_none_or(|e| d.ident != e.ident))
                    .take(n)
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_is_numpys() {
        assert_eq!(np_argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(np_argmax(&[1.0, f64::NAN, 3.0]), 1);
        assert_eq!(np_argmax(&[-1.0]), 0);
    }
}
