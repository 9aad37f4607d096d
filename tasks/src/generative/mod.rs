//! Generative (`output_type: generate_until`) tasks, as lm-evaluation-harness 0.4.12 defines them:
//! prompts, stop sequences, answer extraction (filters) and metrics.
//!
//! | task | lm-eval YAML | shots (default) | until | max_gen_toks | metrics |
//! |---|---|---|---|---|---|
//! | `gsm8k` | gsm8k/gsm8k.yaml | 5, random from train (seed) | `Question:`, `</s>`, `<\|im_end\|>` | 256 | exact_match (strict-match), exact_match_flexible (flexible-extract) |
//! | `gsm8k_cot` | gsm8k/gsm8k-cot.yaml | 8 fixed CoT exemplars | `Q:`, `</s>`, `<\|im_end\|>` | 256 | same |
//! | `minerva_math_<subject>` (group `math`) | minerva_math/*.yaml | 4 fixed Minerva exemplars | `Problem:` | 256 | exact_match |
//! | `humaneval` | humaneval/humaneval.yaml | 0 | `\nclass`, `\ndef`, `\n#`, `\nif`, `\nprint` | 1024 | pass@1 |
//! | `mbpp` | mbpp/mbpp.yaml | 3 fixed (tasks 2, 3, 4) | `[DONE]` | 256 | pass@1 |
//! | `nq_open` | nq_open/nq_open.yaml | 0 | `\n`, `.`, `,` | 256 | exact_match |
//! | `bbh_cot_fewshot_<task>` (group `bbh`) | bbh/cot_fewshot/*.yaml | 3 fixed CoT exemplars | `</s>`, `Q`, `\n\n` | 1024 | exact_match (get-answer) |
//!
//! Context = description + Σ shots (`doc_to_text + target_delimiter + doc_to_target +
//! fewshot_delimiter`) + `doc_to_text(doc)` (api/task.py `fewshot_context`, `build_qa_turn`); no
//! chat template. lm-eval also stops at the tokenizer's EOS; the engine handles that itself. All
//! of these YAMLs use greedy decoding (`do_sample: false`) and `repeats: 1`.
//!
//! Scoring ([`score_responses`]): per filter pipeline of the YAML, each response is reduced to an
//! answer (`regex` → `take_first`, `remove_whitespace`, or minerva's `process_results`), then the
//! metric compares it with the reference (`exact_match` with the YAML's `ignore_case`,
//! `ignore_punctuation`, `regexes_to_ignore`; any of several references for nq_open). With k > 1
//! responses the answers are majority-voted first (maj@k, lm-eval's `majority_vote` filter: the
//! most frequent answer, ties to the first seen). Code tasks ([`CodeCheck`]) are run by the
//! caller; [`score_code`] turns pass/fail per sample into pass@k ([`pass_at_k`]).
//!
//! Verification: `tests/lm_eval_gen_reference.rs` compares with what lm-eval 0.4.12's own code
//! produces (`tests/reference/lm_eval_gen_reference.py`): every request (context, until,
//! max_gen_toks, target, and the canonical-solution program for code tasks) of every task at its
//! default shot count and, on the first items, at other counts (18,713 requests); extracted
//! answers and metric values of 727 (task, doc, response) cases and 8 maj@k cases; and minerva's
//! equivalence on all 5,000 gold answers and 36 pairs. All agree except one minerva case listed
//! in the test (sympy keeps `x^2.0` apart from `x^2`).
//!
//! Deviations from lm-eval (also in `data/*/SOURCE.md`):
//! - minerva_math `exact_match`: lm-eval decides equivalence with sympy (`parse_latex`, then
//!   `simplify(a - b) == 0`); this crate has no sympy and implements the check of
//!   [`latex::is_equiv`](crate::generative::is_equiv) instead (a sympy-like LaTeX parser, numeric
//!   comparison, symbolic identities by evaluation at random points). lm-eval's second metric,
//!   `math_verify` (the math-verify package), is not implemented.
//! - nq_open and humaneval are 0-shot only (nq_open's `train` split is not bundled; humaneval has
//!   no split to draw from but the evaluated one). triviaqa is known but its data is not bundled:
//!   loading it is an error saying where to get it.
//! - maj@k for minerva_math votes over the normalized answers (lm-eval's minerva has no filter
//!   pipeline to vote in).
//! - Data order: MATH problems are in file-name order (as the hendrycks_math builder that made
//!   lm-eval's HF data set reads them); bbh examples are taken from the BIG-Bench-Hard JSON files
//!   (lm-eval reads the HF copy SaylorTwift/bbh); mbpp is the mirror copy described in
//!   data/mbpp/SOURCE.md. `limit` takes the first N items in that order.

