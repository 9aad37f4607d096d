//! Benchmark tasks as data, the way EleutherAI lm-evaluation-harness 0.4.x defines them (checked
//! against v0.4.12): a task is one YAML file in lm-eval's task format (templates, splits,
//! few-shot settings, generation settings, filters, metrics) plus its local data. This crate
//! turns a task file and its data into log-likelihood or generation requests and scores the
//! answers; it knows nothing of tensors or models.
//!
//! - [`Registry`]: the built-in task files (`tasks/defs/`) plus user folders
//!   (`--include-path`); lists, expands and loads tasks and groups.
//! - [`Task`]: a loaded task, one [`Item`] per document, each with its [`Request`] (a
//!   [`McItem`] or a [`GenItem`]), the document and target as lm-eval's samples file shows them,
//!   and how to score it ([`Task::score_generation`], [`Task::score_code`], [`Metric`]).
//!
//! ```no_run
//! use tasks::{LoadOptions, Registry, Request};
//!
//! let registry = Registry::new(&["my_tasks".into()])?; // built-in tasks + my_tasks/**/*.yaml
//! for name in registry.expand(&["mmlu".into(), "capitals".into()])? {
//!     let task = registry.load(&name, &LoadOptions::default())?;
//!     for item in &task.items {
//!         match &item.request {
//!             Request::Choice(mc) => { /* log-likelihoods of mc.requests → task.choice_metrics() */ }
//!             Request::Generate(g) => { /* generate until g.until → task.score_generation(g, &responses) */ }
//!         }
//!     }
//! }
//! # Ok::<(), tasks::TaskError>(())
//! ```
//!
//! Modules: `yaml` (task files with lines), `config` (the typed definition, which keys mean
//! what), `template` + `fields` (Jinja and lm-eval's `doc_to_*` rules), `dataset` (local data),
//! `fewshot` (the one context builder), `instance` (requests), `scoring` (filters, metrics),
//! `hooks` (the code a few tasks need: hellaswag's preprocessing, label files, minerva's LaTeX
//! answers, code execution), `code_eval` (how a check program is run), `registry`.
//!
//! The functions at the end of this page ([`load_task`], [`load_gen_task`], …) are the previous
//! API, kept as thin wrappers over the built-in registry until the harness moves to [`Registry`].
//!
//! Verification: `tests/lm_eval_reference.rs` and `tests/lm_eval_gen_reference.rs` compare every
//! request of every built-in task with what lm-eval 0.4.12's own code builds from the same data;
//! `tests/user_tasks.rs` runs one task file unchanged here and in lm-eval.
//!
//! Deviations from lm-eval (details in `data/*/SOURCE.md` and the task files' comments):
//! - hellaswag data is rebuilt from llama.cpp's preprocessed text dump, not the original JSONL;
//!   prompts can differ from lm-eval's for WikiHow texts that began with a `[tag]`.
//! - Few-shot examples are never taken from the evaluated split (lm-eval's last resort); tasks
//!   whose few-shot split is not bundled (hellaswag, piqa, siqa, winogrande, boolq, nq_open) are
//!   0-shot only.
//! - lm-eval's `social_iqa` is called `siqa` here (the name is accepted as an alias), as are
//!   `minerva_math` (group `math`) and `bbh_cot_fewshot` (group `bbh`).
//! - minerva_math's `exact_match` decides LaTeX equivalence without sympy ([`is_equiv`]);
//!   `math_verify` is not implemented.
//! - Python `re` patterns run on fancy-regex; `\b` and `\w` use Unicode word characters, which
//!   differ from Python's `str.isalnum()` only for rare characters.
//! - `limit` is a count; lm-eval also accepts a fraction.

pub mod code_eval;
mod complex;
mod config;
mod data;
mod dataset;
mod error;
mod fewshot;
mod fields;
mod hooks;
mod instance;
mod latex;
mod minerva;
mod passk;
mod pyliteral;
pub mod pyrandom;
mod pyregex;
mod pytext;
mod registry;
mod scoring;
mod template;
mod yaml;

use std::path::PathBuf;

pub use config::{
    AggregateMetric, BOOKKEEPING_KEYS, DEFAULT_MAX_GEN_TOKS, GenerationKwargs, GroupDef, OutputType, TaskDef,
};
pub use error::TaskError;
pub use instance::{Item, LoadOptions, Request, Task};
pub use latex::is_equiv;
pub use passk::pass_at_k;
pub use registry::{EntryKind, Listing, Registry, Source};
pub use scoring::Metric;

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

/// What a sandbox must run for a code task: `program(completion)`, with `timeout_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeCheck {
    /// humaneval `task_id` ("HumanEval/0") or mbpp `task_id` ("11").
    pub task_id: String,
    /// Put before the completion: humaneval's prompt (lm-eval's `create_test` filter,
    /// `build_predictions`: `prompt + response`); empty for mbpp (no filter).
    pub prefix: String,
    /// code_eval's `test_case` (= lm-eval's `doc_to_target`).
    pub test: String,
    /// The data set's reference solution, as a completion.
    pub canonical_solution: String,
    /// code_eval's per-program timeout (3.0 s).
    pub timeout_s: f64,
}

impl CodeCheck {
    /// The check program HF evaluate's code_eval runs for one completion:
    /// `prediction + "\n" + test_case` with `prediction = prefix + completion`
    /// ([`code_eval::script`] runs it the way code_eval does).
    pub fn program(&self, completion: &str) -> String {
        format!("{}{completion}\n{}", self.prefix, self.test)
    }

