//! The tasks crate's earlier, per-family API (load_task / load_gen_task over the built-in
//! tasks), kept for these tests as a thin layer over `Registry`: the tests it serves were written
//! against it and check requests, counts and scores that must not change.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tasks::{
    DEFAULT_FEWSHOT_SEED, GenItem, GenMetric, ItemScores, LoadOptions, McItem, Metric, OutputType, Registry, Request,
    Task, TaskError,
};

/// The built-in registry, parsed once per test binary.
fn builtin_registry() -> Result<&'static Registry, TaskError> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    if let Some(r) = REGISTRY.get() {
        return Ok(r);
    }
    let registry = Registry::new(&[])?;
    Ok(REGISTRY.get_or_init(|| registry))
}

/// Options of [`load_task`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOptions {
    /// Number of few-shot examples (lm-eval `--num_fewshot`).
    pub shots: usize,
    /// Few-shot seed (default 1234).
    pub seed: u64,
    /// Only the first N items, in data order.
    pub limit: Option<usize>,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            shots: 0,
            seed: DEFAULT_FEWSHOT_SEED,
            limit: None,
        }
    }
}

/// A loaded multiple-choice task (previous API).
#[derive(Debug, Clone)]
pub struct TaskInstance {
    pub name: String,
    pub metrics: Vec<Metric>,
    pub items: Vec<McItem>,
    /// The data files read, for hashing.
    pub data_files: Vec<PathBuf>,
}

/// Options of [`load_gen_task`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    /// Few-shot count; `None` = the task file's `num_fewshot`.
    pub shots: Option<usize>,
    pub seed: u64,
    pub limit: Option<usize>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            shots: None,
            seed: DEFAULT_FEWSHOT_SEED,
            limit: None,
        }
    }
}

impl From<&TaskOptions> for GenOptions {
    fn from(o: &TaskOptions) -> Self {
        GenOptions {
            shots: Some(o.shots),
            seed: o.seed,
            limit: o.limit,
        }
    }
}

/// A loaded generative task (previous API).
#[derive(Debug, Clone)]
pub struct GenTaskInstance {
    pub name: String,
    pub items: Vec<GenItem>,
    pub metrics: Vec<GenMetric>,
    /// The few-shot count used.
    pub shots: usize,
    /// The data files read, for hashing.
    pub data_files: Vec<PathBuf>,
    task: Task,
}

fn builtin(data_dir: &Path) -> Result<Registry, TaskError> {
    Ok(builtin_registry()?.clone().with_data_dir(data_dir.to_path_buf()))
}

/// Loads one built-in multiple-choice task (previous API).
pub fn load_task(name: &str, data_dir: &Path, options: &TaskOptions) -> Result<TaskInstance, TaskError> {
    let reg = builtin(data_dir)?;
    let load = LoadOptions {
        shots: Some(options.shots),
        seed: options.seed,
        limit: options.limit,
    };
    let task = reg.load(name, &load)?;
    if task.output_type == OutputType::GenerateUntil {
        return Err(TaskError::Generative { task: task.name });
    }
    Ok(TaskInstance {
        metrics: task.choice_metrics().to_vec(),
        items: task
            .items
            .into_iter()
            .filter_map(|i| match i.request {
                Request::Choice(mc) => Some(mc),
                Request::Generate(_) => None,
            })
            .collect(),
        name: task.name,
        data_files: task.data_files,
    })
}

/// Loads one built-in generative task (previous API).
pub fn load_gen_task(name: &str, data_dir: &Path, options: &GenOptions) -> Result<GenTaskInstance, TaskError> {
    let reg = builtin(data_dir)?;
    if reg.task_def(name)?.output_type != OutputType::GenerateUntil {
        return Err(TaskError::UnknownTask {
            name: name.to_string(),
            known: "the generate_until tasks".into(),
        });
    }
    let load = LoadOptions {
        shots: options.shots,
        seed: options.seed,
        limit: options.limit,
    };
    let task = reg.load(name, &load)?;
    Ok(GenTaskInstance {
        name: task.name.clone(),
        items: task
            .items
            .iter()
            .filter_map(|i| match &i.request {
                Request::Generate(g) => Some(g.clone()),
                Request::Choice(_) => None,
            })
            .collect(),
        metrics: task.gen_metrics().into_iter().map(|(m, _)| m).collect(),
        shots: task.shots,
        data_files: task.data_files.clone(),
        task,
    })
}

/// Scores one item's responses (previous API; see [`Task::score_generation`]).
pub fn score_responses(task: &GenTaskInstance, item: &GenItem, responses: &[String]) -> ItemScores {
    task.task.score_generation(item, responses)
}

/// pass@k of a code item for each `PassAt(k)` in `task.metrics` (previous API; see
/// [`Task::score_code`]).
pub fn score_code(task: &GenTaskInstance, passed: &[bool]) -> ItemScores {
    ItemScores {
        scores: task
            .task
            .score_code(passed)
            .scores
            .into_iter()
            .filter(|s| task.metrics.contains(&s.metric))
            .collect(),
    }
}

/// The built-in tasks, in definition order.
pub fn known_tasks() -> Vec<String> {
    builtin_registry().map(Registry::task_names).unwrap_or_default()
}

/// Expands built-in task, group, tag and alias names into tasks (see [`Registry::expand`]).
pub fn expand_task_names(list: &[String]) -> Result<Vec<String>, TaskError> {
    builtin_registry()?.expand(list)
}

/// The tasks an aggregated built-in group averages (see [`Registry::group_members`]).
pub fn group_members(group: &str) -> Option<Vec<String>> {
    builtin_registry().ok()?.group_members(group)
}

/// Whether `name` is a built-in generate_until task (not a group).
pub fn is_generative(name: &str) -> bool {
    builtin_registry()
        .ok()
        .and_then(|r| r.task_def(name).ok())
        .is_some_and(|d| d.output_type == OutputType::GenerateUntil)
}

/// A built-in generative task's `num_fewshot` (0 where its file sets none).
pub fn default_shots(name: &str) -> Option<usize> {
    let def = builtin_registry().ok()?.task_def(name).ok()?;
    (def.output_type == OutputType::GenerateUntil).then(|| def.num_fewshot.unwrap_or(0))
}