pub(crate) mod defs;
pub mod extract;
mod latex;
mod passk;

use std::path::{Path, PathBuf};

use crate::error::TaskError;
use crate::pyrandom::PyRandom;
use crate::{DEFAULT_FEWSHOT_SEED, TaskOptions};
use defs::{BBH_TASKS, GenDoc, GenKind, MATH_SUBJECTS, Shots};
use extract::{ExactMatch, RegexFilter, majority_vote, minerva_unnormalized_answer, normalize_final_answer};

pub use latex::is_equiv;
pub use passk::pass_at_k;

/// What a sandbox must run for a code task: `program(completion)`, with `timeout_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeCheck {
    /// humaneval `task_id` ("HumanEval/0") or mbpp `task_id` ("11").
    pub task_id: String,
    /// Put before the completion: humaneval's prompt (lm-eval's `create_test` filter,
    /// `build_predictions`: `prompt + response`); empty for mbpp (no filter).
    pub prefix: String,
    /// code_eval's `test_case` (= lm-eval's `doc_to_target`): humaneval
    /// `test + "\ncheck(" + entry_point + ")"`; mbpp the three `test_list` asserts joined by "\n"
    /// (`test_setup_code` is not used, as in lm-eval; mbpp task 367's tests need it, so its
    /// canonical solution fails there too).
    pub test: String,
    /// The data set's reference solution, as a completion: humaneval `canonical_solution` (the
    /// function body after the prompt), mbpp `code` (the whole program).
    pub canonical_solution: String,
    /// code_eval's per-program timeout (3.0 s).
    pub timeout_s: f64,
}

impl CodeCheck {
    /// The program HF evaluate's code_eval runs for one completion:
    /// `prediction + "\n" + test_case` with `prediction = prefix + completion`.
    pub fn program(&self, completion: &str) -> String {
        format!("{}{completion}\n{}", self.prefix, self.test)
    }

    /// The program for the canonical solution (should pass, except mbpp 367, see `test`).
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
    /// Stop sequences (YAML `generation_kwargs.until`); EOS is the engine's business.
    pub until: Vec<String>,
    /// YAML `generation_kwargs.max_gen_toks`, else lm-eval's default 256.
    pub max_gen_toks: usize,
    /// `doc_to_target` as lm-eval gives it (for nq_open, a list, written as Python's `str(list)`).
    pub target: String,
    /// What the metric compares with: the exact_match references (nq_open: every acceptable
    /// answer), the minerva gold answer; empty for code tasks.
    pub references: Vec<String>,
    /// For humaneval/mbpp: what the sandbox must run.
    pub code: Option<CodeCheck>,
}

/// The canonical (reference) solution of a code item, if it is one.
pub fn canonical_solution(item: &GenItem) -> Option<&str> {
    item.code.as_ref().map(|c| c.canonical_solution.as_str())
}

/// A reported metric of a generative task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenMetric {
    /// `exact_match` under the task's main filter (gsm8k: strict-match; bbh: get-answer; nq_open:
    /// remove_whitespace; minerva_math: its process_results).
    ExactMatch,
    /// gsm8k's `exact_match` under the flexible-extract filter.
    ExactMatchFlexible,
    /// pass@k of code tasks.
    PassAt(usize),
}

