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

/// Python's `str.isprintable()` for one non-ASCII character, for the characters that can
/// plausibly occur in text data: false for C1 controls, format characters, private use, and
/// separators other than the ASCII space (unassigned code points are not detected).
fn py_isprintable_non_ascii(c: char) -> bool {
    !matches!(c as u32,
        0x80..=0xA0 | 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x1680 | 0x180E | 0x2000..=0x200F
        | 0x2028..=0x202F | 0x205F..=0x2064 | 0x2066..=0x206F | 0x3000 | 0xD800..=0xF8FF | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..)
}

/// `repr(s)` for a `str` (CPython `unicode_repr`).
pub(crate) fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            _ if c == quote || c == '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ if (c as u32) < 0x20 || c as u32 == 0x7F => out.push_str(&format!("\\x{:02x}", c as u32)),
            _ if c.is_ascii() || py_isprintable_non_ascii(c) => out.push(c),
            _ if (c as u32) <= 0xFF => out.push_str(&format!("\\x{:02x}", c as u32)),
            _ if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a JSON value (`['a', 1, None, True]`), as `str(list)` writes it.
pub(crate) fn py_repr_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "None".into(),
        J::Bool(b) => if *b { "True" } else { "False" }.into(),
        J::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => crate::template::py_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => py_repr_str(s),
        J::Array(items) => format!("[{}]", items.iter().map(py_repr_json).collect::<Vec<_>>().join(", ")),
        J::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_repr_str(k), py_repr_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
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

    #[test]
    fn repr_follows_python() {
        assert_eq!(py_repr_str("a"), "'a'");
        assert_eq!(py_repr_str("it's"), "\"it's\"");
        assert_eq!(py_repr_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(
            py_repr_str("a\\b\n\u{1}é\u{a0}\u{200b}"),
            "'a\\\\b\\n\\x01é\\xa0\\u200b'"
        );
        assert_eq!(
            py_repr_json(&serde_json::json!(["x", 1, null, true])),
            "['x', 1, None, True]"
        );
    }
}
