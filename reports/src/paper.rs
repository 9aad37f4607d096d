//! A paper's published results table beside our scores, in the paper's own layout.
//!
//! The values file (e.g. `configs/papers/mistral-7b.json`) records, per column, our task name,
//! the paper's label, the shots and metric the paper states, the unit, and each model's value
//! (null where the paper prints none, with a note saying where the benchmark appears instead),
//! plus the paper's category groupings. [`PaperTable::render`] prints rows for the paper's models,
//! "ours" and "ours − <reference model>", and one column per averaged category:
//! - a task we have no score for is shown as `no data`, never dropped; a value the paper does not
//!   print is `n/r` (not reported);
//! - a category average is the plain mean of its members, as the paper defines its categories,
//!   and only when every member has a value; otherwise `incomplete`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

/// Where the numbers come from.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub url: String,
    pub table: String,
    #[serde(default)]
    pub checked_against: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One of the paper's models (a row of its table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    #[serde(default)]
    pub modality: Option<String>,
}

/// One benchmark column.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Our task name (the key of the `ours` map).
    pub task: String,
    /// The paper's column header.
    pub label: String,
    /// Whether the column is in the paper's table (false: the paper only uses it elsewhere).
    pub in_table: bool,
    pub shots: String,
    pub metric: String,
    pub unit: String,
    /// Model name → value in the paper's unit; null where the paper prints none.
    pub values: BTreeMap<String, Option<f64>>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A category the paper groups benchmarks into.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    pub shots: String,
    /// Whether the paper reports the category as an average of its members.
    pub averaged: bool,
    /// Member tasks (column `task` names).
    pub members: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// A paper's table, as loaded from its values file.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PaperTable {
    pub paper: String,
    pub source: Source,
    /// The unit of every value (e.g. "percent").
    pub unit: String,
    /// The model the "ours − …" row is measured against.
    pub reference_model: String,
    pub models: Vec<Model>,
    pub columns: Vec<Column>,
    pub categories: Vec<Category>,
}

/// A cell: a number, or why there is none.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    Value(f64),
    /// The paper prints no value.
    NotReported,
    /// We have no score.
    NoData,
    /// A category with a member lacking a value.
    Incomplete,
    /// We did not run the task (e.g. left out of a partial run).
    NotRun,
}

