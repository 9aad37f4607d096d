//! `harness eval`: plan the run, claim its folder, load the model, run every task against it,
//! write the reports. A rerun of the same command resumes from the journals.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, bail};
use model::LoadedModel;
use reports::aggregate::{RowLabels, group_rows, task_row};
use reports::run_dir::{ScoreRow, write_scores_csv};
use reports::run_record::{AttentionRecord, Machine, ModelRecord, RunRecord, peak_rss_bytes, utc_now};

use crate::chat::ChatPrompt;
use crate::lm::Lm;
use crate::lm_eval_files::RunFacts;
use crate::options::RunOptions;
use crate::out_dir::OutDir;
use crate::plan::RunPlan;
use crate::progress::{ProgressMode, TaskPosition};
use crate::report::summary_table;
use crate::run_task::{GenSettings, TaskContext, TaskScores};

pub fn run(flags: &RunOptions) -> anyhow::Result<()> {
    let outcome = evaluate(&flags.resolve()?)?;
    print!("{}", summary_table(&outcome.rows));
    println!("wrote {}", outcome.out_dir.join("scores.csv").display());
    Ok(())
}

pub struct Outcome {
    pub out_dir: PathBuf,
    pub rows: Vec<ScoreRow>,
}

/// Runs resolved `options` (see `RunOptions::resolve`).
pub fn evaluate(options: &RunOptions) -> anyhow::Result<Outcome> {
    evaluate_with(options, true)
}

/// `evaluate` for a job that gives its generation settings to runs of every kind (`table`'s
/// `--max-gen-toks` reaches its multiple-choice runs too): no warning that they go unused.
pub fn evaluate_in_job(options: &RunOptions) -> anyhow::Result<Outcome> {
    evaluate_with(options, false)
}

fn evaluate_with(options: &RunOptions, warn_unused_generation: bool) -> anyhow::Result<Outcome> {
    let clock = RunClock::start();
    set_threads(options.threads)?;
    let plan = RunPlan::new(options)?;
    if warn_unused_generation {
        warn_unused_generation_flags(options, &plan);
    }
    // Before the run folder is claimed: a backend that cannot start leaves nothing behind.
    let device = options.backend().device()?;
    let out = OutDir::claim(&plan.out_dir, &plan.identity)?;
    let model = plan
        .checkpoint
        .load_with(&options.attention(), &device, &options.load_options()?)?;
    if !options.quiet() {
        eprintln!("{}: {}", plan.model_name, model.memory);
    }
    let lm = Lm::of(&model, options.batch_size())?;
    let chat = match options.chat() {
        true => Some(ChatPrompt::new(
            crate::chat::from_tokenizer(lm.tokenizer)?,
            options.system_prompt.as_deref(),
        )),
        false => None,
    };
    let context = TaskContext {
        lm: &lm,
        out_dir: &out.path,
        progress: ProgressMode::detect(options.quiet()),
        position: TaskPosition::ALONE,
        chat: chat.as_ref(),
        generation: GenSettings {
            samples: options.samples(),
            sampling: options.sampling(),
            run_seed: options.seed(),
            max_gen_toks: options.max_gen_toks,
        },
    };
    let of = plan.tasks.len();
    let scores = plan
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let position = TaskPosition { index: i + 1, of };
            crate::plan::run_task(&TaskContext { position, ..context }, task)
                .with_context(|| format!("{} on {}", task.name, plan.checkpoint.location().display()))
        })
        .collect::<anyhow::Result<Vec<TaskScores>>>()?;
    let rows = score_rows(&plan, &scores);
    write_scores_csv(&out.join("scores.csv"), &rows)?;
    run_record(options, &plan, &model, &scores, &out, &clock)?.write(&out.path)?;
    let facts = RunFacts {
        started: clock.started_unix,
        seconds: clock.seconds(),
        max_length: model.decoder.config.max_position_embeddings,
        chat_template: options
            .chat()
            .then(|| lm.tokenizer.chat_template().map(str::to_string))
            .flatten(),
    };
    crate::lm_eval_files::write(&plan, &rows, &facts)?;
    Ok(Outcome {
        out_dir: out.path.clone(),
        rows,
    })
}

/// When this invocation started, as run.json and lm-eval's results file write it.
struct RunClock {
    started: String,
    started_unix: f64,
    instant: Instant,
}

