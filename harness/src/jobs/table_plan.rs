//! Which settings each column of a paper's table is run with, which runs that makes, and the
//! rendered table with how each column was run (see [`super::table`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::bail;
use reports::paper::PaperTable;
use tasks::{LoadOptions, OutputType, Registry, TaskError};

/// How a group of columns is run: one `evaluate()` per distinct value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub shots: usize,
    pub samples: usize,
    pub temperature: f32,
    /// Code tasks run apart, so that a sandbox problem costs only their columns.
    pub code: bool,
}

impl Settings {
    fn plain(shots: usize) -> Self {
        Settings {
            shots,
            samples: 1,
            temperature: 0.0,
            code: false,
        }
    }

    /// The run folder name, e.g. `8shot-8samples-t0.6`.
    pub fn label(&self) -> String {
        let mut label = format!("{}shot", self.shots);
        if self.samples > 1 {
            let _ = write!(label, "-{}samples-t{}", self.samples, self.temperature);
        }
        if self.code {
            label.push_str("-code");
        }
        label
    }
}

/// What we do for one column of the paper's table.
#[derive(Clone, Debug, PartialEq)]
pub enum How {
    Run {
        /// The task or group given to eval.
        run_task: String,
        /// The scores.csv row read (the task, or the group's aggregate row).
        row_task: String,
        metric: String,
        settings: Settings,
        /// How this differs from the paper, if it does.
        deviation: Option<String>,
    },
    /// Shown as `no data`, with the reason: a column this harness cannot run as shipped.
    NoData(String),
    /// Shown as `no data`, with the reason, and the job ends in an error once the table is
    /// written: a data file that cannot be read, a run that failed, a run without the score.
    Failed(String),
    /// Left out by --tasks.
    NotRun,
}

/// Plans one column (a task name of the paper's values file).
/// A maj@k column (GSM8K, MATH): k samples at `temperature`, or with `greedy` maj@1.
fn majority_vote(k: usize, shots: usize, run_task: &str, what: &str, greedy: bool, temperature: f32) -> How {
    let (settings, metric, deviation) = if greedy {
        (
            Settings::plain(shots),
            "exact_match".to_string(),
            format!("{what}maj@1, greedy (--greedy; the paper: maj@{k})"),
        )
    } else {
        (
            Settings {
                samples: k,
                temperature,
                ..Settings::plain(shots)
            },
            format!("maj@{k}"),
            format!("{what}{k} samples at temperature {temperature} (the paper states no temperature)"),
        )
    };
    How::Run {
        run_task: run_task.to_string(),
        row_task: run_task.to_string(),
        metric,
        settings,
        deviation: Some(deviation),
    }
}

pub fn plan_column(task: &str, greedy: bool, temperature: f32, registry: &Registry) -> How {
    let run = |metric: &str, settings: Settings, deviation: Option<String>| How::Run {
        run_task: task.to_string(),
        row_task: task.to_string(),
        metric: metric.to_string(),
        settings,
        deviation,
    };
    let majority = |k: usize, shots: usize, run_task: &str, what: &str| {
        majority_vote(k, shots, run_task, what, greedy, temperature)
    };
    match task {
        "hellaswag" | "piqa" | "arc_easy" | "arc_challenge" | "openbookqa" => run("acc_norm", Settings::plain(0), None),
        "winogrande" | "siqa" | "commonsense_qa" | "boolq" => run("acc", Settings::plain(0), None),
        "mmlu" => run("acc", Settings::plain(5), None),
        "bbh" => run("exact_match", Settings::plain(3), None),
        "humaneval" => run(
            "pass@1",
            Settings {
                code: true,
                ..Settings::plain(0)
            },
            None,
        ),
        "mbpp" => run(
            "pass@1",
            Settings {
                code: true,
                ..Settings::plain(3)
            },
            None,
        ),
        "nq_open" => run(
            "exact_match",
            Settings::plain(0),
            Some(
                "0-shot (the paper: 5-shot): nq_open's train split, which lm-eval draws shots from, is not bundled"
                    .into(),
            ),
        ),
        "triviaqa" => run("exact_match", Settings::plain(5), None),
        "gsm8k" => majority(
            8,
            8,
            "gsm8k_cot",
            "gsm8k_cot (its 8 fixed chain-of-thought exemplars), strict-match answer; ",
        ),
        "math" => majority(4, 4, "math", "minerva_math (4 fixed exemplars); "),
        other if registry.expand(&[other.to_string()]).is_ok() => {
            let generative = registry
                .task_def(other)
                .is_ok_and(|d| d.output_type == OutputType::GenerateUntil);
            let metric = if generative || registry.group_members(other).is_some() {
                "exact_match"
            } else {
                "acc"
            };
            run(
                metric,
                Settings::plain(0),
                Some("no settings known for this column: 0-shot".into()),
            )
        }
        other => How::NoData(format!("`{other}` is not implemented in this harness")),
    }
}

