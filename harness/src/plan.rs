//! What a run will do, decided before any model is loaded: the tasks (loaded, limited and
//! sharded), the groups to aggregate, the run's identity and its folder. Building a plan reads
//! the task data and hashes the files; it writes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use model::Checkpoint;
use model::load::checkpoint::{CheckpointFile, files_sha256};
use reports::aggregate::Group;
use reports::identity::{RunIdentity, SamplingIdentity};
use reports::merge::Shard;
use sha2::{Digest, Sha256};
use tasks::{LoadOptions, OutputType, Registry, Source, Task};

use crate::options::RunOptions;
use crate::run_task::{TaskContext, TaskScores, generate, multiple_choice};

/// Scores the items of `task` not journaled yet; every item's metrics.
pub fn run_task(context: &TaskContext, task: &Task) -> anyhow::Result<TaskScores> {
    match task.output_type {
        OutputType::MultipleChoice => multiple_choice::run(context, task),
        OutputType::GenerateUntil => generate::run(context, task),
    }
}

/// The task registry of a run: the built-in definitions and `--include-path`, reading data from
/// `--data-dir`.
pub fn registry(options: &RunOptions) -> anyhow::Result<Registry> {
    let include = options.include_path.clone().unwrap_or_default();
    Ok(Registry::new(&include)?.with_data_dir(options.data_dir()))
}

pub struct RunPlan {
    pub options: RunOptions,
    pub checkpoint: Checkpoint,
    pub registry: Registry,
    /// The checkpoint's files with their sha256 (run.json lists them).
    pub model_files: Vec<CheckpointFile>,
    /// The tasks, loaded, limited and sharded.
    pub tasks: Vec<Task>,
    /// Group rows to report, in order (a group the user named; for `mmlu` its categories too).
    pub groups: Vec<Group>,
    pub identity: RunIdentity,
    pub out_dir: PathBuf,
    /// How scores.csv names the model.
    pub model_name: String,
}

impl RunPlan {
    /// `options` must be resolved (`RunOptions::resolve`).
    pub fn new(options: &RunOptions) -> anyhow::Result<RunPlan> {
        let checkpoint = Checkpoint::open(options.model())?;
        let registry = registry(options)?;
        let names = registry.expand(options.tasks())?;
        if let Some(unknown) = options.task_limits().keys().find(|t| !names.contains(t)) {
            bail!(
                "--task-limits names `{unknown}`, which is not one of this run's tasks ({})",
                names.join(", ")
            );
        }
        let tasks = names
            .iter()
            .map(|name| load_task(&registry, options, name))
            .collect::<anyhow::Result<Vec<Task>>>()?;
        let model_files = checkpoint.files()?;
        let identity = identity(options, &names, &tasks, &registry, files_sha256(&model_files))?;
        let out_dir = match &options.out {
            Some(dir) => dir.clone(),
            None => default_out(&checkpoint.folder_name(), options, &identity),
        };
        Ok(RunPlan {
            groups: groups(&registry, options.tasks()),
            registry,
            options: options.clone(),
            model_name: checkpoint.name().to_string(),
            checkpoint,
            model_files,
            tasks,
            identity,
            out_dir,
        })
    }
}

fn load_task(registry: &Registry, options: &RunOptions, name: &str) -> anyhow::Result<Task> {
    let load = LoadOptions {
        shots: options.shots,
        seed: options.seed(),
        limit: options.limit_for(name),
    };
    let mut task = registry.load(name, &load)?;
    task.items = in_shard(task.items, options.shard);
    if task.items.is_empty() {
        match options.shard {
            Some(shard) => bail!(
                "{name}: shard {shard} holds none of its items (the task has fewer items than shards after --limit): use fewer shards"
            ),
            None => bail!("{name}: the task has no items"),
        }
    }
    Ok(task)
}

