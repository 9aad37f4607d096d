//! The code some tasks need, named from their task files (`process_docs: hellaswag`,
//! `process_results: humaneval`), where lm-eval's files name Python functions
//! (`!function utils.process_docs`). Everything else about these tasks is in their files.
//!
//! | hook | where | what (lm-eval's code it stands for) |
//! |---|---|---|
//! | `hellaswag` | process_docs | hellaswag/utils.py `process_docs`: `query`, `choices`, `gold` |
//! | `lst_labels` | process_docs | the bundled piqa/siqa data keep labels in `<file>-labels.lst.gz` beside `<file>.jsonl.gz`: adds `label` (HF's data sets have the column) |
//! | `minerva_math` | process_docs | minerva_math/utils.py `process_docs`: `answer` from the solution's last `\boxed{}` |
//! | `mbpp_test_split` | process_docs | the bundled mbpp file holds every split; keeps the HF `test` split (task ids 11–510) |
//! | `minerva_math` | process_results | minerva_math/utils.py `process_results`: `exact_match` by LaTeX equivalence ([`crate::is_equiv`]) |
//! | `humaneval` | process_results | humaneval/utils.py: `create_test` filter (prompt + completion) and `pass_at_k` (HF `code_eval`) |
//! | `mbpp` | process_results | mbpp/utils.py `pass_at_1` (HF `code_eval` on the completion) |

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::config::{metric_name, string};
use crate::dataset::Doc;
use crate::error::TaskError;
use crate::minerva::{minerva_gold_answer, minerva_unnormalized_answer, normalize_final_answer};
use crate::pytext::{py_capitalize, py_strip};
use crate::scoring::{Metrics, majority_vote};
use crate::yaml::{Loc, Node};
use crate::{CodeCheck, GenMetric, ItemScores, MetricScore, data, latex, pass_at_k};

/// A `process_docs` hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DocsHook {
    Hellaswag,
    LstLabels,
    MinervaMath,
    MbppTestSplit,
}

/// A `process_results` hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResultsHook {
    MinervaMath,
    /// pass@k for each k of the `pass_at_k` metric entry.
    Humaneval {
        ks: Vec<usize>,
    },
    Mbpp,
}

/// The hook names, for error messages.
pub(crate) fn hook_names() -> String {
    "process_docs: hellaswag, lst_labels, minerva_math, mbpp_test_split; \
     process_results: minerva_math, humaneval, mbpp"
        .into()
}

/// HF evaluate's `code_eval` default per-program timeout (`_compute(..., timeout=3.0)`).
pub(crate) const CODE_EVAL_TIMEOUT_S: f64 = 3.0;

impl DocsHook {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "hellaswag" => DocsHook::Hellaswag,
            "lst_labels" => DocsHook::LstLabels,
            "minerva_math" => DocsHook::MinervaMath,
            "mbpp_test_split" => DocsHook::MbppTestSplit,
            _ => return None,
        })
    }

    /// Transforms one split's documents; returns them and any further files read.
    pub(crate) fn apply(self, docs: Vec<Doc>) -> Result<(Vec<Doc>, Vec<PathBuf>), TaskError> {
        match self {
            DocsHook::Hellaswag => Ok((docs.into_iter().map(hellaswag).collect::<Result<_, _>>()?, vec![])),
            DocsHook::LstLabels => lst_labels(docs),
            DocsHook::MinervaMath => Ok((docs.into_iter().map(minerva_doc).collect::<Result<_, _>>()?, vec![])),
            DocsHook::MbppTestSplit => Ok((
                docs.into_iter()
                    .filter(|d| {
                        d.value
                            .get("task_id")
                            .and_then(Json::as_i64)
                            .is_some_and(|id| (11..=510).contains(&id))
                    })
                    .collect(),
                vec![],
            )),
        }
    }
}

fn text_field<'a>(doc: &'a Doc, key: &str) -> Result<&'a str, TaskError> {
    doc.value
        .get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| doc.error(format!("missing text field `{key}`")))
}

/// hellaswag/utils.py: query = preprocess(activity_label + ": " + ctx_a + " " +
/// ctx_b.capitalize()), choices = [preprocess(e) for e in endings], gold = int(label).
fn hellaswag(mut doc: Doc) -> Result<Doc, TaskError> {
    let query = hellaswag_preprocess(&format!(
        "{}: {} {}",
        text_field(&doc, "activity_label")?,
        text_field(&doc, "ctx_a")?,
        py_capitalize(text_field(&doc, "ctx_b")?)
    ));
    let endings = doc
        .value
        .get("endings")
        .and_then(Json::as_array)
        .ok_or_else(|| doc.error("missing list field `endings`"))?;
    let choices: Vec<Json> = endings
        .iter()
        .map(|e| e.as_str().map(|s| Json::String(hellaswag_preprocess(s))))
        .collect::<Option<_>>()
        .ok_or_else(|| doc.error("`endings` must hold strings"))?;
    let gold = match doc.value.get("label") {
        Some(Json::Number(n)) => n.as_i64(),
        Some(Json::String(s)) => py_strip(s).parse().ok(),
        _ => None,
    }
    .ok_or_else(|| doc.error("bad label (an integer is expected)"))?;
    let map = doc.value.as_object_mut().expect("documents are objects");
    map.insert("query".into(), Json::String(query));
    map.insert("choices".into(), Json::Array(choices));
    map.insert("gold".into(), Json::from(gold));
    Ok(doc)
}

