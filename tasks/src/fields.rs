//! `doc_to_text`, `doc_to_target` and `doc_to_choice` exactly as lm-eval interprets them
//! (lm_eval/api/task.py `ConfigurableTask.doc_to_text` / `doc_to_target` / `doc_to_choice`):
//!
//! - a YAML integer or list is the value itself;
//! - a string that names a field of the document gives that field's value;
//! - any other string is a Jinja template, rendered with the document's fields; then
//!   - `doc_to_text`, `doc_to_target`: a rendering of digits only becomes an integer when the
//!     task has `doc_to_choice` (an index into the choices);
//!   - `doc_to_target`: a rendering that starts with `[` and ends with `]` is parsed as a Python
//!     literal if it is one (several targets);
//!   - `doc_to_choice`: the rendering is parsed as a Python literal (`ast.literal_eval`).
//!
//! An integer `doc_to_text` means "multiple input" (winogrande): every choice is a context.

use serde_json::Value as Json;

use crate::config::{Field, FieldSpec};
use crate::dataset::Doc;
use crate::error::TaskError;
use crate::pyliteral::literal_eval;
use crate::pytext::py_repr_json;
use crate::template::Templates;

/// What `doc_to_text` gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Text {
    Text(String),
    Index(i64),
}

/// What `doc_to_target` gives.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    Index(i64),
    Text(String),
    /// Several targets (a list).
    List(Vec<Json>),
}

impl Target {
    /// The value as lm-eval's samples file shows it.
    pub(crate) fn to_json(&self) -> Json {
        match self {
            Target::Index(i) => Json::from(*i),
            Target::Text(s) => Json::String(s.clone()),
            Target::List(items) => Json::Array(items.clone()),
        }
    }

    /// Python's `str()` of the value (what an f-string writes).
    pub(crate) fn display(&self) -> String {
        match self {
            Target::Index(i) => i.to_string(),
            Target::Text(s) => s.clone(),
            Target::List(items) => py_repr_json(&Json::Array(items.clone())),
        }
    }
}

/// A field's value before its role's interpretation.
enum Raw {
    /// A document field, or a YAML literal.
    Value(Json),
    /// A rendered template.
    Rendered(String),
}

fn raw(field: &Field, doc: &Doc, templates: &Templates) -> Result<Raw, TaskError> {
    match &field.spec {
        FieldSpec::Int(i) => Ok(Raw::Value(Json::from(*i))),
        FieldSpec::List(items) => Ok(Raw::Value(Json::Array(items.clone()))),
        FieldSpec::Text { source, template } => match doc.value.get(source) {
            Some(v) => Ok(Raw::Value(v.clone())),
            None => templates
                .render(template, &doc.value)
                .map(Raw::Rendered)
                .map_err(|e| field_error(field, doc, &e)),
        },
    }
}

/// An error about a document, naming the document's file and line and the field's definition.
pub(crate) fn field_error(field: &Field, doc: &Doc, message: &str) -> TaskError {
    doc.error(format!("{} ({}): {message}", field.role, field.loc))
}

/// Python `str.isdigit()` for the ASCII digits a template renders.
fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

pub(crate) fn text(field: &Field, doc: &Doc, templates: &Templates, has_choices: bool) -> Result<Text, TaskError> {
    match raw(field, doc, templates)? {
        Raw::Rendered(s) if has_choices && is_digits(&s) => s
            .parse()
            .map(Text::Index)
            .map_err(|_| field_error(field, doc, "integer out of range")),
        Raw::Rendered(s) | Raw::Value(Json::String(s)) => Ok(Text::Text(s)),
        Raw::Value(Json::Number(n)) if n.is_i64() => Ok(Text::Index(n.as_i64().unwrap_or_default())),
        Raw::Value(other) => Err(field_error(
            field,
            doc,
            &format!("expected text or an integer, got {other}"),
        )),
    }
}

pub(crate) fn target(field: &Field, doc: &Doc, templates: &Templates, has_choices: bool) -> Result<Target, TaskError> {
    match raw(field, doc, templates)? {
        Raw::Rendered(s) if has_choices && is_digits(&s) => s
            .parse()
            .map(Target::Index)
            .map_err(|_| field_error(field, doc, "integer out of range")),
        Raw::Rendered(s) => {
            if s.len() >= 2
                && s.starts_with('[')
                && s.ends_with(']')
                && let Some(Json::Array(items)) = literal_eval(&s)
            {
                return Ok(Target::List(items));
            }
            Ok(Target::Text(s))
        }
        Raw::Value(v) => match v {
            Json::String(s) => Ok(Target::Text(s)),
            // A Python bool is an int (True indexes choice 1).
            Json::Bool(b) => Ok(Target::Index(i64::from(b))),
            Json::Number(n) if n.is_i64() => Ok(Target::Index(n.as_i64().unwrap_or_default())),
            Json::Array(items) => Ok(Target::List(items)),
            other => Err(field_error(field, doc, &format!("unsupported target {other}"))),
        },
    }
}

pub(crate) fn choices(field: &Field, doc: &Doc, templates: &Templates) -> Result<Vec<String>, TaskError> {
    let value = match raw(field, doc, templates)? {
        Raw::Value(v) => v,
        Raw::Rendered(s) => literal_eval(&s).ok_or_else(|| {
            field_error(
                field,
                doc,
                &format!("rendered {s:?}, which is not a Python list literal"),
            )
        })?,
    };
    match value {
        Json::Array(items) => items
            .into_iter()
            .map(|c| match c {
                Json::String(s) => Ok(s),
                other => Err(field_error(
                    field,
                    doc,
                    &format!("choices must be strings, found {other}"),
                )),
            })
            .collect(),
        other => Err(field_error(
            field,
            doc,
            &format!("expected a list of choices, got {other}"),
        )),
    }
}
