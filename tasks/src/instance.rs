//! A task definition + its data → the requests the harness runs, and what scoring needs
//! (api/task.py `build_all_requests` → `fewshot_context` + `construct_requests`):
//!
//! - multiple_choice: one log-likelihood request per choice, `(context, target_delimiter +
//!   choice)`; for "multiple input" (an integer `doc_to_text`) one per choice as context,
//!   `(context_i, target_delimiter + doc_to_target)`; the gold index is the target (an index, or
//!   the position of the target text among the choices) or, for multiple input, `doc_to_text`;
//! - generate_until: one request, `(context, generation_kwargs)`.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::config::{GenerationKwargs, OutputType, TaskDef};
use crate::dataset::{Doc, read_split};
use crate::error::TaskError;
use crate::fewshot::{Fewshot, pick};
use crate::fields::{self, Target, Text, field_error};
use crate::scoring::Metrics;
use crate::{CodeCheck, DEFAULT_FEWSHOT_SEED, GenItem, LoglikelihoodRequest, McItem};

/// How to load a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// Few-shot count (lm-eval `--num_fewshot`); `None` = the task file's `num_fewshot`, else 0.
    pub shots: Option<usize>,
    /// Few-shot seed (lm-eval's `fewshot_random_seed`, default 1234).
    pub seed: u64,
    /// Only the first N documents, in data order (lm-eval `--limit N`); the few-shot draws of a
    /// document do not depend on N.
    pub limit: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            shots: None,
            seed: DEFAULT_FEWSHOT_SEED,
            limit: None,
        }
    }
}

/// A loaded task: its items, how to score them, and what produced them.
#[derive(Debug, Clone)]
pub struct Task {
    pub name: String,
    pub output_type: OutputType,
    /// The few-shot count used.
    pub shots: usize,
    pub items: Vec<Item>,
    /// For generate_until tasks.
    pub generation: Option<GenerationKwargs>,
    /// `target_delimiter` (a chat template drops it before multiple-choice continuations).
    pub target_delimiter: String,
    /// The data files read (evaluation split, label files, the few-shot split when used).
    pub data_files: Vec<PathBuf>,
    /// The task's definition as lm-eval's results file shows it (`configs.<task>`), with
    /// `num_fewshot` set to the count used.
    pub config: Json,
    /// `metadata.version` of the task file.
    pub version: Option<Json>,
    pub(crate) metrics: Metrics,
}

/// One evaluated document.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Index in the evaluation split, data order.
    pub doc_id: usize,
    /// The document (after the task's `process_docs` hook), as lm-eval's samples file shows it.
    pub doc: Json,
    /// `doc_to_target` as lm-eval gives it (an index, a text or a list).
    pub target: Json,
    /// The rendered description the context starts with (a chat template's system turn).
    pub description: String,
    pub request: Request,
}

/// What the model is asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// multiple_choice: one log-likelihood request per choice.
    Choice(McItem),
    /// generate_until.
    Generate(GenItem),
}

impl Item {
    /// The prompt(s) as text, for reading (`harness tasks --show`).
    pub fn show(&self) -> String {
        match &self.request {
            Request::Choice(mc) => {
                let mut out = String::new();
                let shared = mc.requests.windows(2).all(|w| w[0].context == w[1].context);
                if shared {
                    out.push_str(&mc.requests.first().map(|r| r.context.clone()).unwrap_or_default());
                    out.push('\n');
                }
                for (i, r) in mc.requests.iter().enumerate() {
                    let mark = if i == mc.gold { "*" } else { " " };
                    if shared {
                        out.push_str(&format!("{mark} choice {i}: {:?}\n", r.continuation));
                    } else {
                        out.push_str(&format!("{mark} choice {i}: {:?} + {:?}\n", r.context, r.continuation));
                    }
                }
                out
            }
            Request::Generate(g) => format!(
                "{}\n(until {:?}, max_gen_toks {}; target {:?})\n",
                g.context, g.until, g.max_gen_toks, g.target
            ),
        }
    }
}

/// Loads a task's data and builds its requests.
pub(crate) fn load(def: &TaskDef, data_dir: &Path, options: &LoadOptions) -> Result<Task, TaskError> {
    let (eval_split, docs, mut data_files) = eval_docs(def, data_dir)?;
    if docs.is_empty() {
        return Err(def
            .dataset
            .loc
            .error(format!("the evaluated split `{eval_split}` has no documents")));
    }
    let has_choices = def.doc_to_choice.is_some();
    // lm-eval decides "multiple input" from the first document.
    let multiple_input = has_choices
        && matches!(
            fields::text(&def.doc_to_text, &docs[0], &def.templates, true)?,
            Text::Index(_)
        );
    let shots = options.shots.or(def.num_fewshot).unwrap_or(0);
    let mut fewshot = Fewshot::new(def, shots, options.seed, data_dir, multiple_input, &mut data_files)?;
    let n = options.limit.map_or(docs.len(), |l| l.min(docs.len()));
    let mut items = Vec::with_capacity(n);
    for (doc_id, doc) in docs.into_iter().take(n).enumerate() {
        let description = match &def.description {
            Some(field) => match fields::text(field, &doc, &def.templates, false)? {
                Text::Text(s) => s,
                Text::Index(i) => i.to_string(),
            },
            None => String::new(),
        };
        let prefix = description.clone() + &fewshot.examples_for(&doc)?;
        let target = fields::target(&def.doc_to_target, &doc, &def.templates, has_choices)?;
        let request = match def.output_type {
            OutputType::MultipleChoice => {
                Request::Choice(choice_item(def, doc_id, &doc, &prefix, &target, multiple_input)?)
            }
            OutputType::GenerateUntil => Request::Generate(gen_item(def, doc_id, &doc, prefix, &description, &target)?),
        };
        items.push(Item {
            doc_id,
            doc: doc.value,
            target: target.to_json(),
            description,
            request,
        });
    }
    let mut config = def.config.clone();
    if let Some(map) = config.as_object_mut() {
        map.insert("num_fewshot".into(), Json::from(shots));
    }
    Ok(Task {
        name: def.name.clone(),
        output_type: def.output_type,
        shots,
        items,
        generation: def.generation.clone(),
        target_delimiter: def.target_delimiter.clone(),
        data_files,
        version: def.config.get("metadata").and_then(|m| m.get("version")).cloned(),
        config,
        metrics: def.metrics.clone(),
    })
}

