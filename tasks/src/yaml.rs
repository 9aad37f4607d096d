//! Task files as YAML trees that remember where each value was written (file and line), read the
//! way lm-eval reads them (PyYAML's YAML 1.1 scalars, `include:` of other files of the same
//! folder; lm_eval/tasks/_yaml_loader.py `load_yaml`).
//!
//! `!function` tags are kept as [`Yaml::Function`] so that the definition can name them in its
//! error (this crate runs no Python); other application tags are refused here.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::TaskError;

/// Where a value was written: a task file (or a built-in definition) and a 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

impl Loc {
    pub(crate) fn error(&self, message: impl Into<String>) -> TaskError {
        TaskError::Definition {
            path: self.file.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// A YAML value with PyYAML's typing of plain scalars.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Yaml {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
    /// `!function module.name`: a Python function reference.
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub value: Yaml,
    pub loc: Loc,
}

/// One `key: value` of a mapping; `loc` is where the key was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub loc: Loc,
    pub value: Node,
}

impl Node {
    pub(crate) fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Yaml::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value as JSON (for documents written in a task file, and the config that lm-eval's
    /// results file shows). `!function` becomes its Python spelling.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Yaml::Null => J::Null,
            Yaml::Bool(b) => J::Bool(*b),
            Yaml::Int(i) => J::from(*i),
            Yaml::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Yaml::Str(s) => J::String(s.clone()),
            Yaml::Function(f) => J::String(format!("!function {f}")),
            Yaml::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Yaml::Map(entries) => J::Object(entries.iter().map(|e| (e.key.clone(), e.value.to_json())).collect()),
        }
    }

    /// A short name of the value's type, for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Yaml::Null => "null",
            Yaml::Bool(_) => "a boolean",
            Yaml::Int(_) => "an integer",
            Yaml::Float(_) => "a number",
            Yaml::Str(_) => "a string",
            Yaml::Seq(_) => "a list",
            Yaml::Map(_) => "a mapping",
            Yaml::Function(_) => "a `!function` tag",
        }
    }
}

/// Parses one YAML document (the whole text) into a tree; `file` is what locations name.
pub(crate) fn parse(text: &str, file: &Arc<Path>) -> Result<Node, TaskError> {
    let mut builder = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: Vec::new(),
        aliased_nodes: 0,
        root: None,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| TaskError::Definition {
        path: file.to_path_buf(),
        line: e.marker().line(),
        message: format!("not valid YAML: {}", e.info()),
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Yaml::Null,
        loc: Loc {
            file: file.clone(),
            line: 1,
        },
    }))
}

