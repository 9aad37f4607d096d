//! minerva_math's answer handling (lm_eval/tasks/minerva_math/utils.py), character for
//! character including its quirks (e.g. removing "ft" turns `\left` into `\le`):
//! `get_unnormalized_answer`, `last_boxed_only_string`, `remove_boxed`, `normalize_final_answer`.
//! Python `re` patterns are written for the `regex` crate; for these patterns both engines give
//! the same matches.

use std::sync::LazyLock;

use regex::Regex;

use crate::pytext::py_strip;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid pattern")
}

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
