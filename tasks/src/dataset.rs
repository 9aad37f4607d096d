//! Local data as lm-eval loads it through Hugging Face `datasets` (`dataset_path: json` or
//! `csv` with `dataset_kwargs.data_files`): each split's files, optionally gzipped, become a
//! list of documents (JSON objects), each remembering its file and line for error messages.
//!
//! - JSON: one object per line (JSON Lines), or a file holding one array of objects, or with
//!   `field: key`, the array under that key (HF's json builder).
//! - CSV: a header row names the columns, or `column_names` does for a file without one
//!   (pandas `read_csv(names=…)`); a column whose cells all read as integers (or numbers) holds
//!   numbers, as pandas infers them; an empty cell is `None`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value as Json;

use crate::config::{Format, TaskDef};
use crate::data;
use crate::error::TaskError;
use crate::yaml::Loc;

/// One document and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Doc {
    pub value: Json,
    pub loc: Loc,
}

/// One split's documents and the files read.
pub(crate) struct Split {
    pub docs: Vec<Doc>,
    pub files: Vec<PathBuf>,
}

/// Reads split `name` of a task (its `process_docs` hook applied); `None` when the task file
/// gives no data file for it.
pub(crate) fn read_split(def: &TaskDef, name: &str, data_dir: &Path) -> Result<Option<Split>, TaskError> {
    let Some(entries) = def.dataset.data_files.get(name) else {
        return Ok(None);
    };
    let mut docs = Vec::new();
    let mut files = Vec::new();
    for (file, loc) in entries {
        let path = resolve(def, file, loc, data_dir)?;
        let format = match def.dataset.format {
            Some(f) => f,
            None => format_of(&path)
                .ok_or_else(|| loc.error(format!("cannot tell the format of `{file}` (.json, .jsonl or .csv)")))?,
        };
        docs.extend(match format {
            Format::Json => json_docs(&path, def.dataset.field.as_deref())?,
            Format::Csv => csv_docs(&path, def.dataset.column_names.as_deref(), def.dataset.text_only)?,
        });
        files.push(path);
    }
    if let Some((hook, _)) = def.process_docs {
        let (processed, more) = hook.apply(docs)?;
        docs = processed;
        files.extend(more);
    }
    Ok(Some(Split { docs, files }))
}

/// A data file name: absolute; else relative to the task file's folder (user files), then to
/// the data folder; under `dataset_path` when that is a local folder.
fn resolve(def: &TaskDef, file: &str, loc: &Loc, data_dir: &Path) -> Result<PathBuf, TaskError> {
    let rel = match &def.dataset.folder {
        Some(folder) => folder.join(file),
        None => PathBuf::from(file),
    };
    if rel.is_absolute() {
        return Ok(rel);
    }
    let mut candidates: Vec<PathBuf> = def.data_folder.iter().map(|f| f.join(&rel)).collect();
    candidates.push(data_dir.join(&rel));
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    if def.data_folder.is_none() {
        // A built-in task: its data belongs in the data folder.
        if let Some(message) = def.config.pointer("/metadata/not_bundled").and_then(Json::as_str) {
            return Err(TaskError::NotBundled {
                task: def.name.clone(),
                message: message.to_string(),
            });
        }
        let path = data_dir.join(&rel);
        return Err(TaskError::Io {
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("data file of task `{}` not found", def.name),
            ),
            path,
        });
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(loc.error(format!(
        "data file `{file}` not found (looked for {})",
        looked.join(" and ")
    )))
}

fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?;
    let name = name.strip_suffix(".gz").unwrap_or(name);
    if name.ends_with(".json") || name.ends_with(".jsonl") {
        Some(Format::Json)
    } else if name.ends_with(".csv") {
        Some(Format::Csv)
    } else {
        None
    }
}

fn loc_of(file: &Arc<Path>, line: usize) -> Loc {
    Loc {
        file: file.clone(),
        line,
    }
}