/// The items of `shard` (all without one): positions p with p % n == i, doc_ids unchanged.
fn in_shard<T>(items: Vec<T>, shard: Option<Shard>) -> Vec<T> {
    match shard {
        None => items,
        Some(shard) => items
            .into_iter()
            .enumerate()
            .filter(|(p, _)| reports::merge::in_shard(*p, shard))
            .map(|(_, item)| item)
            .collect(),
    }
}

/// The groups to report, for each group the user named that aggregates a score: its aggregated
/// subgroups first (mmlu's four categories), then the group itself, as lm-eval reports them.
/// A name that only selects tasks ("commonsense") gets no row.
fn groups(registry: &Registry, requested: &[String]) -> Vec<Group> {
    let mut names: Vec<String> = Vec::new();
    for name in requested {
        with_subgroups(registry, registry.canonical(name.trim()), &mut names, 0);
    }
    names.iter().filter_map(|name| group(registry, name)).collect()
}

fn with_subgroups(registry: &Registry, name: &str, out: &mut Vec<String>, depth: usize) {
    if depth > 16 || registry.group_members(name).is_none() {
        return;
    }
    for child in registry.children(name).unwrap_or_default() {
        with_subgroups(registry, &child, out, depth + 1);
    }
    if !out.iter().any(|n| n == name) {
        out.push(name.to_string());
    }
}

/// A group that aggregates a score: its member tasks and weighting
/// (`aggregate_metric_list[].weight_by_size`).
pub fn group(registry: &Registry, name: &str) -> Option<Group> {
    let def = registry.group(name)?;
    Some(Group {
        name: def.name.clone(),
        members: registry.group_members(name)?,
        weight_by_size: def.aggregate.iter().all(|a| a.weight_by_size),
    })
}

fn identity(
    options: &RunOptions,
    names: &[String],
    tasks: &[Task],
    registry: &Registry,
    model_sha256: String,
) -> anyhow::Result<RunIdentity> {
    let sampling = options.sampling();
    Ok(RunIdentity {
        model: options.model().display().to_string(),
        model_sha256,
        tasks: names.to_vec(),
        shots: options.shots,
        limit: options.limit,
        task_limits: options.task_limits(),
        shard: options.shard,
        attention: options.attention().to_string(),
        backend: options.backend().to_string(),
        dtype: model::precision::dtype_name(options.load_options()?.dtype).into(),
        direct_weights: options.load_options()?.weights == model::WeightsPolicy::Direct,
        seed: options.seed(),
        data_sha256: hash_data(tasks, registry)?,
        samples: options.samples(),
        sampling: SamplingIdentity {
            temperature: sampling.temperature,
            top_k: sampling.top_k,
            top_p: sampling.top_p,
        },
        max_gen_toks: options.max_gen_toks,
        chat: options.chat(),
        system_prompt: options.system_prompt.clone(),
        other: BTreeMap::new(),
    })
}

/// results/runs/<model>-<attention>-[shardIofN-]<identity hash>/, which a rerun of the same
/// command finds again.
fn default_out(model_folder: &str, options: &RunOptions, identity: &RunIdentity) -> PathBuf {
    let shard = options
        .shard
        .map_or(String::new(), |s| format!("shard{}of{}-", s.index, s.count));
    PathBuf::from("results/runs").join(format!(
        "{model_folder}-{}-{shard}{}",
        options.attention(),
        &sha256_hex(identity.canonical_text().as_bytes())[..10]
    ))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// `task/file name` → sha256 of every data file the tasks read, and of the definition files of
/// tasks from `--include-path` (a built-in definition is pinned by the harness's own version).
fn hash_data(tasks: &[Task], registry: &Registry) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for task in tasks {
        let mut files = task.data_files.clone();
        if let Some(Source::File(_)) = registry.task_source(&task.name) {
            files.extend(registry.task_def(&task.name)?.files.iter().cloned());
        }
        for file in files {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            out.insert(format!("{}/{name}", task.name), hash_file(&file)?);
        }
    }
    Ok(out)
}
