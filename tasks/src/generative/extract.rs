//! Answer extraction and answer comparison, as lm-eval 0.4.12 does them:
//!
//! - filters (lm_eval/filters/): `regex` (`RegexFilter`: `re.findall`, `group_select`, a tuple of
//!   groups → its first non-empty group, `.strip()`, fallback `"[invalid]"`), `remove_whitespace`
//!   (`str.strip()`), `majority_vote` (`Counter(resps).most_common(1)`), `take_first`;
//! - the `exact_match` metric (api/metrics.py `exact_match_hf_evaluate`): `re.sub(r, "", ·)` for
//!   each of `regexes_to_ignore` in order, then `lower()`, then removal of `string.punctuation`,
//!   on prediction and reference alike, then string equality;
//! - minerva_math's utils.py: `get_unnormalized_answer`, `last_boxed_only_string`, `remove_boxed`,
//!   `normalize_final_answer` (character for character, including its quirks, e.g. removing "ft"
//!   turns `\left` into `\le`).
//!
//! Python `re` patterns are written for the `regex` crate. For these patterns both engines give
//! the same matches (leftmost-first, `.` stops at `\n` only), except: Python's `$` also matches
//! before a final `\n` (handled by hand for `\.$`), and lm-eval's bbh lookaround pattern
//! `(?<=the answer is )(.*)(?=.)` is rewritten as `the answer is (.*).`, which gives the same first
//! match. `\b` uses Unicode word characters in both, which differ only for rare characters
//! (Python: `str.isalnum()` or `_`; Rust: Unicode `\w`).

use std::sync::LazyLock;

use regex::Regex;

use crate::pytext::py_strip;

/// lm-eval's `RegexFilter` fallback.
pub const INVALID: &str = "[invalid]";

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

/// lm-eval's `regex` filter (extraction.py `RegexFilter`) for one response.
#[derive(Debug, Clone)]
pub(crate) struct RegexFilter {
    regex: Regex,
    /// Python index into the `findall` list (negative counts from the end).
    group_select: isize,
}

impl RegexFilter {
    pub(crate) fn new(pattern: &str, group_select: isize) -> Self {
        RegexFilter {
            regex: re(pattern),
            group_select,
        }
    }