fn json_docs(path: &Path, field: Option<&str>) -> Result<Vec<Doc>, TaskError> {
    let file: Arc<Path> = Arc::from(path);
    let text = data::read_text(path)?;
    let trimmed = text.trim_start();
    let records: Vec<(usize, Json)> = if field.is_some() || trimmed.starts_with('[') {
        let whole: Json = serde_json::from_str(&text)
            .map_err(|e| TaskError::malformed(path, e.line().max(1), format!("bad JSON: {e}")))?;
        let array = match field {
            Some(f) => whole
                .get(f)
                .cloned()
                .ok_or_else(|| TaskError::malformed(path, 1, format!("no top-level `{f}` (dataset_kwargs.field)")))?,
            None => whole,
        };
        let Json::Array(items) = array else {
            return Err(TaskError::malformed(path, 1, "expected an array of records"));
        };
        let lines = array_element_lines(&text, field);
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (lines.get(i).copied().unwrap_or(1), v))
            .collect()
    } else {
        data::lines(path)?
            .into_iter()
            .map(|(n, line)| {
                if line.trim().is_empty() {
                    return Err(TaskError::malformed(path, n, "empty line"));
                }
                serde_json::from_str(&line)
                    .map(|v| (n, v))
                    .map_err(|e| TaskError::malformed(path, n, format!("bad record: {e}")))
            })
            .collect::<Result<_, _>>()?
    };
    records
        .into_iter()
        .map(|(line, value)| match value {
            Json::Object(_) => Ok(Doc {
                value,
                loc: loc_of(&file, line),
            }),
            _ => Err(TaskError::malformed(path, line, "a record must be a JSON object")),
        })
        .collect()
}

/// The line each element of the records array starts on: the top-level array, or the array
/// under top-level key `field`.
fn array_element_lines(text: &str, field: Option<&str>) -> Vec<usize> {
    let target_depth = if field.is_some() { 2 } else { 1 };
    let (mut depth, mut line, mut in_string, mut escaped) = (0usize, 1usize, false, false);
    let (mut expect_value, mut in_target, mut last_key, mut string_start) = (false, false, String::new(), 0usize);
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    if depth == 1 {
                        last_key = text[string_start + 1..i].to_string();
                    }
                }
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if expect_value && in_target && depth == target_depth {
            out.push(line);
        }
        expect_value = false;
        match c {
            '"' => {
                in_string = true;
                string_start = i;
            }
            '[' | '{' => {
                depth += 1;
                if c == '[' && depth == target_depth && field.is_none_or(|f| f == last_key) {
                    in_target = true;
                    expect_value = true;
                }
            }
            ']' | '}' => {
                if depth == target_depth {
                    in_target = false;
                }
                depth = depth.saturating_sub(1);
            }
            ',' => expect_value = in_target && depth == target_depth,
            _ => {}
        }
    }
    out
}

fn csv_docs(path: &Path, column_names: Option<&[String]>, text_only: bool) -> Result<Vec<Doc>, TaskError> {
    let file: Arc<Path> = Arc::from(path);
    let mut records = data::csv_records(path)?;
    let header: Vec<String> = match column_names {
        Some(names) => names.to_vec(),
        None if records.is_empty() => return Ok(Vec::new()),
        None => records.remove(0).1,
    };
    for (line, rec) in &records {
        if rec.len() != header.len() {
            return Err(TaskError::malformed(
                path,
                *line,
                format!("expected {} CSV fields, found {}", header.len(), rec.len()),
            ));
        }
    }
    let kinds: Vec<CellKind> = (0..header.len())
        .map(|c| {
            if text_only {
                CellKind::Text
            } else {
                column_kind(records.iter().map(|(_, r)| r[c].as_str()))
            }
        })
        .collect();
    Ok(records
        .into_iter()
        .map(|(line, rec)| {
            let value = header
                .iter()
                .zip(rec)
                .zip(&kinds)
                .map(|((name, cell), kind)| (name.clone(), kind.value(cell)))
                .collect::<serde_json::Map<_, _>>();
            Doc {
                value: Json::Object(value),
                loc: loc_of(&file, line),
            }
        })
        .collect())
}

/// pandas' type inference for one column.
#[derive(Clone, Copy)]
enum CellKind {
    Int,
    Float,
    Text,
}

fn column_kind<'a>(cells: impl Iterator<Item = &'a str> + Clone) -> CellKind {
    let filled = cells.filter(|c| !c.is_empty());
    if filled.clone().all(|c| c.trim().parse::<i64>().is_ok()) {
        CellKind::Int
    } else if filled.clone().all(|c| c.trim().parse::<f64>().is_ok()) {
        CellKind::Float
    } else {
        CellKind::Text
    }
}

impl CellKind {
    fn value(self, cell: String) -> Json {
        if cell.is_empty() {
            return Json::Null;
        }
        match self {
            CellKind::Int => cell.trim().parse::<i64>().map_or(Json::String(cell), Json::from),
            CellKind::Float => cell
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            CellKind::Text => Json::String(cell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::array_element_lines;

    #[test]
    fn element_lines_of_record_arrays() {
        assert_eq!(
            array_element_lines("[\n {\"a\": \"[x,\"},\n {\"a\": 2}]", None),
            vec![2, 3]
        );
        let text = "{\"canary\": [1, 2],\n \"examples\": [\n{\"input\": \"a\"},\n\n{\"input\": [\"b\"]}]}";
        assert_eq!(array_element_lines(text, Some("examples")), vec![3, 5]);
    }
}
