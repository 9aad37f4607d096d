//! Scoring as a task file's `filter_list` and `metric_list` define it (lm-eval 0.4.12):
//!
//! - filters (lm_eval/filters/): `regex` (`RegexFilter`: `re.findall`, `group_select`, a tuple
//!   of groups → its first non-empty group, `.strip()`, else `fallback`), `remove_whitespace`
//!   (`str.strip()`), `majority_vote` (`Counter(resps).most_common(1)`), `take_first`;
//! - multiple-choice metrics `acc` and `acc_norm` (api/task.py `process_results`);
//! - `exact_match` (api/metrics.py `exact_match_hf_evaluate`): `re.sub(r, "", ·)` for each of
//!   `regexes_to_ignore` in order, then `lower()`, then removal of `string.punctuation`, then of
//!   digits, on prediction and reference alike, then string equality; with several references
//!   (a list target) 1 if any matches.
//!
//! With several responses per item (the harness's `--samples k`), a pipeline that has no
//! `majority_vote` step votes before its `take_first`: maj@k, as lm-eval's self-consistency
//! task files write it (`regex`, `majority_vote`, `take_first`). A pipeline always ends in one
//! answer (`take_first` is implied at its end, as lm-eval's default pipeline is).

use fancy_regex::Regex;

use crate::pyregex;
use crate::pytext::py_strip;
use crate::{GenItem, GenMetric, ItemScores, MetricScore};

/// lm-eval's `RegexFilter` fallback.
pub(crate) const INVALID: &str = "[invalid]";

/// The per-item metrics of a multiple-choice task (each aggregated as a mean).
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
    pub fn score(&self, item: &crate::McItem, loglikelihoods: &[f64]) -> f64 {
        let (pred, pred_norm) = item.predictions(loglikelihoods);
        let pred = match self {
            Metric::Acc => pred,
            Metric::AccNorm => pred_norm,
        };
        if pred == item.gold { 1.0 } else { 0.0 }
    }
}

/// One step of a filter pipeline.
#[derive(Debug, Clone)]
pub(crate) enum FilterStep {
    Regex(RegexFilter),
    RemoveWhitespace,
    MajorityVote,
    TakeFirst,
}

/// A named filter pipeline (`filter_list` entry); its name is the filter part of lm-eval's
/// metric keys (`exact_match,strict-match`).
#[derive(Debug, Clone)]
pub(crate) struct FilterPipeline {
    pub name: String,
    pub steps: Vec<FilterStep>,
}

impl FilterPipeline {
    /// lm-eval's pipeline when a task has no `filter_list`: `none` = `take_first`.
    pub(crate) fn none() -> Self {
        FilterPipeline {
            name: "none".into(),
            steps: vec![FilterStep::TakeFirst],
        }
    }

    /// (each response after the per-response steps, the pipeline's answer).
    pub(crate) fn apply(&self, responses: &[String]) -> (Vec<String>, String) {
        let mut current: Vec<String> = responses.to_vec();
        let mut per_response: Option<Vec<String>> = None;
        let voted_explicitly = self.steps.iter().any(|s| matches!(s, FilterStep::MajorityVote));
        for step in &self.steps {
            match step {
                FilterStep::Regex(r) => current = current.iter().map(|x| r.apply(x)).collect(),
                FilterStep::RemoveWhitespace => current = current.iter().map(|x| py_strip(x).to_string()).collect(),
                FilterStep::MajorityVote | FilterStep::TakeFirst => {
                    per_response.get_or_insert_with(|| current.clone());
                    if matches!(step, FilterStep::MajorityVote) || (!voted_explicitly && current.len() > 1) {
                        current = majority_vote(&current).into_iter().collect();
                    }
                    current.truncate(1);
                }
            }
        }
        let per_response = per_response.unwrap_or_else(|| current.clone());
        if !voted_explicitly && current.len() > 1 {
            current = majority_vote(&current).into_iter().collect();
        }
        (per_response, current.into_iter().next().unwrap_or_default())
    }
}

/// lm-eval's `regex` filter for one response.
#[derive(Debug, Clone)]
pub(crate) struct RegexFilter {
    regex: Regex,
    /// Python index into the `findall` list (negative counts from the end).
    group_select: isize,
    fallback: String,
}

