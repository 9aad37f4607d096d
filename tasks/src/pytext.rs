//! Python `str` methods the lm-eval task definitions use, with Python's semantics.

/// `str.isspace()` for one character: Unicode White_Space plus the ASCII separators
/// U+001C..U+001F, which Python also counts.
pub(crate) fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `str.strip()`.
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// `str.lstrip()`.
pub(crate) fn py_lstrip(s: &str) -> &str {
    s.trim_start_matches(py_isspace)
}

/// `str.capitalize()` (Python ≥ 3.8): the first character in title case, the rest lower case.
pub(crate) fn py_capitalize(s: &str) -> String {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out = titlecase(first);
    // `str::to_lowercase` applies the final-sigma rule, as CPython's lower() does.
    out.push_str(&chars.as_str().to_lowercase());
    out
}

/// Title case of one character (full mapping). Differs from upper case only for a few
/// characters; those in Latin/Georgian that can plausibly occur are special-cased.
fn titlecase(c: char) -> String {
    match c {
        '\u{01C4}'..='\u{01C6}' => "\u{01C5}".into(),
        '\u{01C7}'..='\u{01C9}' => "\u{01C8}".into(),
        '\u{01CA}'..='\u{01CC}' => "\u{01CB}".into(),
        '\u{01F1}'..='\u{01F3}' => "\u{01F2}".into(),
        'ß' => "Ss".into(),
        'ﬀ' => "Ff".into(),
        'ﬁ' => "Fi".into(),
        'ﬂ' => "Fl".into(),
        'ﬃ' => "Ffi".into(),
        'ﬄ' => "Ffl".into(),
        'ﬅ' | 'ﬆ' => "St".into(),
        // Georgian Mkhedruli: title case is the letter itself (upper case is Mtavruli).
        '\u{10D0}'..='\u{10FA}' | '\u{10FD}'..='\u{10FF}' => c.into(),
        _ => c.to_uppercase().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_and_capitalize_follow_python() {
        assert_eq!(py_strip("\u{1f} a b \u{a0}\n"), "a b");
        assert_eq!(py_lstrip("  x "), "x ");
        assert_eq!(py_capitalize("the man"), "The man");
        assert_eq!(py_capitalize("then John"), "Then john");
        assert_eq!(py_capitalize("\" a camel\""), "\" a camel\"");
        assert_eq!(py_capitalize(""), "");
        assert_eq!(py_capitalize("ǆemal"), "ǅemal");
        assert_eq!(py_capitalize("ΣΑΣ"), "Σας");
    }
}
