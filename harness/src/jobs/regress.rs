//! `harness regress --baseline DIR (--run DIR | --config FILE.json)`: a candidate run against a
//! baseline run (reports::regress::compare_runs). With `--config` the candidate is run first.
//! Writes regress.md and regress.csv into the candidate's folder (or `--report DIR`), prints the
//! Markdown, and returns the exit code: 0 no regression, 1 regression, 2 cannot compare — which
//! includes a baseline or run that cannot be read and an evaluation that fails, so that CI can
//! tell "worse" from "broken".

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use reports::regress::{RegressOptions, compare_runs};
use reports::run_dir::RunDir;

use crate::options::RunOptions;

#[derive(Args, Clone, Debug)]
pub struct RegressArgs {
    /// The baseline run folder (e.g. results/baselines/nightly-smollm2).
    #[arg(long)]
    pub baseline: PathBuf,
    /// A finished candidate run folder.
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    pub run: Option<PathBuf>,
    /// A run configuration to evaluate first (its run folder: --out, else the config's "out",
    /// else results/runs/regress-<config name>). A run of the same harness commit there is
    /// resumed; one of another commit is refused unless --fresh.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// With --config: the candidate's run folder.
    // `conflicts_with = "run"` rather than `requires = "config"`, which clap does not enforce
    // beside `--run`'s conflict.
    #[arg(long, conflicts_with = "run")]
    pub out: Option<PathBuf>,
    /// With --config: delete an earlier run in the candidate's run folder first.
    #[arg(long, conflicts_with = "run")]
    pub fresh: bool,
    /// Where regress.md and regress.csv go (default: the candidate's run folder).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Significance level of the paired tests, in (0, 1).
    #[arg(long, default_value_t = 0.01, value_parser = significance_level, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Largest allowed drop, in percentage points (≥ 0), of a score without per-item results.
    #[arg(long, default_value_t = 1.0, value_parser = points, allow_negative_numbers = true)]
    pub tolerance_points: f64,
    /// Metrics where lower is better (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub lower_is_better: Vec<String>,
}

/// `--alpha`: a probability strictly between 0 and 1 (NaN or 0 would turn the gate off).
fn significance_level(text: &str) -> Result<f64, String> {
    let alpha: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if alpha > 0.0 && alpha < 1.0 {
        Ok(alpha)
    } else {
        Err(format!(
            "{text}: the significance level must be between 0 and 1 (exclusive)"
        ))
    }
}

/// `--tolerance-points`: a finite number of percentage points, ≥ 0.
fn points(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("{text}: the tolerance must be a finite number of points ≥ 0"))
    }
}

/// Runs the comparison; returns the exit code (errors are printed and give 2).
pub fn run(args: &RegressArgs) -> i32 {
    match compare(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            eprintln!("regress: cannot compare (exit code 2)");
            2
        }
    }
}

fn compare(args: &RegressArgs) -> anyhow::Result<i32> {
    // Check the baseline before spending minutes on an evaluation.
    let baseline_scores = args.baseline.join("scores.csv");
    if !baseline_scores.is_file() {
        bail!(
            "{}: no such file: --baseline must be a run folder",
            baseline_scores.display()
        );
    }
    // Before a --config run spends its time: a metric name the baseline does not have.
    reports::regress::check_lower_is_better(&args.lower_is_better, &RunDir::load(&args.baseline)?)?;
    let candidate = match (&args.run, &args.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(file)) => run_config(file, args)?,
        (None, None) => bail!("give --run DIR or --config FILE.json"),
    };
    let options = RegressOptions {
        alpha: args.alpha,
        tolerance_points: args.tolerance_points,
        lower_is_better: args.lower_is_better.clone(),
        ..RegressOptions::default()
    };
    let report = compare_runs(&args.baseline, &candidate, &options)?;
    let report_dir = args.report.clone().unwrap_or_else(|| candidate.clone());
    std::fs::create_dir_all(&report_dir).with_context(|| format!("{}: cannot create", report_dir.display()))?;
    let markdown = report.markdown();
    reports::run_dir::write_atomic(&report_dir.join("regress.md"), markdown.as_bytes())?;
    report.write_csv(&report_dir.join("regress.csv"))?;
    print!("{markdown}");
    println!(
        "\nwrote {} and regress.csv; exit code {}",
        report_dir.join("regress.md").display(),
        report.exit_code()
    );
    Ok(report.exit_code())
}

/// Evaluates the config into its run folder and returns the folder.
fn run_config(file: &Path, args: &RegressArgs) -> anyhow::Result<PathBuf> {
    let flags = RunOptions {
        config: Some(file.to_path_buf()),
        out: args.out.clone(),
        ..Default::default()
    };
    let mut config = flags.resolve()?;
    let out = config.out.clone().unwrap_or_else(|| {
        let stem = file
            .file_stem()
            .map_or("config".into(), |s| s.to_string_lossy().to_string());
        PathBuf::from("results/runs").join(format!("regress-{stem}"))
    });
    prepare_out_dir(&out, args.fresh)?;
    config.out = Some(out);
    let outcome = crate::eval::evaluate(&config)?;
    eprintln!("evaluated {} into {}", file.display(), outcome.out_dir.display());
    Ok(outcome.out_dir)
}

/// Refuses to resume a run made by another harness commit (its results would not test this
/// one); with `fresh`, deletes an earlier run (only a folder that holds a run's identity.json).
fn prepare_out_dir(out: &Path, fresh: bool) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    let is_run = out.join("identity.json").is_file();
    if fresh {
        if !is_run {
            let empty = std::fs::read_dir(out)
                .with_context(|| format!("{}: cannot list", out.display()))?
                .next()
                .is_none();
            if !empty {
                bail!(
                    "{}: --fresh would delete a folder that holds no run (no identity.json); choose another --out",
                    out.display()
                );
            }
        }
        std::fs::remove_dir_all(out).with_context(|| format!("{}: cannot remove", out.display()))?;
        return Ok(());
    }
    let run_json = out.join("run.json");
    if let Ok(text) = std::fs::read_to_string(&run_json) {
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", run_json.display()))?;
        let theirs = value
            .get("harness_git")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("unknown");
        let ours = env!("HARNESS_GIT_HASH");
        if theirs != ours {
            bail!(
                "{} holds a run made by harness {theirs}, this is {ours}: resuming it would not test this build; \
                 give --fresh to replace it, or another --out",
                out.display()
            );
        }
    }
    Ok(())
}
