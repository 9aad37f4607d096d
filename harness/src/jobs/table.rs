//! `harness table --paper mistral-7b --model M`: runs a paper's suite with the paper's settings
//! and prints the paper's table (reports::paper) with our row and our difference.
//!
//! Each column is planned ([`plan_column`], in [`super::table_plan`]): the task we run, the row of scores.csv we read, the
//! metric, the shots and the sampling; deviations from the paper are stated, and a column we
//! cannot run (data not bundled, task not implemented, a failed run) is `no data` with the
//! reason, never dropped. Columns with the same settings share one `evaluate()` run in
//! OUT/runs/<settings>/ (resumable).
//!
//! Settings (Mistral 7B paper, §3): commonsense tasks, BoolQ, HumanEval 0-shot; MMLU 5-shot;
//! MBPP and BBH 3-shot; NQ 5-shot, run 0-shot here (nq_open's train split is not bundled);
//! TriviaQA not bundled; GSM8K 8-shot maj@8 as `gsm8k_cot` (its 8 fixed exemplars) with 8
//! samples; MATH 4-shot maj@4 with 4 samples. The paper states no sampling temperature for
//! maj@k: 0.6 is our choice (`--temperature`); `--greedy` runs maj@1 greedy instead (for quick
//! `--limit` runs). The paper does not say acc or acc_norm: acc_norm where lm-eval reports both
//! for the commonsense tasks (HellaSwag, PIQA, ARC, OpenBookQA), acc otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use reports::paper::PaperTable;

pub use super::table_plan::{How, Settings, failures, our_values, plan, plan_column, render, runs};
use crate::options::RunOptions;
use model::backend::BackendKind;
use model::{ComputeDtype, WeightsPolicy};

/// The sampling temperature of maj@k columns unless `--temperature` says otherwise.
pub const DEFAULT_TEMPERATURE: f32 = 0.6;

