//! Jinja templates as lm-eval renders them (lm_eval/utils.py: a jinja2 `Environment` with
//! `StrictUndefined`, `keep_trailing_newline=True` and a `regex_replace` filter), with minijinja:
//!
//! - values print as Python's `str()` does (`None`, `True`, `['a', 'b']`), so that a template
//!   such as `{{choices.text}}` renders the text lm-eval then parses with `ast.literal_eval`;
//! - Python's `str` and `list` methods (minijinja-contrib's pycompat, plus `index` and Python's
//!   whitespace for `strip`);
//! - an undefined variable is an error, which names the fields the document lacks.

use std::collections::BTreeMap;

use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::pyregex;
use crate::pytext::{py_repr_str, py_strip};

/// The templates of one task definition, compiled once.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

impl Templates {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("the default syntax with keep_trailing_newline"),
        );
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(|out, _state, value| {
            let text = match value.as_str() {
                Some(s) => s.to_string(),
                None => py_str(value),
            };
            out.write_str(&text).map_err(Error::from)
        });
        env.set_unknown_method_callback(py_method);
        env.add_filter("regex_replace", regex_replace);
        Templates { env }
    }

    /// Compiles `source` under `name`; the error is minijinja's syntax error.
    pub(crate) fn add(&mut self, name: &str, source: &str) -> Result<(), String> {
        self.env
            .add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| format!("template syntax error: {}", describe(&e)))
    }

    /// Renders template `name` with the fields of `doc`. The error names the fields the
    /// template uses that `doc` lacks, if any.
    pub(crate) fn render(&self, name: &str, doc: &serde_json::Value) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| e.to_string())?;
        template.render(to_jinja(doc)).map_err(|e| {
            let mut missing: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|v| doc.get(v).is_none())
                .collect();
            missing.sort();
            match missing.as_slice() {
                [] => describe(&e),
                [one] => format!("missing field `{one}` ({})", describe(&e)),
                many => format!("missing fields `{}` ({})", many.join("`, `"), describe(&e)),
            }
        })
    }
}

fn describe(e: &Error) -> String {
    let mut s = e
        .detail()
        .map_or_else(|| e.kind().to_string(), |d| format!("{}: {d}", e.kind()));
    if let Some(line) = e.line() {
        s.push_str(&format!(" (template line {line})"));
    }
    s
}

/// A JSON document as a template context.
pub(crate) fn to_jinja(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::from(()),
        J::Bool(b) => Value::from(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::from(s.as_str()),
        J::Array(items) => Value::from(items.iter().map(to_jinja).collect::<Vec<_>>()),
        J::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_jinja(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Python's `str(value)`: strings as they are, everything else as `repr`.
fn py_str(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => py_repr(v),
    }
}

/// Python's `repr` of the value a Jinja expression produced.
fn py_repr(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number if v.is_integer() => v.to_string(),
        ValueKind::Number => f64::try_from(v.clone()).map_or_else(|_| v.to_string(), py_float_repr),
        ValueKind::String => py_repr_str(v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = v
                .try_iter()
                .map(|it| it.map(|x| py_repr(&x)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = v
                .try_iter()
                .map(|keys| {
                    keys.map(|k| format!("{}: {}", py_repr(&k), py_repr(&v.get_item(&k).unwrap_or_default())))
                        .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => v.to_string(),
    }
}

/// `repr(float)`: the shortest round-trip digits, with Python's exponent style.
pub(crate) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let exp = if f == 0.0 { 0 } else { f.abs().log10().floor() as i32 };
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Rust: "1e-5", "1.5e16"; Python: "1e-05", "1.5e+16".
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{mantissa}e{sign}{digits:0>2}")
    }
}

/// Python methods on template values: `str.strip`/`lstrip`/`rstrip` with Python's whitespace,
/// `str.index` and `list.index`; the rest from minijinja-contrib's pycompat.
fn py_method(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let value_error = |msg: String| Error::new(ErrorKind::InvalidOperation, format!("ValueError: {msg}"));
    match (value.kind(), method, value.as_str()) {
        (ValueKind::String, "strip" | "lstrip" | "rstrip", Some(s)) if args.is_empty() => {
            Ok(Value::from(match method {
                "strip" => py_strip(s),
                "lstrip" => crate::pytext::py_lstrip(s),
                _ => s.trim_end_matches(crate::pytext::py_isspace),
            }))
        }
        (ValueKind::String, "index", Some(s)) => {
            let needle = args.first().and_then(Value::as_str).unwrap_or_default();
            match s.find(needle) {
                Some(at) => Ok(Value::from(s[..at].chars().count())),
                None => Err(value_error("substring not found".into())),
            }
        }
        (ValueKind::Seq, "index", _) => {
            let needle = args.first().cloned().unwrap_or_default();
            for (i, item) in value.try_iter()?.enumerate() {
                if item == needle {
                    return Ok(Value::from(i));
                }
            }
            Err(value_error(format!("{} is not in list", py_repr(&needle))))
        }
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

/// lm-eval's `regex_replace` filter: `re.sub(pattern, repl, string, count=count)`.
fn regex_replace(string: String, pattern: String, repl: String, count: Option<usize>) -> Result<String, Error> {
    let invalid = |msg: String| Error::new(ErrorKind::InvalidOperation, msg);
    let regex = pyregex::compile(&pattern).map_err(invalid)?;
    pyregex::sub(&regex, &repl, &string, count.unwrap_or(0)).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(source: &str, doc: serde_json::Value) -> Result<String, String> {
        let mut t = Templates::new();
        t.add("t", source)?;
        t.render("t", &doc)
    }

    #[test]
    fn values_print_as_python_prints_them() {
        let doc = json!({"xs": ["a", "it's"], "n": null, "b": true, "f": 2.0, "i": 3});
        assert_eq!(
            render("{{xs}} {{n}} {{b}} {{f}} {{i}}", doc).unwrap(),
            "['a', \"it's\"] None True 2.0 3"
        );
        assert_eq!(render("{{[a, b]}}", json!({"a": "x", "b": "y"})).unwrap(), "['x', 'y']");
        assert_eq!(render("x\n", json!({})).unwrap(), "x\n");
        assert_eq!(py_float_repr(1e-5), "1e-05");
        assert_eq!(py_float_repr(1.5e16), "1.5e+16");
        assert_eq!(py_float_repr(0.1), "0.1");
    }

    #[test]
    fn python_methods_and_filters() {
        let doc = json!({"s": "\u{1f} a_b ", "labels": ["A", "B"], "k": "B", "ans": "x #### 42"});
        assert_eq!(render("{{s.strip()}}|{{s.index('_')}}", doc.clone()).unwrap(), "a_b|3");
        assert_eq!(render("{{labels.index(k)}}", doc.clone()).unwrap(), "1");
        assert_eq!(render("{{ans.split('####')[-1].strip()}}", doc.clone()).unwrap(), "42");
        assert_eq!(
            render("{{ s | regex_replace('[ab]', '') }}", doc.clone()).unwrap(),
            "\u{1f} _ "
        );
        let err = render("{{labels.index('C')}}", doc).unwrap_err();
        assert!(err.contains("'C' is not in list"), "{err}");
    }

    #[test]
    fn undefined_fields_are_named() {
        let err = render("Q: {{question}} {{answer}}", json!({"question": "q"})).unwrap_err();
        assert!(err.starts_with("missing field `answer`"), "{err}");
        assert!(render("{{x if x is defined else 'd'}}", json!({})).unwrap() == "d");
    }
}