/// Reads a task file and merges its `include:` files (paths relative to its folder; included
/// keys first, the file's own keys win; lm-eval's `load_yaml`). `read` gives a file's text;
/// `seen` is the chain of files being read (for cycles), `files` collects every file read.
pub(crate) fn load_with_includes(
    path: &Path,
    read: &dyn Fn(&Path) -> Result<String, TaskError>,
    seen: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<Vec<Entry>, TaskError> {
    if seen.iter().any(|p| p == path) {
        return Err(TaskError::Definition {
            path: path.to_path_buf(),
            line: 1,
            message: "include cycle".into(),
        });
    }
    seen.push(path.to_path_buf());
    if !files.iter().any(|f| f == path) {
        files.push(path.to_path_buf());
    }
    let file: Arc<Path> = Arc::from(path);
    let root = parse(&read(path)?, &file)?;
    let Some(entries) = root.as_map() else {
        return Err(root
            .loc
            .error(format!("a task file must be a mapping, not {}", root.kind())));
    };
    let mut merged: Vec<Entry> = Vec::new();
    let mut own = Vec::new();
    for entry in entries {
        if entry.key != "include" {
            own.push(entry.clone());
            continue;
        }
        let names = match &entry.value.value {
            Yaml::Str(s) => vec![(s.clone(), entry.value.loc.clone())],
            Yaml::Seq(items) => items
                .iter()
                .map(|n| match &n.value {
                    Yaml::Str(s) => Ok((s.clone(), n.loc.clone())),
                    _ => Err(n.loc.error("`include` entries must be file names")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(entry.loc.error("`include` must be a file name or a list of them")),
        };
        for (name, loc) in names {
            let target = path.parent().unwrap_or(Path::new("")).join(&name);
            let included = load_with_includes(&target, read, seen, files).map_err(|e| match e {
                TaskError::Io { .. } => loc.error(format!("cannot read included file {}: {e}", target.display())),
                other => other,
            })?;
            for inc in included {
                // An included file's `task_list` is its own (lm-eval drops it too).
                if inc.key != "task_list" {
                    upsert(&mut merged, inc);
                }
            }
        }
    }
    for entry in own {
        upsert(&mut merged, entry);
    }
    seen.pop();
    Ok(merged)
}

fn upsert(entries: &mut Vec<Entry>, entry: Entry) {
    match entries.iter_mut().find(|e| e.key == entry.key) {
        Some(old) => *old = entry,
        None => entries.push(entry),
    }
}

enum Open {
    Seq(Vec<Node>, Loc, usize),
    /// Entries so far, a key waiting for its value, the mapping's location and anchor.
    Map(Vec<Entry>, Option<(String, Loc)>, Loc, usize),
}

struct Builder {
    file: Arc<Path>,
    stack: Vec<Open>,
    anchors: Vec<(usize, Node)>,
    /// Nodes copied in by aliases so far (bounded: see `MAX_ALIASED_NODES`).
    aliased_nodes: usize,
    root: Option<Node>,
    error: Option<TaskError>,
}

impl Builder {
    fn loc(&self, mark: Marker) -> Loc {
        Loc {
            file: self.file.clone(),
            line: mark.line(),
        }
    }

    fn fail(&mut self, loc: &Loc, message: String) {
        if self.error.is_none() {
            self.error = Some(loc.error(message));
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.push((anchor, node.clone()));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Open::Seq(items, _, _)) => items.push(node),
            Some(Open::Map(entries, pending, _, _)) => match pending.take() {
                Some((key, loc)) => entries.push(Entry { key, loc, value: node }),
                None => match node.value {
                    Yaml::Str(s) => *pending = Some((s, node.loc)),
                    Yaml::Int(i) => *pending = Some((i.to_string(), node.loc)),
                    Yaml::Bool(b) => *pending = Some((b.to_string(), node.loc)),
                    _ => {
                        let loc = node.loc.clone();
                        self.fail(&loc, format!("mapping keys must be plain names, not {}", node.kind()));
                    }
                },
            },
        }
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, tag: Option<Tag>, loc: Loc) -> Option<Yaml> {
        let Some(tag) = tag else {
            return Some(if style == TScalarStyle::Plain {
                plain_scalar(text)
            } else {
                Yaml::Str(text)
            });
        };
        match (tag.handle.as_str(), tag.suffix.as_str()) {
            ("!", "function") => Some(Yaml::Function(text)),
            ("!!", "str") | ("tag:yaml.org,2002:", "str") => Some(Yaml::Str(text)),
            ("!!", "int" | "float" | "bool" | "null") => Some(plain_scalar(text)),
            (handle, suffix) => {
                self.fail(&loc, format!("unsupported YAML tag `{handle}{suffix}`"));
                None
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let loc = self.loc(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(value) = self.scalar(text, style, tag, loc.clone()) {
                    self.push(Node { value, loc }, anchor);
                }
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq(Vec::new(), loc, anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map(Vec::new(), None, loc, anchor)),
            Event::SequenceEnd => {
                if let Some(Open::Seq(items, loc, anchor)) = self.stack.pop() {
                    self.push(
                        Node {
                            value: Yaml::Seq(items),
                            loc,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Open::Map(entries, _, loc, anchor)) = self.stack.pop() {
                    self.push(
                        Node {
                            value: Yaml::Map(entries),
                            loc,
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => match self.anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) => {
                    // Aliases of aliases grow exponentially (a "billion laughs" file): the
                    // copies are counted, and too many is an error, not all of memory.
                    self.aliased_nodes += node_count(node, MAX_ALIASED_NODES + 1);
                    if self.aliased_nodes > MAX_ALIASED_NODES {
                        return self.fail(&loc, format!("aliases expand to more than {MAX_ALIASED_NODES} values"));
                    }
                    let node = node.clone();
                    self.push(node, 0);
                }
                None => self.fail(&loc, "alias of an unknown anchor".into()),
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

/// The most values aliases may copy into one file: far more than any task file's few-shot
/// lists, far less than a machine's memory.
const MAX_ALIASED_NODES: usize = 1_000_000;

/// The values in `node`'s tree, counted up to `limit`.
fn node_count(node: &Node, limit: usize) -> usize {
    let mut count = 1;
    let children: Box<dyn Iterator<Item = &Node>> = match &node.value {
        Yaml::Seq(items) => Box::new(items.iter()),
        Yaml::Map(entries) => Box::new(entries.iter().map(|e| &e.value)),
        _ => Box::new(std::iter::empty()),
    };
    for child in children {
        if count >= limit {
            break;
        }
        count += node_count(child, limit - count);
    }
    count
}

/// PyYAML's implicit typing of a plain scalar (YAML 1.1 resolver: `yaml/resolver.py`).
fn plain_scalar(text: String) -> Yaml {
    static BOOL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$").unwrap()
    });
    static INT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$").unwrap()
    });
    static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$").unwrap()
    });
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Yaml::Null,
        _ => {}
    }
    if BOOL.is_match(&text) {
        return Yaml::Bool(matches!(text.as_bytes()[0], b'y' | b'Y' | b't' | b'T') || text.eq_ignore_ascii_case("on"));
    }
    if INT.is_match(&text)
        && let Some(i) = parse_int(&text)
    {
        return Yaml::Int(i);
    }
    if FLOAT.is_match(&text) {
        let t = text.replace('_', "").to_ascii_lowercase();
        let value = match t.trim_start_matches(['+', '-']) {
            ".inf" => f64::INFINITY,
            ".nan" => f64::NAN,
            _ => t.trim_start_matches('+').parse().unwrap_or(f64::NAN),
        };
        return Yaml::Float(if t.starts_with('-') && value.is_infinite() {
            -value
        } else {
            value
        });
    }
    Yaml::Str(text)
}

fn parse_int(text: &str) -> Option<i64> {
    let t = text.replace('_', "");
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(&t)),
    };
    let value = if let Some(b) = digits.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(h) = digits.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if neg { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Node {
        parse(text, &Arc::from(Path::new("t.yaml"))).unwrap()
    }

    #[test]
    fn scalars_are_typed_as_pyyaml_types_them() {
        let root = doc("a: yes\nb: 010\nc: 1e3\nd: 1.5e+3\ne: '7'\nf: ~\ng: 0x1F\nh: -.inf\n");
        let m = root.as_map().unwrap();
        let v: Vec<&Yaml> = m.iter().map(|e| &e.value.value).collect();
        assert_eq!(v[0], &Yaml::Bool(true));
        assert_eq!(v[1], &Yaml::Int(8));
        assert_eq!(v[2], &Yaml::Str("1e3".into()));
        assert_eq!(v[3], &Yaml::Float(1500.0));
        assert_eq!(v[4], &Yaml::Str("7".into()));
        assert_eq!(v[5], &Yaml::Null);
        assert_eq!(v[6], &Yaml::Int(31));
        assert_eq!(v[7], &Yaml::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn keys_and_values_keep_their_lines_and_function_tags() {
        let root = doc("task: x\n\nprocess_docs: !function utils.process_docs\nlist:\n  - a\n  - b\n");
        let m = root.as_map().unwrap();
        assert_eq!((m[0].key.as_str(), m[0].loc.line), ("task", 1));
        assert_eq!(m[1].value.value, Yaml::Function("utils.process_docs".into()));
        assert_eq!(m[1].loc.line, 3);
        let Yaml::Seq(items) = &m[2].value.value else { panic!() };
        assert_eq!(items[1].loc.line, 6);
    }

    #[test]
    fn aliases_copy_their_anchor_and_an_alias_bomb_is_an_error_naming_the_line() {
        let root = doc("a: &x [1, 2]\nb: *x\n");
        assert_eq!(
            root.as_map().unwrap()[1].value.value,
            root.as_map().unwrap()[0].value.value
        );
        // Each level lists the one before ten times: 10^9 values at the last.
        let mut bomb = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..=9 {
            let prior = format!("*l{}", level - 1);
            bomb.push_str(&format!("l{level}: &l{level} [{}]\n", vec![prior; 10].join(", ")));
        }
        let err = parse(&bomb, &Arc::from(Path::new("t.yaml"))).unwrap_err().to_string();
        assert!(err.contains("aliases expand to more than 1000000 values"), "{err}");
        assert!(err.starts_with("t.yaml:6"), "{err}");
    }

    #[test]
    fn bad_yaml_and_unknown_tags_name_the_line() {
        let err = parse("a: 1\nb: [1,\n", &Arc::from(Path::new("t.yaml"))).unwrap_err();
        assert!(err.to_string().starts_with("t.yaml:"), "{err}");
        let err = parse("a: 1\nb: !custom x\n", &Arc::from(Path::new("t.yaml"))).unwrap_err();
        assert_eq!(err.to_string(), "t.yaml:2: unsupported YAML tag `!custom`");
    }
}
