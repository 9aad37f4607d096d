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
use tasks::{GenMetric, GenOptions, GenTaskInstance, TaskInstance, TaskOptions};

use crate::options::RunOptions;
use crate::run_task::{TaskContext, TaskScores, generate, multiple_choice};

/// One task of the run, loaded.
pub enum PlannedTask {
    MultipleChoice { task: TaskInstance, shots: usize },
    Generate(GenTaskInstance),
}

impl PlannedTask {
    pub fn name(&self) -> &str {
        match self {
            PlannedTask::MultipleChoice { task, .. } => &task.name,
            PlannedTask::Generate(task) => &task.name,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            PlannedTask::MultipleChoice { task, .. } => task.items.len(),
            PlannedTask::Generate(task) => task.items.len(),
        }
    }

    fn data_files(&self) -> &[PathBuf] {
        match self {
            PlannedTask::MultipleChoice { task, .. } => &task.data_files,
            PlannedTask::Generate(task) => &task.data_files,
        }
    }

    /// Scores the items not journaled yet; every item's metrics.
    pub fn run(&self, context: &TaskContext) -> anyhow::Result<TaskScores> {
        match self {
            PlannedTask::MultipleChoice { task, shots } => multiple_choice::run(context, task, *shots),
            PlannedTask::Generate(task) => generate::run(context, task),
        }
    }
}

pub struct RunPlan {
    pub options: RunOptions,
    pub checkpoint: Checkpoint,
    /// The checkpoint's files with their sha256 (run.json lists them).
    pub model_files: Vec<CheckpointFile>,
    pub tasks: Vec<PlannedTask>,
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
        let names = tasks::expand_task_names(options.tasks())?;
        if let Some(unknown) = options.task_limits().keys().find(|t| !names.contains(t)) {
            bail!(
                "--task-limits names `{unknown}`, which is not one of this run's tasks ({})",
                names.join(", ")
            );
        }
        let tasks = names
            .iter()
            .map(|name| load_task(options, name))
            .collect::<anyhow::Result<Vec<PlannedTask>>>()?;
        let model_files = checkpoint.files()?;
        let identity = identity(options, &names, &tasks, files_sha256(&model_files))?;
        let out_dir = match &options.out {
            Some(dir) => dir.clone(),
            None => default_out(&checkpoint.folder_name(), options, &identity),
        };
        Ok(RunPlan {
            groups: groups(options.tasks()),
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

fn load_task(options: &RunOptions, name: &str) -> anyhow::Result<PlannedTask> {
    let data_dir = options.data_dir();
    let limit = options.limit_for(name);
    let task = if tasks::is_generative(name) {
        let gen_options = GenOptions {
            shots: options.shots,
            seed: options.seed(),
            limit,
        };
        let mut task = tasks::load_gen_task(name, &data_dir, &gen_options)?;
        task.items = in_shard(task.items, options.shard);
        with_pass_at_k(&mut task, options.samples());
        PlannedTask::Generate(task)
    } else {
        let shots = options.shots.unwrap_or(0);
        let mc_options = TaskOptions {
            shots,
            seed: options.seed(),
            limit,
        };
        let mut task = tasks::load_task(name, &data_dir, &mc_options)?;
        task.items = in_shard(task.items, options.shard);
        PlannedTask::MultipleChoice { task, shots }
    };
    if task.len() == 0 {
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

/// Code tasks report pass@k for the usual k (1, 10, 100) that `samples` allows.
fn with_pass_at_k(task: &mut GenTaskInstance, samples: usize) {
    if task.metrics.iter().any(|m| matches!(m, GenMetric::PassAt(_))) {
        task.metrics = [1, 10, 100]
            .into_iter()
            .filter(|&k| k <= samples)
            .map(GenMetric::PassAt)
            .collect();
    }
}

/// Group rows for the groups the user named (mmlu and its categories, math, bbh), and for
/// "mmlu" its four categories too. "commonsense" is only a way to name several tasks: lm-eval
/// reports no aggregate for it.
fn groups(requested: &[String]) -> Vec<Group> {
    let mut names: Vec<String> = Vec::new();
    for name in requested.iter().filter(|n| tasks::group_members(n).is_some()) {
        if name == "mmlu" {
            names.extend(["mmlu_stem", "mmlu_humanities", "mmlu_social_sciences", "mmlu_other"].map(String::from));
        }
        names.push(name.clone());
    }
    names.iter().filter_map(|name| group(name)).collect()
}

/// A group lm-eval reports an aggregate for, with its members and weighting.
pub fn group(name: &str) -> Option<Group> {
    Some(Group {
        name: name.to_string(),
        members: tasks::group_members(name)?,
        weight_by_size: true,
    })
}

fn identity(
    options: &RunOptions,
    names: &[String],
    tasks: &[PlannedTask],
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
        seed: options.seed(),
        data_sha256: hash_data(tasks)?,
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

/// `task/file name` → sha256 of every data file the tasks read.
fn hash_data(tasks: &[PlannedTask]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for task in tasks {
        for file in task.data_files() {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            out.insert(format!("{}/{name}", task.name()), hash_file(file)?);
        }
    }
    Ok(out)
}