    pub(crate) fn apply(&self, resp: &str) -> String {
        let groups = self.regex.captures_len() - 1;
        // re.findall: the whole match without groups, the group with one, a tuple with several.
        let found: Vec<Vec<&str>> = self
            .regex
            .captures_iter(resp)
            .map(|c| {
                if groups == 0 {
                    vec![c.get(0).map_or("", |m| m.as_str())]
                } else {
                    (1..=groups).map(|g| c.get(g).map_or("", |m| m.as_str())).collect()
                }
            })
            .collect();
        if found.is_empty() {
            return INVALID.to_string();
        }
        let n = found.len() as isize;
        let idx = if self.group_select < 0 {
            n + self.group_select
        } else {
            self.group_select
        };
        // Python would raise IndexError out of range; lm-eval's configs never do that.
        let Some(m) = usize::try_from(idx).ok().and_then(|i| found.get(i)) else {
            return INVALID.to_string();
        };
        let picked = if groups <= 1 {
            m[0]
        } else {
            match m.iter().find(|g| !g.is_empty()) {
                Some(g) => g,
                None => INVALID,
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

/// One of `regexes_to_ignore` (removed with `re.sub(pattern, "", text)`).
#[derive(Debug, Clone)]
pub(crate) enum Ignore {
    Regex(Regex),
    /// `\.$`: a "." at the very end, or just before a final "\n" (Python's `$`).
    DotAtEnd,
}

impl Ignore {
    fn apply(&self, s: &str) -> String {
        match self {
            Ignore::Regex(r) => r.replace_all(s, "").into_owned(),
            Ignore::DotAtEnd => {
                if let Some(head) = s.strip_suffix(".\n") {
                    format!("{head}\n")
                } else if let Some(head) = s.strip_suffix('.') {
                    head.to_string()
                } else {
                    s.to_string()
                }
            }
        }
    }
}

/// The keyword arguments of an `exact_match` entry in a YAML `metric_list`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactMatch {
    pub regexes_to_ignore: Vec<Ignore>,
    pub ignore_case: bool,
    pub ignore_punctuation: bool,
}

/// Python's `string.punctuation`.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

impl ExactMatch {
    /// gsm8k.yaml / gsm8k-cot.yaml: ignore_case, regexes `,`, `\$`, `(?s).*#### `, `\.$`.
    pub(crate) fn gsm8k() -> Self {
        ExactMatch {
            regexes_to_ignore: vec![
                Ignore::Regex(re(",")),
                Ignore::Regex(re(r"\$")),
                Ignore::Regex(re("(?s).*#### ")),
                Ignore::DotAtEnd,
            ],
            ignore_case: true,
            ignore_punctuation: false,
        }
    }

    /// nq_open.yaml: ignore_case, ignore_punctuation, regex `\b(?:The |the |An |A |The |a |an )`.
    pub(crate) fn nq_open() -> Self {
        ExactMatch {
            regexes_to_ignore: vec![Ignore::Regex(re(r"\b(?:The |the |An |A |The |a |an )"))],
            ignore_case: true,
            ignore_punctuation: true,
        }
    }

    /// What prediction and reference are compared as.
    pub(crate) fn normalize(&self, s: &str) -> String {
        let mut s = s.to_string();
        for r in &self.regexes_to_ignore {
            s = r.apply(&s);
        }
        if self.ignore_case {
            // np.char.lower = str.lower (full Unicode mapping, final sigma).
            s = s.to_lowercase();
        }
        if self.ignore_punctuation {
            s.retain(|c| !PUNCTUATION.contains(c));
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

// ---------------------------------------------------------------------------------------------
// minerva_math/utils.py

/// `get_unnormalized_answer`: the text between "Final Answer: The final answer is" and ". I hope
/// it is correct." (searched after appending "I hope it is correct."), stripped; else
/// `"[invalidanswer]"`.
pub fn minerva_unnormalized_answer(text: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| re(r"Final Answer: The final answer is(.*?). I hope it is correct."));
    let text = format!("{text}I hope it is correct.");
    match RE.captures(&text) {
        Some(c) => py_strip(c.get(1).map_or("", |m| m.as_str())).to_string(),
        None => "[invalidanswer]".to_string(),
    }
}

/// `last_boxed_only_string`.
pub fn last_boxed_only_string(s: &str) -> Option<String> {
    if s.contains("\\boxed ") {
        let tail = s.rsplit("\\boxed ").next().unwrap_or("");
        return Some(format!("\\boxed {}", tail.split('$').next().unwrap_or("")));
    }
    let idx = s.rfind("\\boxed").or_else(|| s.rfind("\\fbox"))?;
    let mut open = 0i64;
    for (i, c) in s[idx..].char_indices() {
        if c == '{' {
            open += 1;
        }
        if c == '}' {
            open -= 1;
            if open == 0 {
                return Some(s[idx..idx + i + 1].to_string());
            }
        }
    }
    None
}

/// `remove_boxed`; `None` where lm-eval's assertions would fail.
pub fn remove_boxed(s: &str) -> Option<String> {
    if s.contains("\\boxed ") {
        return s.strip_prefix("\\boxed ").map(str::to_string);
    }
    s.strip_prefix("\\boxed{")?.strip_suffix('}').map(str::to_string)
}

const SUBSTITUTIONS: [(&str, &str); 10] = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
];

const REMOVED_EXPRESSIONS: [&str; 42] = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "ft",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    "\"",
    "\\dots",
];

/// `normalize_final_answer` (Lewkowycz et al. 2022, appendix D, as in lm-eval).
pub fn normalize_final_answer(answer: &str) -> String {
    static PATTERNS: LazyLock<[(Regex, &'static str); 7]> = LazyLock::new(|| {
        [
            (re(r"(.*?)(\$)(.*?)(\$)(.*)"), "$$${3}$$"),
            (re(r"(\\text\{)(.*?)(\})"), "${2}"),
            (re(r"(\\textbf\{)(.*?)(\})"), "${2}"),
            (re(r"(\\overline\{)(.*?)(\})"), "${2}"),
            (re(r"(\\boxed\{)(.*)(\})"), "${2}"),
            (re(r"(frac)([^{])(.)"), "frac{${2}}{${3}}"),
            (re(r"(sqrt)([^{])"), "sqrt{${2}}"),
        ]
    });
    let mut s = answer.rsplit('=').next().unwrap_or("").to_string();
    for (before, after) in SUBSTITUTIONS {
        s = s.replace(before, after);
    }
    for expr in REMOVED_EXPRESSIONS {
        s = s.replace(expr, "");
    }
    for (pattern, replacement) in PATTERNS.iter() {
        s = pattern.replace_all(&s, *replacement).into_owned();
    }
    s = s.replace('$', "");
    let no_commas = s.replace(',', "");
    // str.isdigit(): non-empty, all digits.
    if !no_commas.is_empty() && no_commas.chars().all(|c| c.is_numeric()) {
        s = no_commas;
    }
    s
}

/// The gold answer minerva_math's `process_docs` derives from a solution:
/// `normalize_final_answer(remove_boxed(last_boxed_only_string(solution)))`; `None` where lm-eval
/// would fail.
pub fn minerva_gold_answer(solution: &str) -> Option<String> {
    Some(normalize_final_answer(&remove_boxed(&last_boxed_only_string(
        solution,
    )?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_filter_follows_findall() {
        let strict = RegexFilter::new(r"#### (\-?[0-9\.\,]+)", 0);
        assert_eq!(strict.apply("a #### 1,000.\n#### 5"), "1,000.");
        assert_eq!(strict.apply("none"), INVALID);
        let flex = RegexFilter::new(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1);
        assert_eq!(flex.apply("3 apples cost $1,234.50"), "$1,234.50");
        assert_eq!(flex.apply("it is 7"), "7");
        assert_eq!(flex.apply("nothing"), INVALID);
    }

    #[test]
    fn majority_ties_go_to_the_first_seen() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(majority_vote(&v(&["b", "a", "a", "b"])).unwrap(), "b");
        assert_eq!(majority_vote(&v(&["b", "a", "a"])).unwrap(), "a");
        assert_eq!(majority_vote(&[]), None);
    }

    #[test]
    fn exact_match_normalisation() {
        let g = ExactMatch::gsm8k();
        assert_eq!(g.normalize("Janet sells...\n#### 1,800"), "1800");
        assert_eq!(g.normalize("$18."), "18");
        assert_eq!(g.normalize("18.\n"), "18\n");
        let nq = ExactMatch::nq_open();
        assert_eq!(nq.normalize("The Beatles!"), "beatles");
        assert_eq!(nq.normalize("Theatre"), "theatre");
    }

    #[test]
    fn minerva_helpers() {
        assert_eq!(
            minerva_unnormalized_answer("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct."),
            "$\\frac{1}{2}$"
        );
        // "…is 3" + "I hope it is correct." has no ". I hope": no match (as in Python).
        assert_eq!(
            minerva_unnormalized_answer("Final Answer: The final answer is 3"),
            "[invalidanswer]"
        );
        assert_eq!(
            minerva_unnormalized_answer("Final Answer: The final answer is 3. "),
            "3"
        );
        assert_eq!(minerva_unnormalized_answer("no"), "[invalidanswer]");
        assert_eq!(
            last_boxed_only_string("so $\\boxed{\\frac{a}{b}}$ and").as_deref(),
            Some("\\boxed{\\frac{a}{b}}")
        );
        assert_eq!(last_boxed_only_string("\\boxed 5$ x").as_deref(), Some("\\boxed 5"));
        assert_eq!(last_boxed_only_string("\\boxed{unclosed"), None);
        assert_eq!(normalize_final_answer("$\\frac12$"), "\\frac{1}{2}");
        assert_eq!(normalize_final_answer("x = 10 inches"), "10");
        assert_eq!(normalize_final_answer("1,000"), "1000");
        assert_eq!(normalize_final_answer("\\left( 3, 4 \\right)"), "\\le(3,4\\right)");
        assert_eq!(normalize_final_answer("\\text{(A)}"), "(A)");
        assert_eq!(normalize_final_answer("90^\\circ"), "90");
        assert_eq!(normalize_final_answer("\\sqrt2"), "\\sqrt{2}");
    }
}