impl RegexFilter {
    pub(crate) fn new(pattern: &str, group_select: isize, fallback: String) -> Result<Self, String> {
        Ok(RegexFilter {
            regex: pyregex::compile(pattern)?,
            group_select,
            fallback,
        })
    }

    pub(crate) fn apply(&self, resp: &str) -> String {
        let groups = self.regex.captures_len() - 1;
        // re.findall: the whole match without groups, the group with one, a tuple with several.
        let found: Vec<Vec<&str>> = self
            .regex
            .captures_iter(resp)
            .map_while(Result::ok)
            .map(|c| {
                if groups == 0 {
                    vec![c.get(0).map_or("", |m| m.as_str())]
                } else {
                    (1..=groups).map(|g| c.get(g).map_or("", |m| m.as_str())).collect()
                }
            })
            .collect();
        let n = found.len() as isize;
        let idx = if self.group_select < 0 {
            n + self.group_select
        } else {
            self.group_select
        };
        // Python raises IndexError out of range; the fallback is the closest clear answer.
        let Some(m) = usize::try_from(idx).ok().and_then(|i| found.get(i)) else {
            return self.fallback.clone();
        };
        let picked = if groups <= 1 {
            m[0]
        } else {
            match m.iter().find(|g| !g.is_empty()) {
                Some(g) => g,
                None => return self.fallback.clone(),
            }
        };
        py_strip(picked).to_string()
    }
}

/// `majority_vote` (selection.py): `Counter(resps).most_common(1)[0][0]` — the most frequent
/// answer; among equally frequent ones the first seen (Counter keeps insertion order and
/// `most_common` sorts stably). `None` for no answers.
pub(crate) fn majority_vote(answers: &[String]) -> Option<String> {
    let mut counts: Vec<(&String, usize)> = Vec::new();
    for a in answers {
        match counts.iter_mut().find(|(s, _)| *s == a) {
            Some((_, n)) => *n += 1,
            None => counts.push((a, 1)),
        }
    }
    let mut best: Option<(&String, usize)> = None;
    for &(s, n) in &counts {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((s, n));
        }
    }
    best.map(|(s, _)| s.clone())
}

/// The keyword arguments of an `exact_match` entry in a `metric_list`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactMatch {
    pub regexes_to_ignore: Vec<Regex>,
    pub ignore_case: bool,
    pub ignore_punctuation: bool,
    pub ignore_numbers: bool,
}

/// Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl ExactMatch {
    /// What prediction and reference are compared as.
    pub(crate) fn normalize(&self, s: &str) -> String {
        let mut s = s.to_string();
        for r in &self.regexes_to_ignore {
            s = pyregex::sub(r, "", &s, 0).unwrap_or(s);
        }
        if self.ignore_case {
            // np.char.lower = str.lower (full Unicode mapping, final sigma).
            s = s.to_lowercase();
        }
        if self.ignore_punctuation {
            s.retain(|c| !PUNCTUATION.contains(c));
        }
        if self.ignore_numbers {
            s.retain(|c| !c.is_ascii_digit());
        }
        s
    }

    /// 1.0 if the prediction equals any reference after normalisation (lm-eval: with several
    /// references, `exact_match` over `[pred] * len(refs)` vs `refs`, then `1.0 if score > 0`).
    pub(crate) fn score(&self, prediction: &str, references: &[String]) -> f64 {
        let p = self.normalize(prediction);
        if references.iter().any(|r| self.normalize(r) == p) {
            1.0
        } else {
            0.0
        }
    }
}

/// How a task is scored.
#[derive(Debug, Clone)]
pub(crate) enum Metrics {
    Choice(Vec<Metric>),
    /// `exact_match` under every filter pipeline (lm-eval keys `exact_match,<filter>`).
    Generation {
        filters: Vec<FilterPipeline>,
        exact_match: ExactMatch,
    },
    /// A built-in `process_results` hook scores.
    Hook(crate::hooks::ResultsHook),
}