/// Plans every column of `table`: `selected` (None: all) are planned and checked against the
/// data (a task whose data is not bundled becomes `NoData`, one whose data cannot be loaded
/// `Failed`, with the loader's message); the rest are `not run`.
pub fn plan(
    table: &PaperTable,
    selected: Option<&[String]>,
    greedy: bool,
    temperature: f32,
    registry: &Registry,
) -> anyhow::Result<Vec<(String, How)>> {
    if let Some(selected) = selected {
        let known: Vec<&str> = table.columns.iter().map(|c| c.task.as_str()).collect();
        if let Some(unknown) = selected.iter().find(|t| !known.contains(&t.as_str())) {
            bail!(
                "--tasks: `{unknown}` is not a column of {}; its columns are {}",
                table.paper,
                known.join(", ")
            );
        }
    }
    Ok(table
        .columns
        .iter()
        .map(|column| {
            let task = column.task.clone();
            if selected.is_some_and(|s| !s.contains(&task)) {
                return (task, How::NotRun);
            }
            let how = match plan_column(&task, greedy, temperature, registry) {
                How::Run { run_task, settings, .. }
                    if let Err(problem) = check_data(&run_task, settings.shots, registry) =>
                {
                    problem
                }
                how => how,
            };
            (task, how)
        })
        .collect())
}

/// Loads the first item of each task the run needs; why the column cannot run if one cannot be.
fn check_data(run_task: &str, shots: usize, registry: &Registry) -> Result<(), How> {
    let names = registry
        .expand(&[run_task.to_string()])
        .map_err(|e| How::Failed(e.to_string()))?;
    let options = LoadOptions {
        shots: Some(shots),
        limit: Some(1),
        ..LoadOptions::default()
    };
    for name in names {
        match registry.load(&name, &options) {
            Ok(_) => {}
            Err(TaskError::NotBundled { message, .. }) => {
                return Err(How::NoData(format!("data not bundled: {message}")));
            }
            Err(other) => return Err(How::Failed(other.to_string())),
        }
    }
    Ok(())
}

/// The reasons of the `Failed` columns, each once (the columns of one failed run share one).
pub fn failures(plans: &[(String, How)]) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    for (_, how) in plans {
        if let How::Failed(reason) = how
            && !reasons.contains(reason)
        {
            reasons.push(reason.clone());
        }
    }
    reasons
}

/// The runs to make: each distinct setting with its tasks, in first-column order.
pub fn runs(plans: &[(String, How)]) -> Vec<(Settings, Vec<String>)> {
    let mut out: Vec<(Settings, Vec<String>)> = Vec::new();
    for (_, how) in plans {
        if let How::Run { run_task, settings, .. } = how {
            match out.iter_mut().find(|(s, _)| s == settings) {
                Some((_, tasks)) if !tasks.contains(run_task) => tasks.push(run_task.clone()),
                Some(_) => {}
                None => out.push((*settings, vec![run_task.clone()])),
            }
        }
    }
    out
}

/// Our values in percent per column (None: no data), from scores keyed by (task, metric) as
/// fractions; a planned column without its row becomes `Failed` with the reason.
pub fn our_values(
    plans: &mut [(String, How)],
    scores: &BTreeMap<(String, String), f64>,
) -> BTreeMap<String, Option<f64>> {
    let mut ours = BTreeMap::new();
    for (task, how) in plans.iter_mut() {
        let value = match how {
            How::Run { row_task, metric, .. } => match scores.get(&(row_task.clone(), metric.clone())) {
                Some(v) if v.is_finite() => Some(v * 100.0),
                _ => {
                    *how = How::Failed(format!("no `{metric}` score for `{row_task}` in the run"));
                    None
                }
            },
            How::NoData(_) | How::Failed(_) => None,
            How::NotRun => continue,
        };
        ours.insert(task.clone(), value);
    }
    ours
}

/// The paper's table with ours, and how each column was run. Returns (Markdown, CSV).
pub fn render(table: &PaperTable, plans: &[(String, How)], ours: &BTreeMap<String, Option<f64>>) -> (String, String) {
    let not_run: BTreeSet<String> = plans
        .iter()
        .filter(|(_, h)| *h == How::NotRun)
        .map(|(t, _)| t.clone())
        .collect();
    let (mut markdown, csv) = table.render_partial(ours, &not_run);
    markdown.push_str("\nHow we ran each column:\n\n");
    for (task, how) in plans {
        let label = table
            .columns
            .iter()
            .find(|c| &c.task == task)
            .map_or(task.as_str(), |c| c.label.as_str());
        let _ = write!(markdown, "- {label} (`{task}`): ");
        match how {
            How::Run {
                run_task,
                row_task,
                metric,
                settings,
                deviation,
            } => {
                let _ = write!(
                    markdown,
                    "`{run_task}`, {}-shot, {metric} (row `{row_task}`), run folder runs/{}",
                    settings.shots,
                    settings.label()
                );
                if let Some(deviation) = deviation {
                    let _ = write!(markdown, "; deviation: {deviation}");
                }
            }
            How::NoData(reason) | How::Failed(reason) => {
                let _ = write!(markdown, "no data: {reason}");
            }
            How::NotRun => markdown.push_str("not run (left out by --tasks)"),
        }
        markdown.push('\n');
    }
    (markdown, csv)
}
