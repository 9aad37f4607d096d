//! The one few-shot context builder for both task families (lm_eval/api/task.py
//! `fewshot_context` and `build_qa_turn`, lm_eval/api/samplers.py):
//!
//! ```text
//! context = description
//!         + Σ over few-shot docs: doc_to_text(fs) + target_delimiter + answer(fs) + fewshot_delimiter
//!         + doc_to_text(doc)
//! ```
//!
//! `answer(fs)` is `choices[target]` for an index target, the first of a list target, else the
//! target text; a few-shot doc with an empty answer contributes its text alone. For "multiple
//! input" tasks a few-shot doc's text is `choices[doc_to_text(fs)]`. Few-shot formatting uses
//! `fewshot_config`'s fields where it sets them.
//!
//! Where the examples come from (`ConfigurableTask.fewshot_docs`): `fewshot_split`, else
//! `fewshot_config.samples`, else `training_split`, else `validation_split`. lm-eval would then
//! fall back to the evaluated split itself; that is refused here (the examples would include
//! the answers being evaluated).
//!
//! Samplers: `first_n` takes the first n; the default sampler is one `random.Random(seed)` per
//! task (`set_fewshot_seed`), advanced by one `sample(pool, n)` per evaluated document in data
//! order — `sample(pool, n + 1)` without the evaluated document when lm-eval passes it, which it
//! does when `fewshot_split == test_split` (both unset for tasks evaluated on validation).

use crate::config::{Sampler, TaskDef};
use crate::dataset::{Doc, Split, read_split};
use crate::error::TaskError;
use crate::fields::{self, Target, Text};
use crate::pyrandom::PyRandom;

/// Draws and renders the few-shot examples of each evaluated document.
pub(crate) struct Fewshot<'a> {
    def: &'a TaskDef,
    shots: usize,
    pool: Vec<Doc>,
    rng: Option<PyRandom>,
    pass_eval_doc: bool,
    multiple_input: bool,
    /// Rendered examples by pool index.
    rendered: Vec<Option<String>>,
}

impl<'a> Fewshot<'a> {
    /// The examples for `shots` > 0 (the pool's files are added to `files`); checks there are
    /// enough.
    pub(crate) fn new(
        def: &'a TaskDef,
        shots: usize,
        seed: u64,
        data_dir: &std::path::Path,
        multiple_input: bool,
        files: &mut Vec<std::path::PathBuf>,
    ) -> Result<Self, TaskError> {
        let fail = |message: String| TaskError::Fewshot {
            task: def.name.clone(),
            message,
        };
        let pool = if shots == 0 {
            Vec::new()
        } else {
            pool(def, data_dir, shots, files).map_err(|e| e.or_fewshot(&fail))?
        };
        let pass_eval_doc = def.splits.fewshot == def.splits.test;
        let need = match def.fewshot.sampler {
            Sampler::FirstN => shots,
            Sampler::Default => shots + usize::from(pass_eval_doc),
        };
        if shots > 0 && need > pool.len() {
            let what = if def.fewshot.samples.is_some() {
                "fixed examples"
            } else {
                "docs in the few-shot split"
            };
            return Err(fail(format!(
                "{shots} shots requested, but there are only {} {what}",
                pool.len()
            )));
        }
        Ok(Fewshot {
            def,
            shots,
            rendered: vec![None; pool.len()],
            pool,
            rng: (def.fewshot.sampler == Sampler::Default).then(|| PyRandom::new(seed)),
            pass_eval_doc,
            multiple_input,
        })
    }

    /// The few-shot examples before `doc`, as one text.
    pub(crate) fn examples_for(&mut self, doc: &Doc) -> Result<String, TaskError> {
        if self.shots == 0 {
            return Ok(String::new());
        }
        let picked: Vec<usize> = match self.rng.as_mut() {
            None => (0..self.shots).collect(),
            Some(rng) => {
                let k = self.shots + usize::from(self.pass_eval_doc);
                let drawn = rng.sample(self.pool.len(), k).map_err(|e| TaskError::Fewshot {
                    task: self.def.name.clone(),
                    message: format!("cannot sample {} of {} few-shot docs", e.k, e.population),
                })?;
                // rm_eval_doc: `[x for x in drawn if x != doc][:n]` (dict equality).
                drawn
                    .into_iter()
                    .filter(|&i| !self.pass_eval_doc || self.pool[i].value != doc.value)
                    .take(self.shots)
                    .collect()
            }
        };
        let mut out = String::new();
        for i in picked {
            if self.rendered[i].is_none() {
                self.rendered[i] = Some(example(self.def, &self.pool[i], self.multiple_input)?);
            }
            out.push_str(self.rendered[i].as_deref().unwrap_or_default());
        }
        Ok(out)
    }
}