impl GenMetric {
    /// The name reported here: "exact_match", "exact_match_flexible", "pass@1".
    pub fn name(&self) -> String {
        match self {
            GenMetric::ExactMatch => "exact_match".into(),
            GenMetric::ExactMatchFlexible => "exact_match_flexible".into(),
            GenMetric::PassAt(k) => format!("pass@{k}"),
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

/// How a task's responses are scored.
#[derive(Debug, Clone)]
enum Scorer {
    /// Filter pipelines (name, regex or whitespace strip) each followed by exact_match.
    Filters(Vec<(GenMetric, &'static str, Extractor)>, ExactMatch),
    /// minerva_math process_results.
    Minerva,
    /// Executed by the caller; lm-eval's result key for pass@k ({k} is replaced).
    Code(&'static str),
}

#[derive(Debug, Clone)]
enum Extractor {
    Regex(RegexFilter),
    Strip,
}

impl Extractor {
    fn apply(&self, resp: &str) -> String {
        match self {
            Extractor::Regex(r) => r.apply(resp),
            Extractor::Strip => crate::pytext::py_strip(resp).to_string(),
        }
    }
}

fn scorer(kind: GenKind) -> Scorer {
    let gsm = |strict: &str| {
        Scorer::Filters(
            vec![
                (
                    GenMetric::ExactMatch,
                    "strict-match",
                    Extractor::Regex(RegexFilter::new(strict, 0)),
                ),
                (
                    GenMetric::ExactMatchFlexible,
                    "flexible-extract",
                    Extractor::Regex(RegexFilter::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1)),
                ),
            ],
            ExactMatch::gsm8k(),
        )
    };
    match kind {
        // gsm8k.yaml filter_list: strict-match `#### (\-?[0-9\.\,]+)`, flexible-extract (last match).
        GenKind::Gsm8k => gsm(r"#### (\-?[0-9\.\,]+)"),
        // gsm8k-cot.yaml: strict-match `The answer is (\-?[0-9\.\,]+).`
        GenKind::Gsm8kCot => gsm(r"The answer is (\-?[0-9\.\,]+)."),
        GenKind::Minerva(_) => Scorer::Minerva,
        // humaneval: utils.pass_at_k returns {"pass@1": …} under the create_test filter.
        GenKind::Humaneval => Scorer::Code("pass@{k},create_test"),
        // mbpp: metric utils.pass_at_1, no filter.
        GenKind::Mbpp => Scorer::Code("pass_at_{k},none"),
        // nq_open.yaml: remove_whitespace, take_first.
        GenKind::NqOpen | GenKind::Triviaqa => Scorer::Filters(
            vec![(GenMetric::ExactMatch, "remove_whitespace", Extractor::Strip)],
            ExactMatch::nq_open(),
        ),
        // _cot_fewshot_template_yaml: get-answer `(?<=the answer is )(.*)(?=.)` (same first
        // match as below), take_first; exact_match without options.
        GenKind::Bbh(_) => Scorer::Filters(
            vec![(
                GenMetric::ExactMatch,
                "get-answer",
                Extractor::Regex(RegexFilter::new(r"the answer is (.*).", 0)),
            )],
            ExactMatch::default(),
        ),
    }
}

/// A loaded generative task.
#[derive(Debug, Clone)]
pub struct GenTaskInstance {
    pub name: String,
    pub items: Vec<GenItem>,
    pub metrics: Vec<GenMetric>,
    /// The few-shot count used.
    pub shots: usize,
    /// The data files read, for hashing.
    pub data_files: Vec<PathBuf>,
    scorer: Scorer,
}

/// Options for [`load_gen_task`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Few-shot count (lm-eval `--num_fewshot`); `None` = the YAML's `num_fewshot`.
    pub shots: Option<usize>,
    /// Few-shot seed (only gsm8k samples at random).
    pub seed: u64,
    /// Only the first N items, in data order (lm-eval `--limit N`).
    pub limit: Option<usize>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            shots: None,
            seed: DEFAULT_FEWSHOT_SEED,
            limit: None,
        }
    }
}

impl From<&TaskOptions> for GenOptions {
    /// An explicit shot count (`TaskOptions::shots` has no "task default").
    fn from(o: &TaskOptions) -> Self {
        GenOptions {
            shots: Some(o.shots),
            seed: o.seed,
            limit: o.limit,
        }
    }
}

/// The generative tasks, in a fixed order.
pub fn gen_task_names() -> Vec<String> {
    let mut out: Vec<String> = ["gsm8k", "gsm8k_cot"].iter().map(|s| s.to_string()).collect();
    out.extend(MATH_SUBJECTS.iter().map(|(s, _)| format!("minerva_math_{s}")));
    out.extend(["humaneval", "mbpp", "nq_open"].iter().map(|s| s.to_string()));
    out.extend(BBH_TASKS.iter().map(|t| format!("bbh_cot_fewshot_{t}")));
    out.push("triviaqa".into());
    out
}

/// Whether `name` is a generative task (not a group).
pub fn is_generative(name: &str) -> bool {
    GenKind::from_name(name).is_some()
}

/// The YAML's `num_fewshot` for a generative task (what lm-eval uses without `--num_fewshot`).
pub fn default_shots(name: &str) -> Option<usize> {
    GenKind::from_name(name).map(|k| k.settings().default_shots)
}

/// The members of the generative groups: "math" (also lm-eval's name `minerva_math`) → the 7
/// `minerva_math_*` subjects; "bbh" (also `bbh_cot_fewshot`) → the 27 `bbh_cot_fewshot_*` tasks.
/// lm-eval's bbh group aggregates `exact_match` (get-answer) as a mean weighted by task size
/// (`aggregate_metric_list: weight_by_size: true` in bbh/cot_fewshot/_bbh.yaml); "math" is
/// weighted by size likewise (lm-eval 0.4.12 has no minerva_math group file).
pub(crate) fn gen_group(name: &str) -> Option<Vec<String>> {
    match name {
        "math" | "minerva_math" => Some(MATH_SUBJECTS.iter().map(|(s, _)| format!("minerva_math_{s}")).collect()),
        "bbh" | "bbh_cot_fewshot" => Some(BBH_TASKS.iter().map(|t| format!("bbh_cot_fewshot_{t}")).collect()),
        _ => None,
    }
}

/// Loads one generative task (not a group) from `data_dir` and builds its requests.
pub fn load_gen_task(name: &str, data_dir: &Path, options: &GenOptions) -> Result<GenTaskInstance, TaskError> {
    let kind = GenKind::from_name(name).ok_or_else(|| crate::unknown(name))?;
    let settings = kind.settings();
    let eval = kind.eval_docs(data_dir)?;
    let mut data_files = eval.files;
    let shots = options.shots.unwrap_or(settings.default_shots);
    let n_items = options.limit.map_or(eval.docs.len(), |l| l.min(eval.docs.len()));

    let mut description = settings.description.clone();
    if let Some((d, path)) = kind.data_description(data_dir)? {
        description = d;
        data_files.push(path);
    }

    let fewshot_err = |message: String| TaskError::Fewshot {
        task: name.to_string(),
        message,
    };
    let mut sampler = None;
    let mut fixed: Vec<GenDoc> = Vec::new();
    if shots > 0 {
        let (pool, files) = kind.shots(data_dir)?;
        for f in files {
            if !data_files.contains(&f) {
                data_files.push(f);
            }
        }
        match pool {
            Shots::Unavailable(why) => return Err(fewshot_err(format!("{shots} shots requested, but {why}"))),
            // FirstNSampler: assert n <= len(df).
            Shots::FirstN(docs) if shots > docs.len() => {
                return Err(fewshot_err(format!(
                    "{shots} shots requested, but lm-eval's few-shot sampler takes the first n of {} fixed examples",
                    docs.len()
                )));
            }
            Shots::FirstN(docs) => fixed = docs.into_iter().take(shots).collect(),
            Shots::Random(docs) if shots > docs.len() => {
                return Err(fewshot_err(format!(
                    "{shots} shots requested but the few-shot split has only {} docs",
                    docs.len()
                )));
            }
            Shots::Random(docs) => sampler = Some((PyRandom::new(options.seed), docs)),
        }
    }

    let shot_text = |d: &GenDoc| {
        // build_qa_turn: with an empty answer the question alone, without delimiters.
        if d.fewshot_target.is_empty() {
            d.text.clone()
        } else {
            format!(
                "{}{}{}{}",
                d.text, settings.target_delimiter, d.fewshot_target, settings.fewshot_delimiter
            )
        }
    };
    let fixed_prefix: String = fixed.iter().map(shot_text).collect();

    let mut items = Vec::with_capacity(n_items);
    for (doc_id, doc) in eval.docs.into_iter().take(n_items).enumerate() {
        let mut context = description.clone();
        if let Some((rng, pool)) = sampler.as_mut() {
            let picked = rng
                .sample(pool.len(), shots)
                .map_err(|e| fewshot_err(format!("cannot sample {} of {} few-shot docs", e.k, e.population)))?;
            for i in picked {
                context.push_str(&shot_text(&pool[i]));
            }
        } else {
            context.push_str(&fixed_prefix);
        }
        context.push_str(&doc.text);
        items.push(GenItem {
            doc_id,
            context,
            description: description.clone(),
            until: settings.until.clone(),
            max_gen_toks: settings.max_gen_toks,
            target: doc.target,
            references: doc.references,
            code: doc.code,
        });
    }
    let metrics = match kind {
        GenKind::Gsm8k | GenKind::Gsm8kCot => vec![GenMetric::ExactMatch, GenMetric::ExactMatchFlexible],
        GenKind::Humaneval | GenKind::Mbpp => vec![GenMetric::PassAt(1)],
        _ => vec![GenMetric::ExactMatch],
    };
    Ok(GenTaskInstance {
        name: name.to_string(),
        items,
        metrics,
        shots,
        data_files,
        scorer: scorer(kind),
    })
}

fn voted(per_response: &[String]) -> String {
    majority_vote(per_response).unwrap_or_default()
}

/// Scores one item's responses (one per sample; k ≥ 1) for the text tasks: per metric, the
/// extracted answer of each response, their majority vote (maj@k; with one response, that
/// response's answer), and the metric on it. Code tasks return no scores here (the programs
/// must be run; see [`score_code`]).
pub fn score_responses(task: &GenTaskInstance, item: &GenItem, responses: &[String]) -> ItemScores {
    let scores = match &task.scorer {
        Scorer::Code(_) => Vec::new(),
        Scorer::Filters(filters, em) => filters
            .iter()
            .map(|(metric, filter, extractor)| {
                let per_response: Vec<String> = responses.iter().map(|r| extractor.apply(r)).collect();
                let answer = voted(&per_response);
                let value = if responses.is_empty() {
                    0.0
                } else {
                    em.score(&answer, &item.references)
                };
                MetricScore {
                    metric: *metric,
                    lm_eval_key: format!("exact_match,{filter}"),
                    value,
                    answer,
                    per_response,
                }
            })
            .collect(),
        Scorer::Minerva => {
            // minerva_math/utils.py process_results: is_equiv(normalize_final_answer(
            // get_unnormalized_answer(response)), doc["answer"]).
            let per_response: Vec<String> = responses
                .iter()
                .map(|r| normalize_final_answer(&minerva_unnormalized_answer(r)))
                .collect();
            let answer = voted(&per_response);
            let gold = item.references.first().map_or("", String::as_str);
            let value = if !responses.is_empty() && is_equiv(&answer, gold) {
                1.0
            } else {
                0.0
            };
            vec![MetricScore {
                metric: GenMetric::ExactMatch,
                lm_eval_key: "exact_match,none".into(),
                value,
                answer,
                per_response,
            }]
        }
    };
    ItemScores { scores }
}

/// pass@k of a code item from the execution results of its samples (one bool per response,
/// true = the program exited successfully within the timeout), for each `PassAt(k)` of the task
/// with k ≤ the number of samples (code_eval reports pass@k only when every problem has ≥ k).
pub fn score_code(task: &GenTaskInstance, passed: &[bool]) -> ItemScores {
    let n = passed.len();
    let c = passed.iter().filter(|&&p| p).count();
    let key = match &task.scorer {
        Scorer::Code(key) => *key,
        _ => "pass@{k}",
    };
    let scores = task
        .metrics
        .iter()
        .filter_map(|m| match m {
            GenMetric::PassAt(k) => pass_at_k(n, c, *k).map(|value| MetricScore {
                metric: *m,
                lm_eval_key: key.replace("{k}", &k.to_string()),
                value,
                answer: String::new(),
                per_response: passed
                    .iter()
                    .map(|p| if *p { "passed" } else { "failed" }.to_string())
                    .collect(),
            }),
            _ => None,
        })
        .collect();
    ItemScores { scores }
}