/// The evaluation split: `test_split` if set, else `validation_split` (`eval_docs`).
fn eval_docs(def: &TaskDef, data_dir: &Path) -> Result<(String, Vec<Doc>, Vec<PathBuf>), TaskError> {
    let name = def
        .splits
        .test
        .as_ref()
        .or(def.splits.validation.as_ref())
        .ok_or_else(|| {
            def.loc
                .error("the task names no `test_split` or `validation_split` to evaluate")
        })?;
    match read_split(def, name, data_dir)? {
        Some(split) => Ok((name.clone(), split.docs, split.files)),
        None => Err(def.dataset.loc.error(format!(
            "`dataset_kwargs.data_files` has no file for the evaluated split `{name}`"
        ))),
    }
}

fn choice_item(
    def: &TaskDef,
    doc_id: usize,
    doc: &Doc,
    prefix: &str,
    target: &Target,
    multiple_input: bool,
) -> Result<McItem, TaskError> {
    let choice_field = def
        .doc_to_choice
        .as_ref()
        .expect("multiple_choice tasks have doc_to_choice");
    let choices = fields::choices(choice_field, doc, &def.templates)?;
    let text = fields::text(&def.doc_to_text, doc, &def.templates, true)?;
    let delim = &def.target_delimiter;
    let (requests, gold): (Vec<LoglikelihoodRequest>, i64) = match (text, multiple_input) {
        (Text::Index(gold), true) => (
            choices
                .iter()
                .map(|c| LoglikelihoodRequest {
                    context: format!("{prefix}{c}"),
                    continuation: format!("{delim}{}", target.display()),
                })
                .collect(),
            gold,
        ),
        (Text::Text(q), false) => {
            let context = format!("{prefix}{q}");
            let gold = match target {
                Target::Index(i) => *i,
                Target::Text(t) => choices.iter().position(|c| c == t).map_or(-1, |p| p as i64),
                Target::List(_) => {
                    return Err(field_error(
                        &def.doc_to_target,
                        doc,
                        "several targets (a list) are not supported for multiple_choice",
                    ));
                }
            };
            let requests = choices
                .iter()
                .map(|c| LoglikelihoodRequest {
                    context: context.clone(),
                    continuation: format!("{delim}{c}"),
                })
                .collect();
            (requests, gold)
        }
        _ => {
            return Err(field_error(
                &def.doc_to_text,
                doc,
                "gives text for some documents and an index for others",
            ));
        }
    };
    let gold = usize::try_from(gold)
        .ok()
        .filter(|&g| g < choices.len())
        .ok_or_else(|| {
            field_error(
                &def.doc_to_target,
                doc,
                &format!(
                    "label out of range: target {} is not one of the {} choices {choices:?}",
                    target.display(),
                    choices.len()
                ),
            )
        })?;
    Ok(McItem {
        doc_id,
        requests,
        choice_chars: choices.iter().map(|c| c.chars().count()).collect(),
        gold,
    })
}

fn gen_item(
    def: &TaskDef,
    doc_id: usize,
    doc: &Doc,
    prefix: String,
    description: &str,
    target: &Target,
) -> Result<GenItem, TaskError> {
    let question = match fields::text(&def.doc_to_text, doc, &def.templates, def.doc_to_choice.is_some())? {
        Text::Text(q) => q,
        Text::Index(_) => {
            return Err(field_error(
                &def.doc_to_text,
                doc,
                "a generate_until prompt must be text",
            ));
        }
    };
    let hook = match &def.metrics {
        Metrics::Hook(h) => Some(h),
        _ => None,
    };
    let shown = target.display();
    // process_results (generate_until): with doc_to_choice the target indexes the choices; a
    // list is several references; else str(target).
    let references = match (hook.and_then(|h| h.gold(&doc.value)), target, &def.doc_to_choice) {
        (Some(gold), _, _) => vec![gold],
        (None, Target::Index(i), Some(field)) => {
            let choices = fields::choices(field, doc, &def.templates)?;
            vec![
                pick(&choices, *i)
                    .ok_or_else(|| field_error(&def.doc_to_target, doc, &format!("label out of range: target {i}")))?,
            ]
        }
        (None, Target::List(items), _) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map_or_else(|| crate::pytext::py_repr_json(v), str::to_string)
            })
            .collect(),
        (None, _, _) => vec![shown.clone()],
    };
    let code: Option<CodeCheck> = match hook {
        Some(h) => h.code_check(doc, &shown)?,
        None => None,
    };
    let generation = def
        .generation
        .clone()
        .expect("generate_until tasks have generation kwargs");
    Ok(GenItem {
        doc_id,
        context: prefix + &question,
        description: description.to_string(),
        until: generation.until,
        max_gen_toks: generation.max_gen_toks,
        target: hook.and_then(|h| h.gold(&doc.value)).unwrap_or(shown),
        references: if code.is_some() { Vec::new() } else { references },
        code,
    })
}