#[derive(Args, Clone, Debug)]
pub struct TableArgs {
    /// The paper: a name in configs/papers/ (e.g. mistral-7b) or a path to a values file.
    #[arg(long)]
    pub paper: String,
    /// An HF folder, a .gguf file, or a hub id org/name[@revision] in the HuggingFace cache.
    #[arg(long)]
    pub model: PathBuf,
    /// Only the first N items of each task (each MMLU subject, each BBH task, ...).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only these columns (the paper file's task names, e.g. mmlu,hellaswag,gsm8k); the others
    /// show `not run`.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// maj@1 with greedy decoding for the maj@k columns (GSM8K, MATH): a quick, deterministic run.
    #[arg(long, conflicts_with = "temperature")]
    pub greedy: bool,
    /// Sampling temperature of the maj@k columns.
    #[arg(long, default_value_t = DEFAULT_TEMPERATURE)]
    pub temperature: f32,
    /// Cap on new tokens per generation (default: each task's own).
    #[arg(long)]
    pub max_gen_toks: Option<usize>,
    /// Output folder (default results/runs/table-<paper>-<model>[-limitN][-greedy][-<dtype>][-direct]/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Rows per forward pass (default 8), as for `eval`.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Compute backend: flex (CPU, default), ndarray (CPU) or wgpu (GPU), as compiled in.
    #[arg(long)]
    pub backend: Option<BackendKind>,
    /// Compute precision, as for `eval` (auto: f32 on CPU, f16 on a GPU).
    #[arg(long)]
    pub dtype: Option<ComputeDtype>,
    /// Weights as for `eval` (a 7B model on a 24 GiB machine generates fastest with
    /// `--weights direct`, in the memory of its file).
    #[arg(long)]
    pub weights: Option<WeightsPolicy>,
    /// Few-shot and sampling seed (default 1234, lm-eval's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where the task data lives (default: the tasks crate's data/ folder).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(args: &TableArgs) -> anyhow::Result<()> {
    // Checked here, not only in the maj@k runs: a table without those columns would otherwise
    // accept any value and print it.
    if !args.greedy && !(args.temperature > 0.0 && args.temperature.is_finite()) {
        bail!(
            "--temperature {}: maj@k samples need a finite temperature > 0 (or --greedy for maj@1)",
            args.temperature
        );
    }
    let path = paper_path(&args.paper)?;
    let table = PaperTable::load(&path)?;
    let data_dir = args.data_dir.clone().unwrap_or_else(tasks::default_data_dir);
    let registry = tasks::Registry::new(&[])?.with_data_dir(data_dir);
    let mut plans = plan(&table, args.tasks.as_deref(), args.greedy, args.temperature, &registry)?;
    let out = match &args.out {
        Some(out) => out.clone(),
        None => default_out(args, &path, &model::Checkpoint::open(&args.model)?.folder_name()),
    };
    let mut scores: BTreeMap<(String, String), f64> = BTreeMap::new();
    let planned = runs(&plans);
    let of = planned.len();
    for (i, (settings, run_tasks)) in planned.into_iter().enumerate() {
        let options = RunOptions {
            model: Some(args.model.clone()),
            tasks: Some(run_tasks.clone()),
            shots: Some(settings.shots),
            limit: args.limit,
            batch_size: args.batch_size,
            backend: args.backend,
            dtype: args.dtype,
            weights: args.weights,
            seed: args.seed,
            out: Some(out.join("runs").join(settings.label())),
            data_dir: args.data_dir.clone(),
            samples: Some(settings.samples),
            temperature: Some(settings.temperature),
            max_gen_toks: args.max_gen_toks,
            threads: args.threads,
            quiet: Some(args.quiet),
            ..RunOptions::default()
        };
        options.validate()?;
        eprintln!(
            "== run {} of {of}: {} ({})",
            i + 1,
            settings.label(),
            run_tasks.join(", ")
        );
        match crate::eval::evaluate_in_job(&options) {
            Ok(outcome) => {
                for row in outcome.rows {
                    scores.insert((row.task, row.metric), row.value);
                }
            }
            Err(err) => {
                let reason = format!("the {} run failed: {err:#}", settings.label());
                eprintln!("error: {reason}");
                for (_, how) in plans.iter_mut() {
                    if matches!(how, How::Run { settings: s, .. } if *s == settings) {
                        *how = How::Failed(reason.clone());
                    }
                }
            }
        }
    }
    let ours = our_values(&mut plans, &scores);
    let (mut markdown, csv) = render(&table, &plans, &ours);
    let _ = writeln!(markdown, "\n{}", our_run(args, &out));
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create", out.display()))?;
    reports::run_dir::write_atomic(&out.join("table.md"), markdown.as_bytes())?;
    reports::run_dir::write_atomic(&out.join("table.csv"), csv.as_bytes())?;
    print!("{markdown}");
    println!("\nwrote {} and table.csv", out.join("table.md").display());
    let failures = failures(&plans);
    if !failures.is_empty() {
        bail!(
            "columns have no data because of {} error(s), also listed under the table: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    Ok(())
}

/// The line under the table: our model and every setting of ours that moves the scores.
fn our_run(args: &TableArgs, out: &Path) -> String {
    let mut settings = vec![args.limit.map_or("all items".into(), |l| {
        format!("--limit {l} (the first {l} items of each task and subject)")
    })];
    settings.push(if args.greedy {
        "--greedy (maj@1)".to_string()
    } else {
        format!("maj@k sampled at temperature {}", args.temperature)
    });
    if let Some(cap) = args.max_gen_toks {
        settings.push(format!(
            "--max-gen-toks {cap} (every generation cut at {cap} new tokens, not each task's own cap)"
        ));
    }
    if let Some(seed) = args.seed.filter(|_| !args.greedy) {
        settings.push(format!("--seed {seed}"));
    }
    if let Some(backend) = args.backend {
        settings.push(format!("--backend {backend}"));
    }
    if let Some(dtype) = args.dtype {
        settings.push(format!("--dtype {dtype}"));
    }
    if args.weights == Some(WeightsPolicy::Direct) {
        settings.push("--weights direct (decode steps summed in another order)".into());
    }
    format!(
        "Our run: {}, {}; run folders in {}/runs/.",
        args.model.display(),
        settings.join(", "),
        out.display()
    )
}

/// A name in configs/papers/ (from the working folder, else this source tree's), or a path.
fn paper_path(paper: &str) -> anyhow::Result<PathBuf> {
    if paper.ends_with(".json") || paper.contains('/') {
        return Ok(PathBuf::from(paper));
    }
    let candidates = [
        PathBuf::from("configs/papers").join(format!("{paper}.json")),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/papers")).join(format!("{paper}.json")),
    ];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => Ok(path.clone()),
        None => bail!(
            "--paper {paper}: no values file at {} (or {})",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

fn default_out(args: &TableArgs, paper: &Path, model_folder: &str) -> PathBuf {
    let stem = paper
        .file_stem()
        .map_or("x".into(), |s| s.to_string_lossy().to_string());
    let mut name = format!("table-{stem}-{model_folder}");
    if let Some(limit) = args.limit {
        let _ = write!(name, "-limit{limit}");
    }
    if args.greedy {
        name.push_str("-greedy");
    }
    // A dtype or direct weights change the numbers, so they get their own folder rather than
    // a refused resume.
    if let Some(dtype) = args.dtype {
        let _ = write!(name, "-{dtype}");
    }
    if args.weights == Some(WeightsPolicy::Direct) {
        name.push_str("-direct");
    }
    PathBuf::from("results/runs").join(name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::{TableArgs, our_run};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        table: TableArgs,
    }

    fn line(flags: &[&str]) -> String {
        let args = ["table", "--paper", "mistral-7b", "--model", "m.gguf"]
            .iter()
            .chain(flags);
        our_run(&Cli::parse_from(args).table, Path::new("out"))
    }

    #[test]
    fn the_line_under_the_table_names_every_setting_that_moves_the_scores() {
        assert_eq!(
            line(&["--limit", "5", "--greedy"]),
            "Our run: m.gguf, --limit 5 (the first 5 items of each task and subject), --greedy (maj@1); run folders in out/runs/."
        );
        let capped = line(&[
            "--max-gen-toks",
            "32",
            "--dtype",
            "f16",
            "--seed",
            "7",
            "--weights",
            "direct",
        ]);
        assert!(
            capped.contains("all items, maj@k sampled at temperature 0.6"),
            "{capped}"
        );
        assert!(
            capped.contains("--max-gen-toks 32 (every generation cut at 32"),
            "{capped}"
        );
        assert!(capped.contains("--dtype f16"), "{capped}");
        assert!(capped.contains("--seed 7"), "{capped}");
        assert!(capped.contains("--weights direct"), "{capped}");
        assert!(
            !line(&["--weights", "stream"]).contains("--weights"),
            "stream keeps load's bits"
        );
    }
}