impl PaperTable {
    /// Loads and checks a values file: every column gives a value (or null) for every model and
    /// nothing else, task names are unique, categories name known tasks, the reference is a model.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let table: PaperTable = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: line {}: invalid paper table: {e}", path.display(), e.line()))?;
        table
            .check()
            .with_context(|| format!("{}: invalid paper table", path.display()))?;
        Ok(table)
    }

    fn check(&self) -> Result<()> {
        let models: BTreeSet<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        ensure!(models.len() == self.models.len(), "a model is listed twice");
        ensure!(
            models.contains(self.reference_model.as_str()),
            "reference_model `{}` is not one of the models",
            self.reference_model
        );
        let mut tasks = BTreeSet::new();
        for column in &self.columns {
            ensure!(
                tasks.insert(column.task.as_str()),
                "task `{}` has two columns",
                column.task
            );
            let given: BTreeSet<&str> = column.values.keys().map(String::as_str).collect();
            if given != models {
                bail!(
                    "column `{}`: values must name exactly the models {:?} (null where the paper prints none), got {:?}",
                    column.label,
                    models,
                    given
                );
            }
        }
        for category in &self.categories {
            for member in &category.members {
                ensure!(
                    tasks.contains(member.as_str()),
                    "category `{}`: member `{member}` has no column",
                    category.name
                );
            }
        }
        Ok(())
    }

    /// The paper's value for a model and task (None: not reported, or no such column).
    pub fn value(&self, model: &str, task: &str) -> Option<f64> {
        self.columns
            .iter()
            .find(|c| c.task == task)?
            .values
            .get(model)
            .copied()
            .flatten()
    }

    /// Renders the table with our scores: `ours` maps our task names to values in the paper's
    /// unit (percent); a missing key or None means no data. Returns (Markdown, CSV).
    pub fn render(&self, ours: &BTreeMap<String, Option<f64>>) -> (String, String) {
        self.render_partial(ours, &BTreeSet::new())
    }

    /// [`render`](Self::render), with the tasks in `not_run` shown as `not run` (a partial run)
    /// rather than `no data`.
    pub fn render_partial(&self, ours: &BTreeMap<String, Option<f64>>, not_run: &BTreeSet<String>) -> (String, String) {
        let averaged: Vec<&Category> = self.categories.iter().filter(|c| c.averaged).collect();
        let difference_label = format!("ours − {}", self.reference_model);
        let mut rows: Vec<(String, Vec<Cell>)> = Vec::new();
        for model in &self.models {
            let cells: Vec<Cell> = self
                .columns
                .iter()
                .map(|c| c.values[&model.name].map_or(Cell::NotReported, Cell::Value))
                .collect();
            rows.push((model.name.clone(), self.with_categories(cells, &averaged)));
        }
        let our_cells: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| match ours.get(&c.task).copied().flatten() {
                Some(v) => Cell::Value(v),
                None if not_run.contains(&c.task) => Cell::NotRun,
                None => Cell::NoData,
            })
            .collect();
        let our_cells = self.with_categories(our_cells, &averaged);
        let reference = &rows
            .iter()
            .find(|(name, _)| name == &self.reference_model)
            .expect("checked at load")
            .1;
        let differences: Vec<Cell> = our_cells
            .iter()
            .zip(reference)
            .map(|(ours, theirs)| match (ours, theirs) {
                (Cell::Value(a), Cell::Value(b)) => Cell::Value(a - b),
                (Cell::Incomplete, _) | (_, Cell::Incomplete) => Cell::Incomplete,
                (Cell::NoData, _) => Cell::NoData,
                (Cell::NotRun, _) => Cell::NotRun,
                _ => Cell::NotReported,
            })
            .collect();
        rows.push(("ours".into(), our_cells));
        rows.push((difference_label.clone(), differences));
        (
            self.markdown(&rows, &averaged, &difference_label, ours),
            self.csv(&rows, &averaged),
        )
    }

    /// Appends one cell per averaged category: the members' mean, or Incomplete.
    fn with_categories(&self, mut cells: Vec<Cell>, averaged: &[&Category]) -> Vec<Cell> {
        let by_task: BTreeMap<&str, Cell> = self
            .columns
            .iter()
            .map(|c| c.task.as_str())
            .zip(cells.clone())
            .collect();
        for category in averaged {
            let values: Vec<f64> = category
                .members
                .iter()
                .filter_map(|m| match by_task[m.as_str()] {
                    Cell::Value(v) => Some(v),
                    _ => None,
                })
                .collect();
            cells.push(if values.len() == category.members.len() && !values.is_empty() {
                Cell::Value(values.iter().sum::<f64>() / values.len() as f64)
            } else {
                Cell::Incomplete
            });
        }
        cells
    }

    fn markdown(
        &self,
        rows: &[(String, Vec<Cell>)],
        averaged: &[&Category],
        difference_label: &str,
        ours: &BTreeMap<String, Option<f64>>,
    ) -> String {
        let mut out = format!("## {}, with ours\n\n", self.paper);
        let _ = writeln!(out, "Source: {} — {}", self.source.url, self.source.table);
        let _ = writeln!(
            out,
            "Values in {}. `n/r`: the paper prints no value; `no data`: we have no score; `not run`: left out of this run; `incomplete`: a category member lacks a value; † not in the paper's table.\n",
            self.unit
        );
        let mut header = vec!["Model".to_string()];
        header.extend(self.columns.iter().map(|c| {
            if c.in_table {
                c.label.clone()
            } else {
                format!("{}†", c.label)
            }
        }));
        header.extend(averaged.iter().map(|c| format!("{} (avg)", c.name)));
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(header.len() - 1));
        let decimals = self.columns.len();
        for (name, cells) in rows {
            let signed = name == difference_label;
            let texts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| match cell {
                    // Table values at the paper's precision (one decimal); category means at two.
                    Cell::Value(v) if signed && i < decimals => format!("{v:+.1}"),
                    Cell::Value(v) if signed => format!("{v:+.2}"),
                    Cell::Value(v) if i < decimals => format!("{v:.1}"),
                    Cell::Value(v) => format!("{v:.2}"),
                    Cell::NotReported => "n/r".into(),
                    Cell::NoData => "no data".into(),
                    Cell::Incomplete => "incomplete".into(),
                    Cell::NotRun => "not run".into(),
                })
                .collect();
            let _ = writeln!(out, "| {name} | {} |", texts.join(" | "));
        }
        self.settings_notes(&mut out);
        let known: BTreeSet<&str> = self.columns.iter().map(|c| c.task.as_str()).collect();
        let extra: Vec<String> = ours
            .iter()
            .filter(|(task, _)| !known.contains(task.as_str()))
            .map(|(task, v)| match v {
                Some(v) => format!("{task} ({v:.1})"),
                None => format!("{task} (no data)"),
            })
            .collect();
        if !extra.is_empty() {
            let _ = writeln!(out, "\nOur tasks outside the paper's layout: {}", extra.join(", "));
        }
        if let Some(note) = &self.source.note {
            let _ = writeln!(out, "\nNote: {note}");
        }
        out
    }

    /// The columns' and categories' settings, as the paper states them.
    fn settings_notes(&self, out: &mut String) {
        out.push_str("\nSettings (as the paper states them):\n\n");
        for c in &self.columns {
            let _ = write!(
                out,
                "- {} (`{}`): {}, {}, {}",
                c.label, c.task, c.shots, c.metric, c.unit
            );
            if let Some(note) = &c.note {
                let _ = write!(out, " — {note}");
            }
            out.push('\n');
        }
        out.push_str("\nCategories (the paper's grouping):\n\n");
        for c in &self.categories {
            let how = if c.averaged { "mean of" } else { "not averaged:" };
            let _ = write!(out, "- {} ({}): {how} {}", c.name, c.shots, c.members.join(", "));
            if let Some(note) = &c.note {
                let _ = write!(out, " — {note}");
            }
            out.push('\n');
        }
    }

    fn csv(&self, rows: &[(String, Vec<Cell>)], averaged: &[&Category]) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["model".to_string()];
        header.extend(self.columns.iter().map(|c| c.task.clone()));
        header.extend(averaged.iter().map(|c| format!("{} (avg)", c.name)));
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(&header);
        for (name, cells) in rows {
            let mut record = vec![name.clone()];
            record.extend(cells.iter().map(|cell| match cell {
                Cell::Value(v) => format!("{v:.2}"),
                Cell::NotReported => "n/r".into(),
                Cell::NoData => "no data".into(),
                Cell::Incomplete => "incomplete".into(),
                Cell::NotRun => "not run".into(),
            }));
            let _ = writer.write_record(&record);
        }
        String::from_utf8(writer.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mistral() -> PaperTable {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/papers/mistral-7b.json");
        PaperTable::load(&path).unwrap()
    }

    #[test]
    fn values_file_holds_table_2() {
        let t = mistral();
        let names: Vec<&str> = t.models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["LLaMA 2 7B", "LLaMA 2 13B", "Code-Llama 7B", "Mistral 7B"]);
        let labels: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.in_table)
            .map(|c| c.label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "MMLU",
                "HellaSwag",
                "WinoG",
                "PIQA",
                "Arc-e",
                "Arc-c",
                "NQ",
                "TriviaQA",
                "HumanEval",
                "MBPP",
                "MATH",
                "GSM8K"
            ]
        );
        // Table 2, Mistral 7B row, and a few cells of the others.
        let mistral_row: Vec<f64> = t
            .columns
            .iter()
            .filter(|c| c.in_table)
            .map(|c| c.values["Mistral 7B"].unwrap())
            .collect();
        assert_eq!(
            mistral_row,
            [60.1, 81.3, 75.3, 83.0, 80.0, 55.5, 28.8, 69.9, 30.5, 47.5, 13.1, 52.2]
        );
        assert_eq!(t.value("LLaMA 2 7B", "mmlu"), Some(44.4));
        assert_eq!(t.value("LLaMA 2 13B", "nq_open"), Some(29.0));
        assert_eq!(t.value("Code-Llama 7B", "gsm8k"), Some(20.8));
        // Benchmarks outside Table 2 carry no numbers.
        for task in [
            "siqa",
            "openbookqa",
            "commonsense_qa",
            "boolq",
            "quac",
            "bbh",
            "agieval",
        ] {
            let column = t.columns.iter().find(|c| c.task == task).unwrap();
            assert!(
                !column.in_table && column.values.values().all(Option::is_none),
                "{task}"
            );
        }
        let gsm8k = t.columns.iter().find(|c| c.task == "gsm8k").unwrap();
        assert_eq!(gsm8k.shots, "8-shot");
        assert!(gsm8k.metric.starts_with("maj@8"));
        let categories: Vec<&str> = t.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            categories,
            [
                "Commonsense Reasoning",
                "World Knowledge",
                "Reading Comprehension",
                "Math",
                "Code",
                "Popular aggregated results"
            ]
        );
        assert_eq!(t.categories[0].members.len(), 8);
    }

    #[test]
    fn render_keeps_the_paper_layout_and_marks_gaps() {
        let t = mistral();
        let mut ours: BTreeMap<String, Option<f64>> = BTreeMap::new();
        ours.insert("mmlu".into(), Some(61.1));
        ours.insert("hellaswag".into(), Some(80.0));
        ours.insert("gsm8k".into(), Some(50.0));
        ours.insert("math".into(), Some(14.0));
        ours.insert("piqa".into(), None); // ran but no usable score
        ours.insert("lambada".into(), Some(70.0)); // not in the paper
        let (markdown, csv) = t.render(&ours);
        let lines: Vec<&str> = markdown.lines().collect();
        let header = lines.iter().find(|l| l.starts_with("| Model |")).unwrap();
        assert!(header.starts_with(
            "| Model | MMLU | HellaSwag | WinoG | PIQA | Arc-e | Arc-c | NQ | TriviaQA | HumanEval | MBPP | MATH | GSM8K | SIQA† |"
        ));
        assert!(header.ends_with("| Commonsense Reasoning (avg) | World Knowledge (avg) | Reading Comprehension (avg) | Math (avg) | Code (avg) |"));
        let row = |name: &str| -> Vec<String> {
            let line = lines.iter().find(|l| l.starts_with(&format!("| {name} |"))).unwrap();
            line.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        let m = row("Mistral 7B");
        assert_eq!(&m[1..4], ["60.1", "81.3", "75.3"]);
        assert_eq!(m[13], "n/r"); // SIQA
        // Categories: Commonsense incomplete (SIQA, OBQA, CSQA not printed), World Knowledge
        // (28.8 + 69.9)/2 = 49.35, Reading Comprehension incomplete, Math (13.1 + 52.2)/2 = 32.65,
        // Code (30.5 + 47.5)/2 = 39.00.
        let n = m.len();
        assert_eq!(&m[n - 5..], ["incomplete", "49.35", "incomplete", "32.65", "39.00"]);
        let o = row("ours");
        assert_eq!(&o[1..5], ["61.1", "80.0", "no data", "no data"]);
        assert_eq!(o[n - 2], "32.00"); // Math: (14 + 50)/2
        assert_eq!(o[n - 4], "incomplete"); // World Knowledge: no NQ/TriviaQA
        let d = row("ours − Mistral 7B");
        assert_eq!(&d[1..3], ["+1.0", "-1.3"]);
        assert_eq!(d[3], "no data");
        assert_eq!(d[13], "no data"); // SIQA: neither side
        assert_eq!(d[n - 2], "-0.65");
        assert!(markdown.contains("Our tasks outside the paper's layout: lambada (70.0)"));
        assert!(
            markdown.contains("- GSM8K (`gsm8k`): 8-shot, maj@8 (accuracy of the majority answer of 8 samples), %")
        );
        assert!(markdown.contains(
            "Popular aggregated results (MMLU 5-shot, BBH 3-shot, AGIEval 3-5-shot): not averaged: mmlu, bbh, agieval"
        ));

        let csv_lines: Vec<&str> = csv.lines().collect();
        assert_eq!(csv_lines.len(), 1 + 4 + 2);
        assert!(
            csv_lines[0].starts_with("model,mmlu,hellaswag,winogrande,piqa,arc_easy,arc_challenge,nq_open,triviaqa")
        );
        assert!(csv_lines[4].starts_with("Mistral 7B,60.10,81.30,"));
        assert!(csv_lines[5].starts_with("ours,61.10,80.00,no data,no data,"));
        assert!(csv_lines[6].starts_with("ours − Mistral 7B,1.00,-1.30,no data,"));
    }

    #[test]
    fn partial_runs_show_not_run() {
        let t = mistral();
        let ours: BTreeMap<String, Option<f64>> = [("mmlu".to_string(), Some(50.0))].into();
        let not_run: BTreeSet<String> = ["hellaswag".to_string()].into();
        let (markdown, csv) = t.render_partial(&ours, &not_run);
        let line = markdown.lines().find(|l| l.starts_with("| ours |")).unwrap();
        assert!(line.starts_with("| ours | 50.0 | not run | no data |"), "{line}");
        let diff = markdown
            .lines()
            .find(|l| l.starts_with("| ours − Mistral 7B |"))
            .unwrap();
        assert!(
            diff.starts_with("| ours − Mistral 7B | -10.1 | not run | no data |"),
            "{diff}"
        );
        assert!(csv.contains("ours,50.00,not run,no data,"));
    }

    #[test]
    fn load_rejects_incomplete_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        let mut value: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/papers/mistral-7b.json"))
                .unwrap(),
        )
        .unwrap();
        value["columns"][0]["values"]
            .as_object_mut()
            .unwrap()
            .remove("Mistral 7B");
        std::fs::write(&path, value.to_string()).unwrap();
        let err = format!("{:#}", PaperTable::load(&path).unwrap_err());
        assert!(
            err.contains("bad.json: invalid paper table") && err.contains("MMLU"),
            "{err}"
        );
    }
}