/// Scores one generated item's responses (one per sample): per filter pipeline, each response's
/// extracted answer, the pipeline's answer and `exact_match` on it. Code tasks give nothing
/// here (their programs must run first).
pub(crate) fn score_generation(metrics: &Metrics, item: &GenItem, responses: &[String]) -> ItemScores {
    match metrics {
        Metrics::Choice(_) => ItemScores::default(),
        Metrics::Hook(hook) => hook.score_text(&item.references, responses),
        Metrics::Generation { filters, exact_match } => ItemScores {
            scores: filters
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let (per_response, answer) = f.apply(responses);
                    let value = if responses.is_empty() {
                        0.0
                    } else {
                        exact_match.score(&answer, &item.references)
                    };
                    MetricScore {
                        metric: GenMetric::exact_match_of_filter(i),
                        lm_eval_key: format!("exact_match,{}", f.name),
                        value,
                        answer,
                        per_response,
                    }
                })
                .collect(),
        },
    }
}

/// The metrics a task reports, with lm-eval's results keys.
/// lm-eval's results key (`metric,filter`) for one metric, including pass@k for any k.
pub(crate) fn metric_key(metrics: &Metrics, metric: GenMetric) -> Option<String> {
    match metrics {
        Metrics::Hook(hook) => Some(hook.key(metric)),
        _ => metric_keys(metrics)
            .into_iter()
            .find(|(m, _)| *m == metric)
            .map(|(_, k)| k),
    }
}

pub(crate) fn metric_keys(metrics: &Metrics) -> Vec<(GenMetric, String)> {
    match metrics {
        Metrics::Choice(_) => Vec::new(),
        Metrics::Hook(hook) => hook.gen_metrics().into_iter().map(|m| (m, hook.key(m))).collect(),
        Metrics::Generation { filters, .. } => filters
            .iter()
            .enumerate()
            .map(|(i, f)| (GenMetric::exact_match_of_filter(i), format!("exact_match,{}", f.name)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn regex_filter_follows_findall() {
        let strict = RegexFilter::new(r"#### (\-?[0-9\.\,]+)", 0, INVALID.into()).unwrap();
        assert_eq!(strict.apply("a #### 1,000.\n#### 5"), "1,000.");
        assert_eq!(strict.apply("none"), INVALID);
        let flex = RegexFilter::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, INVALID.into()).unwrap();
        assert_eq!(flex.apply("3 apples cost $1,234.50"), "$1,234.50");
        assert_eq!(flex.apply("it is 7"), "7");
        assert_eq!(flex.apply("nothing"), INVALID);
        let bbh = RegexFilter::new(r"(?<=the answer is )(.*)(?=.)", 0, INVALID.into()).unwrap();
        assert_eq!(bbh.apply("So the answer is (B).\n\nQ"), "(B)");
    }

    #[test]
    fn majority_ties_go_to_the_first_seen() {
        assert_eq!(majority_vote(&v(&["b", "a", "a", "b"])).unwrap(), "b");
        assert_eq!(majority_vote(&v(&["b", "a", "a"])).unwrap(), "a");
        assert_eq!(majority_vote(&[]), None);
    }

    #[test]
    fn pipelines_vote_over_several_responses() {
        let p = FilterPipeline {
            name: "x".into(),
            steps: vec![FilterStep::RemoveWhitespace, FilterStep::TakeFirst],
        };
        assert_eq!(p.apply(&v(&[" a", "b ", " b"])), (v(&["a", "b", "b"]), "b".to_string()));
        assert_eq!(p.apply(&v(&[" a "])), (v(&["a"]), "a".to_string()));
        assert_eq!(FilterPipeline::none().apply(&v(&["x", "y"])).1, "x");
    }

    #[test]
    fn exact_match_normalisation() {
        let gsm = ExactMatch {
            regexes_to_ignore: [",", r"\$", "(?s).*#### ", r"\.$"]
                .iter()
                .map(|p| pyregex::compile(p).unwrap())
                .collect(),
            ignore_case: true,
            ..ExactMatch::default()
        };
        assert_eq!(gsm.normalize("Janet sells...\n#### 1,800"), "1800");
        assert_eq!(gsm.normalize("$18."), "18");
        assert_eq!(gsm.normalize("18.\n"), "18\n");
        let nq = ExactMatch {
            regexes_to_ignore: vec![pyregex::compile(r"\b(?:The |the |An |A |The |a |an )").unwrap()],
            ignore_case: true,
            ignore_punctuation: true,
            ignore_numbers: false,
        };
        assert_eq!(nq.normalize("The Beatles!"), "beatles");
        assert_eq!(nq.normalize("Theatre"), "theatre");
    }
}