/// The few-shot pool, in order.
fn pool(
    def: &TaskDef,
    data_dir: &std::path::Path,
    shots: usize,
    files: &mut Vec<std::path::PathBuf>,
) -> Result<Vec<Doc>, PoolError> {
    let split = |name: &str, files: &mut Vec<std::path::PathBuf>| -> Result<Vec<Doc>, PoolError> {
        match read_split(def, name, data_dir).map_err(PoolError::Task)? {
            Some(Split { docs, files: read }) => {
                files.extend(read.into_iter().filter(|f| !files.contains(f)).collect::<Vec<_>>());
                Ok(docs)
            }
            None => Err(PoolError::Missing(format!(
                "{shots} shots requested, but lm-eval takes few-shot examples from the `{name}` split, which has \
                 no data file here (dataset_kwargs.data_files); only 0-shot is available"
            ))),
        }
    };
    if let Some(name) = &def.splits.fewshot {
        return split(name, files);
    }
    if let Some(samples) = &def.fewshot.samples {
        return Ok(samples
            .iter()
            .map(|s| Doc {
                value: s.value.clone(),
                loc: s.loc.clone(),
            })
            .collect());
    }
    match (&def.splits.training, &def.splits.validation) {
        (Some(name), _) | (None, Some(name)) => split(name, files),
        (None, None) => Err(PoolError::Missing(format!(
            "{shots} shots requested, but the task has no split to take examples from other than the evaluated \
             one; only 0-shot is available"
        ))),
    }
}

enum PoolError {
    Task(TaskError),
    Missing(String),
}

impl PoolError {
    fn or_fewshot(self, fail: &dyn Fn(String) -> TaskError) -> TaskError {
        match self {
            PoolError::Task(e) => e,
            PoolError::Missing(m) => fail(m),
        }
    }
}

/// One few-shot example (`build_qa_turn` with an answer, then the few-shot delimiter).
fn example(def: &TaskDef, doc: &Doc, multiple_input: bool) -> Result<String, TaskError> {
    let fs = &def.fewshot;
    let has_choices = def.doc_to_choice.is_some();
    let text = fields::text(&fs.doc_to_text, doc, &def.templates, has_choices)?;
    let mut choices = match &fs.doc_to_choice {
        Some(f) => Some(fields::choices(f, doc, &def.templates)?),
        None => None,
    };
    let answer = fields::target(&fs.doc_to_target, doc, &def.templates, has_choices)?;
    let question = match text {
        Text::Text(q) if !multiple_input => q,
        Text::Index(i) if multiple_input => {
            let picked = pick(choices.as_deref().unwrap_or_default(), i)
                .ok_or_else(|| doc.error(format!("doc_to_text index {i} is not a choice")))?;
            choices = None;
            picked
        }
        _ => return Err(doc.error("doc_to_text gives text for some documents and an index for others")),
    };
    let answer = match answer {
        Target::Text(s) if s.is_empty() => return Ok(question),
        Target::Text(s) => s,
        Target::Index(i) => match &choices {
            Some(c) => {
                pick(c, i).ok_or_else(|| doc.error(format!("label out of range: target {i} of {} choices", c.len())))?
            }
            None => {
                return Err(doc.error(format!(
                    "the few-shot answer is the integer {i}, and the task has no choices to index"
                )));
            }
        },
        Target::List(items) => match items.first() {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => return Err(doc.error("a list target's first element must be a string to show as the answer")),
        },
    };
    Ok(format!(
        "{question}{}{answer}{}",
        fs.target_delimiter, fs.fewshot_delimiter
    ))
}

pub(crate) fn pick(choices: &[String], i: i64) -> Option<String> {
    usize::try_from(i).ok().and_then(|i| choices.get(i)).cloned()
}
