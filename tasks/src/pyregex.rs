//! Python `re` patterns as task files write them (filters, `regexes_to_ignore`, the
//! `regex_replace` template filter), compiled with fancy-regex, which has Python's look-around
//! and backtracking semantics. Python's `$` also matches before a final newline and `\Z` is the
//! very end; both are rewritten for Rust (`(?=\n?\z)`, `\z`).

use fancy_regex::Regex;

/// Compiles a Python pattern; the error says what the engine refused.
pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(&translate(pattern)).map_err(|e| format!("bad regular expression {pattern:?}: {e}"))
}

fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('Z') if !in_class => out.push_str(r"\z"),
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal in both engines.
                let rest = chars.as_str();
                let skip = if rest.starts_with("^]") {
                    2
                } else {
                    usize::from(rest.starts_with(']'))
                };
                for _ in 0..skip {
                    out.push(chars.next().unwrap_or(']'));
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '$' if !in_class => out.push_str(r"(?=\n?\z)"),
            _ => out.push(c),
        }
    }
    out
}

/// `re.sub(pattern, repl, text, count)` (count 0 = all); `\1`, `\g<1>` and `\g<name>` in `repl`
/// are group references, other backslash escapes as in Python.
pub(crate) fn sub(regex: &Regex, repl: &str, text: &str, count: usize) -> Result<String, String> {
    let rust_repl = replacement(repl);
    regex
        .try_replacen(text, count, rust_repl.as_str())
        .map(|s| s.into_owned())
        .map_err(|e| e.to_string())
}

fn replacement(repl: &str) -> String {
    let mut out = String::new();
    let mut chars = repl.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = d.to_string();
                    if let Some(&d2) = chars.peek().filter(|c| c.is_ascii_digit()) {
                        n.push(d2);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') if chars.peek() == Some(&'<') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_matches_before_a_final_newline_as_in_python() {
        let r = compile(r"\.$").unwrap();
        assert_eq!(sub(&r, "", "18.\n", 0).unwrap(), "18\n");
        assert_eq!(sub(&r, "", "18.", 0).unwrap(), "18");
        assert_eq!(sub(&r, "", "1.8", 0).unwrap(), "1.8");
        assert_eq!(sub(&compile("[$]").unwrap(), "", "$5", 0).unwrap(), "5");
    }

    #[test]
    fn lookaround_and_group_references() {
        let r = compile(r"(?<=the answer is )(.*)(?=.)").unwrap();
        let m = r.captures("so the answer is (A).").unwrap().unwrap();
        assert_eq!(m.get(1).unwrap().as_str(), "(A)");
        let r = compile(r"(\w+)@(\w+)").unwrap();
        assert_eq!(sub(&r, r"\2 at \g<1> $", "me@home", 0).unwrap(), "home at me $");
        assert_eq!(sub(&compile("a").unwrap(), "b", "aaa", 2).unwrap(), "bba");
    }
}