    /// The program for the canonical solution (should pass, except mbpp 367, whose tests need
    /// the `test_setup_code` that lm-eval does not use either).
    pub fn canonical_program(&self) -> String {
        self.program(&self.canonical_solution)
    }
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenItem {
    /// Index in the evaluation split, data order.
    pub doc_id: usize,
    /// The whole prompt (description + shots + question), no chat template.
    pub context: String,
    /// The task description that `context` starts with (lm-eval moves it to the system turn
    /// when a chat template is applied); empty for most tasks.
    pub description: String,
    /// Stop sequences (`generation_kwargs.until`); EOS is the engine's business.
    pub until: Vec<String>,
    /// `generation_kwargs.max_gen_toks`, else lm-eval's default 256.
    pub max_gen_toks: usize,
    /// `doc_to_target` as lm-eval's `str()` writes it (a list as `['a', 'b']`; minerva_math:
    /// the gold answer its scoring compares with).
    pub target: String,
    /// What `exact_match` compares with (several for a list target), or the minerva gold answer;
    /// empty for code tasks.
    pub references: Vec<String>,
    /// For code tasks: what the sandbox must run.
    pub code: Option<CodeCheck>,
}

/// The canonical (reference) solution of a code item, if it is one.
pub fn canonical_solution(item: &GenItem) -> Option<&str> {
    item.code.as_ref().map(|c| c.canonical_solution.as_str())
}

/// A reported metric of a generative task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenMetric {
    /// `exact_match` under the task's first filter pipeline (gsm8k: strict-match; bbh:
    /// get-answer; nq_open: remove_whitespace; minerva_math: its process_results).
    ExactMatch,
    /// `exact_match` under the second filter pipeline (gsm8k: flexible-extract).
    ExactMatchFlexible,
    /// `exact_match` under filter pipeline n ≥ 2 (0-based).
    ExactMatchFilter(usize),
    /// pass@k of code tasks.
    PassAt(usize),
}

impl GenMetric {
    /// The name reported here: "exact_match", "exact_match_flexible", "pass@1".
    pub fn name(&self) -> String {
        match self {
            GenMetric::ExactMatch => "exact_match".into(),
            GenMetric::ExactMatchFlexible => "exact_match_flexible".into(),
            GenMetric::ExactMatchFilter(n) => format!("exact_match_filter{n}"),
            GenMetric::PassAt(k) => format!("pass@{k}"),
        }
    }

    fn exact_match_of_filter(index: usize) -> GenMetric {
        match index {
            0 => GenMetric::ExactMatch,
            1 => GenMetric::ExactMatchFlexible,
            n => GenMetric::ExactMatchFilter(n),
        }
    }
}

/// One metric's result for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricScore {
    pub metric: GenMetric,
    /// lm-eval's key for it in results files: "exact_match,strict-match", "pass@1,create_test".
    pub lm_eval_key: String,
    pub value: f64,
    /// The answer compared (after the filters and, with several responses, the majority vote).
    pub answer: String,
    /// The extracted answer of each response.
    pub per_response: Vec<String>,
}

/// The scores of one item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemScores {
    pub scores: Vec<MetricScore>,
}

impl ItemScores {
    pub fn get(&self, metric: GenMetric) -> Option<&MetricScore> {
        self.scores.iter().find(|s| s.metric == metric)
    }
}

impl Task {
    /// multiple_choice: the metrics (each 1.0/0.0 per item by [`Metric::score`]).
    pub fn choice_metrics(&self) -> &[Metric] {
        match &self.metrics {
            scoring::Metrics::Choice(m) => m,
            _ => &[],
        }
    }

    /// generate_until: the metrics with lm-eval's results keys (`exact_match,strict-match`,
    /// `pass@1,create_test`).
    pub fn gen_metrics(&self) -> Vec<(GenMetric, String)> {
        scoring::metric_keys(&self.metrics)
    }

    /// lm-eval's results key (`exact_match,strict-match`, `pass@10,create_test`) of a metric of
    /// this generate_until task.
    pub fn metric_key(&self, metric: GenMetric) -> Option<String> {
        scoring::metric_key(&self.metrics, metric)
    }

    /// Scores one generated item's responses (one per sample; maj@k with several): per metric,
    /// each response's extracted answer, their vote, and the metric on it. Code tasks give no
    /// scores here (see [`Task::score_code`]).
    pub fn score_generation(&self, item: &GenItem, responses: &[String]) -> ItemScores {
        scoring::score_generation(&self.metrics, item, responses)
    }

    /// pass@k of a code item from the execution results of its samples (true = the program
    /// exited successfully within the timeout), for k = 1, 10, 100 as far as k ≤ the number of
    /// samples (code_eval's `k=[1, 10, 100]`).
    pub fn score_code(&self, passed: &[bool]) -> ItemScores {
        let ks = [1, 10, 100].map(GenMetric::PassAt);
        match &self.metrics {
            scoring::Metrics::Hook(h) => h.score_code(passed, &ks),
            _ => ItemScores::default(),
        }
    }
}

/// `$HARNESS_DATA_DIR` if set (and not empty), else this crate's `data/` folder.
pub fn default_data_dir() -> PathBuf {
    match std::env::var_os("HARNESS_DATA_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data")),
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