impl RunClock {
    fn start() -> Self {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            started: utc_now(),
            started_unix,
            instant: Instant::now(),
        }
    }

    fn seconds(&self) -> f64 {
        self.instant.elapsed().as_secs_f64()
    }
}

/// run.json: the options, the model as loaded, the machine, timings, memory and truncations.
fn run_record(
    options: &RunOptions,
    plan: &RunPlan,
    model: &LoadedModel,
    scores: &[TaskScores],
    out: &OutDir,
    clock: &RunClock,
) -> anyhow::Result<RunRecord> {
    let decoder = &model.decoder;
    let windows = &decoder.attention.windows;
    Ok(RunRecord {
        config: serde_json::to_value(options)?,
        resolved_tasks: plan.identity.tasks.clone(),
        attention: plan.identity.attention.clone(),
        backend: plan.identity.backend.clone(),
        model: ModelRecord {
            path: plan.identity.model.clone(),
            name: plan.model_name.clone(),
            sha256: plan.identity.model_sha256.clone(),
            files: serde_json::to_value(&plan.model_files)?,
            config: format!("{:?}", decoder.config),
        },
        data_sha256: plan.identity.data_sha256.clone(),
        harness_version: env!("CARGO_PKG_VERSION").into(),
        harness_git: env!("HARNESS_GIT_HASH").into(),
        machine: Machine::this(),
        started: clock.started.clone(),
        finished: utc_now(),
        seconds_this_invocation: clock.seconds(),
        attention_resolved: AttentionRecord {
            num_layers: decoder.config.num_layers,
            num_heads: decoder.attention.num_heads,
            native_kv_heads: decoder.attention.native_kv_heads,
            kv_heads: decoder.attention.kv_heads,
            head_dim: decoder.config.head_dim,
            window: decoder.attention.uniform_window(),
            layer_windows: windows.iter().any(|w| *w != windows[0]).then(|| windows.clone()),
        },
        weights: Some(model.memory.to_string()),
        peak_rss_bytes: peak_rss_bytes().map(|p| p.max(RunRecord::earlier_peak_rss(&out.path).unwrap_or(0))),
        truncated: scores
            .iter()
            .filter(|s| s.truncated > 0)
            .map(|s| (s.name.clone(), s.truncated))
            .collect(),
    })
}

/// One row per task and metric (reports::aggregate), then the plan's group rows.
fn score_rows(plan: &RunPlan, scores: &[TaskScores]) -> Vec<ScoreRow> {
    let labels = RowLabels {
        model: plan.model_name.clone(),
        attention: plan.identity.attention.clone(),
        backend: plan.identity.backend.clone(),
    };
    let mut rows: Vec<ScoreRow> = scores
        .iter()
        .flat_map(|task| {
            task.metrics
                .iter()
                .map(|(metric, values)| task_row(&labels, &task.name, task.shots, metric, values, task.seconds))
        })
        .collect();
    rows.extend(group_rows(&rows, &plan.groups));
    rows
}

/// Generation settings for a run whose tasks all score choices would change nothing: said,
/// not ignored in silence (a warning, as a config file may set them for other runs).
fn warn_unused_generation_flags(options: &RunOptions, plan: &RunPlan) {
    let generates = plan
        .tasks
        .iter()
        .any(|t| matches!(t.output_type, tasks::OutputType::GenerateUntil));
    let given = options.generation_flags();
    if !generates && !given.is_empty() {
        eprintln!(
            "warning: no task of this run generates text; without effect: {}",
            given.join(", ")
        );
    }
}

/// `--threads N`: the size of the compute thread pool (the whole process has one).
fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    // The global pool is built once per process (`table` evaluates several runs in one); its
    // outcome is kept, because after a failed start rayon has no pool to ask its size.
    static POOL: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    let Some(n) = threads else { return Ok(()) };
    let pool = POOL.get_or_init(|| match rayon::ThreadPoolBuilder::new().num_threads(n).build_global() {
        Ok(()) => Ok(n),
        // A thread that could not start.
        Err(e) if std::error::Error::source(&e).is_some() => Err(e.to_string()),
        // A pool started earlier by other work, with the default size.
        Err(_) => Ok(rayon::current_num_threads()),
    });
    match pool {
        Ok(m) if *m == n => Ok(()),
        Ok(m) => bail!("--threads {n}: this process already computes with {m} threads"),
        Err(e) => bail!("--threads {n}: cannot start the compute threads: {e}"),
    }
}
