//! JSON and values written the way Python writes them, where lm-eval's files depend on it:
//! `json.dumps(value, ensure_ascii=False[, indent=2])` (the samples and results files, and the
//! `doc_hash` lm-eval takes of a document) and `str(x)` of floats and booleans (the strings in a
//! sample's `resps`).

use serde_json::Value;

/// Python's `repr(float)` (= `str(float)`): the shortest digits that round-trip, in fixed
/// notation for 1e-4 ≤ |x| < 1e16 (always with a fractional part, `1.0`), else scientific with a
/// signed, at least two-digit exponent (`1e-05`, `1.5e+16`).
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "d.ddde±x".
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} has an exponent");
    let exponent: i32 = exponent.parse().expect("an integer exponent");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exponent) {
        let mantissa = match digits.len() {
            1 => digits.clone(),
            _ => format!("{}.{}", &digits[..1], &digits[1..]),
        };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs());
    }
    let point = exponent + 1; // digits before the decimal point
    let fixed = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    format!("{sign}{fixed}")
}

/// `json.dumps(value, ensure_ascii=False)`: `", "` and `": "` separators, keys in their order.
pub fn dumps(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, None, 0);
    out
}

/// `json.dumps(value, indent=indent, ensure_ascii=False)`.
pub fn dumps_indented(value: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_value(&mut out, value, Some(indent), 0);
    out
}

fn write_value(out: &mut String, value: &Value, indent: Option<usize>, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&json_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => write_container(out, '[', ']', items.len(), indent, depth, |out, i| {
            write_value(out, &items[i], indent, depth + 1)
        }),
        Value::Object(map) => {
            let entries: Vec<(&String, &Value)> = map.iter().collect();
            write_container(out, '{', '}', entries.len(), indent, depth, |out, i| {
                write_string(out, entries[i].0);
                out.push_str(": ");
                write_value(out, entries[i].1, indent, depth + 1);
            })
        }
    }
}

fn write_container(
    out: &mut String,
    open: char,
    close: char,
    len: usize,
    indent: Option<usize>,
    depth: usize,
    mut item: impl FnMut(&mut String, usize),
) {
    out.push(open);
    if len == 0 {
        out.push(close);
        return;
    }
    for i in 0..len {
        match indent {
            Some(width) => {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&" ".repeat(width * (depth + 1)));
            }
            None if i > 0 => out.push_str(", "),
            None => {}
        }
        item(out, i);
    }
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * depth));
    }
    out.push(close);
}

/// A float as `json.dumps` writes it (`NaN`, `Infinity` outside JSON's own range).
fn json_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float_repr(x)
    }
}

/// A JSON string with `ensure_ascii=False`: only `"`, `\` and control characters escaped.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_does() {
        // Expected strings from CPython 3.11 `repr(x)`.
        let cases = [
            (-110.69859313964844, "-110.69859313964844"),
            (0.65, "0.65"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e16, "1.5e+16"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (0.02758386421836855, "0.02758386421836855"),
            (-0.0, "-0.0"),
            (2.5e-7, "2.5e-07"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn json_matches_pythons_dumps() {
        let v = json!({"b": [1, 2.5, "é\n"], "a": {}, "c": [], "d": null, "e": true});
        // python3 -c 'import json; print(json.dumps({"b": [1, 2.5, "é\n"], "a": {}, "c": [], "d": None, "e": True}, ensure_ascii=False))'
        assert_eq!(
            dumps(&v),
            r#"{"b": [1, 2.5, "é\n"], "a": {}, "c": [], "d": null, "e": true}"#
        );
        assert_eq!(
            dumps_indented(&json!({"goal": "x", "label": 0, "l": [1]}), 2),
            "{\n  \"goal\": \"x\",\n  \"label\": 0,\n  \"l\": [\n    1\n  ]\n}"
        );
        assert_eq!(dumps(&json!("tab\there\u{1}")), r#""tab\there\u0001""#);
    }
}