/// hellaswag/utils.py `preprocess`: strip; " [title]" → ". "; drop `\[.*?\]`; "  " → " ".
pub(crate) fn hellaswag_preprocess(text: &str) -> String {
    let text = py_strip(text).replace(" [title]", ". ");
    remove_bracketed(&text).replace("  ", " ")
}

/// `re.sub("\\[.*?\\]", "", text)`: `.` does not cross a newline.
fn remove_bracketed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find([']', '\n']) {
            Some(close) if after.as_bytes()[close] == b']' => rest = &after[close + 1..],
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `label` from the `.lst` file beside each data file (one integer per line, same order).
fn lst_labels(docs: Vec<Doc>) -> Result<(Vec<Doc>, Vec<PathBuf>), TaskError> {
    let mut out = Vec::with_capacity(docs.len());
    let mut files = Vec::new();
    let mut rest = docs.into_iter().peekable();
    while let Some(first) = rest.next() {
        let file = first.loc.file.clone();
        let mut group = vec![first];
        while rest.peek().is_some_and(|d| d.loc.file == file) {
            group.extend(rest.next());
        }
        let labels_path = labels_file(&file);
        let labels = data::int_lines(&labels_path)?;
        if labels.len() != group.len() {
            let line = labels.len().min(group.len()) + 1;
            return Err(TaskError::malformed(
                &labels_path,
                line,
                format!("{} labels for {} records", labels.len(), group.len()),
            ));
        }
        for (mut doc, (_, label)) in group.into_iter().zip(labels) {
            doc.value
                .as_object_mut()
                .expect("documents are objects")
                .insert("label".into(), Json::from(label));
            out.push(doc);
        }
        files.push(labels_path);
    }
    Ok((out, files))
}

/// `dev.jsonl.gz` → `dev-labels.lst.gz`.
fn labels_file(data: &Path) -> PathBuf {
    let name = data.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let stem = name
        .trim_end_matches(".gz")
        .trim_end_matches(".jsonl")
        .trim_end_matches(".json");
    data.with_file_name(format!("{stem}-labels.lst.gz"))
}

/// minerva_math/utils.py `process_docs`: answer = normalize_final_answer(remove_boxed(
/// last_boxed_only_string(solution))).
fn minerva_doc(mut doc: Doc) -> Result<Doc, TaskError> {
    let answer = minerva_gold_answer(text_field(&doc, "solution")?)
        .ok_or_else(|| doc.error("solution has no \\boxed{...} answer (lm-eval's process_docs fails)"))?;
    doc.value
        .as_object_mut()
        .expect("documents are objects")
        .insert("answer".into(), Json::String(answer));
    Ok(doc)
}

impl ResultsHook {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "minerva_math" => ResultsHook::MinervaMath,
            "humaneval" => ResultsHook::Humaneval { ks: vec![1] },
            "mbpp" => ResultsHook::Mbpp,
            _ => return None,
        })
    }

    /// The hook's metrics, checked against the file's `metric_list` (which names them as
    /// lm-eval's file does: `exact_match`; `pass_at_k` with `k`; `pass_at_1`).
    pub(crate) fn metrics(&self, entries: &[Node], loc: &Loc) -> Result<Metrics, TaskError> {
        let mut hook = self.clone();
        let expected = match self {
            ResultsHook::MinervaMath => "exact_match",
            ResultsHook::Humaneval { .. } => "pass_at_k",
            ResultsHook::Mbpp => "pass_at_1",
        };
        for entry in entries {
            let (mut k, metric) = metric_name(entry)?;
            let name = string(&metric)?;
            if name != expected {
                return Err(metric.loc.error(format!(
                    "this task's process_results hook reports `{expected}`, not `{name}`"
                )));
            }
            if let (ResultsHook::Humaneval { ks }, Some(n)) = (&mut hook, k.take("k")) {
                *ks = list_of_counts(&n)?;
            }
            k.reject_rest()?;
        }
        if entries.is_empty() {
            return Err(loc.error(format!("`metric_list` must name the hook's metric `{expected}`")));
        }
        Ok(Metrics::Hook(hook))
    }

    /// `target` and the references scoring compares with, where the hook decides them.
    pub(crate) fn gold(&self, doc: &Json) -> Option<String> {
        match self {
            // Scoring compares with doc["answer"] itself (utils.py process_results).
            ResultsHook::MinervaMath => doc.get("answer").and_then(Json::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// What the sandbox must run for a code item (`target` = lm-eval's `doc_to_target`).
    pub(crate) fn code_check(&self, doc: &Doc, target: &str) -> Result<Option<CodeCheck>, TaskError> {
        let field = |key: &str| -> Result<String, TaskError> {
            match doc.value.get(key) {
                Some(Json::String(s)) => Ok(s.clone()),
                Some(Json::Number(n)) => Ok(n.to_string()),
                _ => Err(doc.error(format!("missing field `{key}`"))),
            }
        };
        let (prefix, canonical) = match self {
            ResultsHook::MinervaMath => return Ok(None),
            // create_test (utils.build_predictions): prediction = prompt + response.
            ResultsHook::Humaneval { .. } => (field("prompt")?, field("canonical_solution")?),
            ResultsHook::Mbpp => (String::new(), field("code")?),
        };
        Ok(Some(CodeCheck {
            task_id: field("task_id")?,
            prefix,
            test: target.to_string(),
            canonical_solution: canonical,
            timeout_s: CODE_EVAL_TIMEOUT_S,
        }))
    }

    /// The metrics this hook reports.
    pub(crate) fn gen_metrics(&self) -> Vec<GenMetric> {
        match self {
            ResultsHook::MinervaMath => vec![GenMetric::ExactMatch],
            ResultsHook::Humaneval { ks } => ks.iter().map(|&k| GenMetric::PassAt(k)).collect(),
            ResultsHook::Mbpp => vec![GenMetric::PassAt(1)],
        }
    }

    /// lm-eval's results key for a metric of this hook.
    pub(crate) fn key(&self, metric: GenMetric) -> String {
        match (self, metric) {
            (ResultsHook::Humaneval { .. }, GenMetric::PassAt(k)) => format!("pass@{k},create_test"),
            (ResultsHook::Mbpp, GenMetric::PassAt(k)) => format!("pass_at_{k},none"),
            _ => "exact_match,none".into(),
        }
    }

    /// minerva_math process_results: is_equiv(normalize_final_answer(get_unnormalized_answer(
    /// response)), doc["answer"]); with several responses, a vote over the normalized answers.
    /// Code hooks return nothing here (the programs must run; see [`crate::score_code`]).
    pub(crate) fn score_text(&self, references: &[String], responses: &[String]) -> ItemScores {
        if *self != ResultsHook::MinervaMath {
            return ItemScores::default();
        }
        let per_response: Vec<String> = responses
            .iter()
            .map(|r| normalize_final_answer(&minerva_unnormalized_answer(r)))
            .collect();
        let answer = majority_vote(&per_response).unwrap_or_default();
        let gold = references.first().map_or("", String::as_str);
        let value = if !responses.is_empty() && latex::is_equiv(&answer, gold) {
            1.0
        } else {
            0.0
        };
        ItemScores {
            scores: vec![MetricScore {
                metric: GenMetric::ExactMatch,
                lm_eval_key: self.key(GenMetric::ExactMatch),
                value,
                answer,
                per_response,
            }],
        }
    }

    /// pass@k for each of `metrics`' `PassAt(k)` from the execution results of an item's samples
    /// (code_eval reports pass@k only when there are at least k samples).
    pub(crate) fn score_code(&self, passed: &[bool], metrics: &[GenMetric]) -> ItemScores {
        let n = passed.len();
        let c = passed.iter().filter(|&&p| p).count();
        let scores = metrics
            .iter()
            .filter_map(|&m| match m {
                GenMetric::PassAt(k) => pass_at_k(n, c, k).map(|value| MetricScore {
                    metric: m,
                    lm_eval_key: self.key(m),
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
}

fn list_of_counts(node: &Node) -> Result<Vec<usize>, TaskError> {
    match &node.value {
        crate::yaml::Yaml::Seq(items) => items.iter().map(crate::config::count).collect(),
        _ => Ok(vec![crate::config::count(node)?]),
    }
}

impl Doc {
    pub(crate) fn error(&self, message: impl Into<String>) -> TaskError {
        TaskError::Malformed {
            path: self.loc.file.to_path_buf(),
            line: self.loc.line,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellaswag_preprocess_is_lm_evals() {
        // Python: preprocess(" [header] How to x [title] Do y. [step] Z [a\nb] ")
        assert_eq!(
            hellaswag_preprocess(" [header] How to x [title] Do y. [step] Z [a\nb] "),
            " How to x. Do y. Z [a\nb]"
        );
        assert_eq!(hellaswag_preprocess("[step] Water"), " Water");
        assert_eq!(hellaswag_preprocess("a [b [c] d] e"), "a d] e");
        assert_eq!(hellaswag_preprocess("tap the \" [\" button"), "tap the \" [\" button");
    }

    #[test]
    fn label_files_sit_beside_the_data() {
        assert_eq!(
            labels_file(Path::new("/d/piqa/valid.jsonl.gz")),
            Path::new("/d/piqa/valid-labels.lst.gz")
        );
        assert_eq!(
            labels_file(Path::new("siqa/dev.jsonl")),
            Path::new("siqa/dev-labels.lst.gz")
        );
    }
}
