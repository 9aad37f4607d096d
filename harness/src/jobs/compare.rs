//! `harness compare --model M --variants native,mha,mqa,gqa:2,swa:256 --tasks ...`: one model
//! run as several attention variants on the same items, side by side.
//!
//! Each variant is a child `harness eval --config DIR/variants/<variant>/config.json` (resumable
//! like any eval; a child process so that each variant's peak resident memory, which eval records
//! in run.json as `peak_rss_bytes` from Linux's VmHWM, is its own). Then, from the run folders:
//!
//! - `compare.csv`: one row per variant × task × metric: the scores.csv columns, then
//!   `tokens_per_s` (tokens through the model per second: a multiple-choice item's shared context
//!   once plus its continuations; a generation's prompt plus its new tokens, per sample),
//!   `mean_tokens` (mean context + continuation, or prompt + generation, length),
//!   `kv_bytes` (the KV cache of one sequence of `mean_tokens` tokens, f32:
//!   `ResolvedAttention::kv_bytes_per_row`: the variant's K/V heads, each layer's window), `kv_bytes_32k` (the
//!   same at 32,768 tokens), `peak_bytes` (the variant's peak resident memory), `delta_vs_native`
//!   (value − the reference's value, as a fraction) and `p_value` (a paired test on the per-item
//!   results against the reference: McNemar's exact test for 0/1 results, the paired t-test
//!   otherwise; group rows pool their members' items), both empty for the reference itself;
//! - `compare.md`: the scores (with Δ in points and p) and the costs, for people;
//! - `compare.svg`: grouped bars of each task's first metric per variant, and of items/s.
//!
//! The reference is `native` when listed, else the first variant.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail, ensure};
use clap::Args;
use model::ResolvedAttention;
use model::{AttentionSpec, Checkpoint};
use reports::run_dir::RunDir;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use super::compare_report::{human_bytes, markdown, svg};
pub use super::compare_rows::{CSV_HEADER, CompareRow, assemble, write_csv};
use crate::options::RunOptions;

/// The long-context length at which `kv_bytes_32k` is computed.
pub const LONG_CONTEXT: usize = 32_768;

#[derive(Args, Clone, Debug)]
#[command(mut_arg("out", |a| a.help(
    "The comparison's folder (default results/runs/compare-<model>-<settings hash>/); \
     variant V runs in OUT/variants/V/"
)))]
#[command(mut_arg("attention", |a| a.hide(true)))]
#[command(mut_arg("shard", |a| a.hide(true)))]
pub struct CompareArgs {
    /// Attention variants, comma-separated; join the parts of one variant with `+`
    /// (e.g. `native,mqa,gqa:1+swa:256`).
    #[arg(long, value_delimiter = ',', default_value = "native,mha,mqa", value_parser = variant_text)]
    pub variants: Vec<String>,
    /// Model, tasks, limit, config, ... as for `eval`; --out is the comparison's folder (default
    /// results/runs/compare-<model>-<settings hash>/), each variant going to its variants/<name>/.
    #[command(flatten)]
    pub eval: RunOptions,
}

/// One attention variant to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// The canonical spec text (`gqa:2,swa:256`), as scores.csv's `attention` column has it.
    pub label: String,
    pub spec: AttentionSpec,
    /// Its folder name under variants/ (`gqa-2+swa-256`).
    pub dir_name: String,
}

/// One `--variants` entry, checked when the command line is read (`gqa:1+swa:256`).
fn variant_text(raw: &str) -> Result<String, String> {
    raw.replace('+', ",")
        .parse::<AttentionSpec>()
        .map(|_| raw.to_string())
        .map_err(|e| e.to_string())
}

/// Parses `--variants`; `+` joins parts of one variant. Duplicates are an error.
pub fn parse_variants(list: &[String]) -> anyhow::Result<Vec<Variant>> {
    let mut out: Vec<Variant> = Vec::new();
    for raw in list.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        let spec: AttentionSpec = raw
            .replace('+', ",")
            .parse()
            .with_context(|| format!("--variants: `{raw}`"))?;
        let label = spec.to_string();
        ensure!(
            out.iter().all(|v| v.label != label),
            "--variants: `{raw}` is listed twice (as `{label}`)"
        );
        let dir_name = label.replace(':', "-").replace(',', "+");
        out.push(Variant { label, spec, dir_name });
    }
    ensure!(!out.is_empty(), "--variants: no variants given");
    Ok(out)
}

/// What the KV cache of one variant holds per token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvShape {
    pub attention: ResolvedAttention,
    pub head_dim: usize,
}

impl KvShape {
    /// Bytes of one sequence's f32 cache after `tokens` tokens, as the model's cache holds them.
    pub fn bytes(&self, tokens: usize) -> u64 {
        self.attention.kv_bytes_per_row(self.head_dim, tokens, 4) as u64
    }

    /// The windows for a table: `—` (none), `W` (every layer), `W on k/L layers`.
    pub fn window_label(&self) -> String {
        let windowed: Vec<usize> = self.attention.windows.iter().flatten().copied().collect();
        match windowed.first() {
            None => "—".into(),
            Some(&w) if windowed.len() == self.attention.windows.len() && windowed.iter().all(|&x| x == w) => {
                w.to_string()
            }
            Some(&w) => format!("{w} on {}/{} layers", windowed.len(), self.attention.windows.len()),
        }
    }
}

/// A finished variant run, as the table needs it.
pub struct VariantRun {
    pub label: String,
    pub kv: KvShape,
    pub run: RunDir,
    /// run.json's `peak_rss_bytes`.
    pub peak_bytes: Option<u64>,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    if args.eval.attention.is_some() {
        bail!("compare runs the variants of --variants; --attention does not apply");
    }
    if args.eval.shard.is_some() {
        bail!("compare does not take --shard (run `eval --shard` per variant and merge instead)");
    }
    let variants = parse_variants(&args.variants)?;
    let mut base = RunOptions {
        out: None,
        ..args.eval.clone()
    }
    .resolve()?;
    let checkpoint = Checkpoint::open(base.model())?;
    let model_config = checkpoint.config();
    let shapes = variants
        .iter()
        .map(|v| {
            let resolved = v
                .spec
                .resolve(model_config)
                .with_context(|| format!("variant `{}` of {}", v.label, base.model().display()))?;
            Ok(KvShape {
                attention: resolved,
                head_dim: model_config.head_dim,
            })
        })
        .collect::<anyhow::Result<Vec<KvShape>>>()?;
    let out = args.eval.out.clone().unwrap_or_else(|| default_out(&base, &checkpoint));
    base.out = None;
    let mut runs = Vec::new();
    for (variant, kv) in variants.iter().zip(shapes) {
        let dir = out.join("variants").join(&variant.dir_name);
        let config = RunOptions {
            attention: Some(variant.spec),
            out: Some(dir.clone()),
            ..base.clone()
        };
        eprintln!("== variant {} → {}", variant.label, dir.display());
        run_child(&config, &dir, &variant.label)?;
        let run = RunDir::load(&dir)?;
        let peak_bytes = run
            .run
            .as_ref()
            .and_then(|r| r.get("peak_rss_bytes"))
            .and_then(Value::as_u64);
        runs.push(VariantRun {
            label: variant.label.clone(),
            kv,
            run,
            peak_bytes,
        });
    }
    let reference = runs.iter().position(|r| r.label == "native").unwrap_or(0);
    let registry = crate::plan::registry(&base)?;
    let group_members = |name: &str| registry.group_members(name);
    let rows = assemble(&runs, reference, &group_members)?;
    write_csv(&out.join("compare.csv"), &rows)?;
    let markdown = markdown(&base, &runs, reference, &rows, &|name| group_members(name).is_some());
    reports::run_dir::write_atomic(&out.join("compare.md"), markdown.as_bytes())?;
    reports::run_dir::write_atomic(&out.join("compare.svg"), svg(&runs, &rows).as_bytes())?;
    print!("{markdown}");
    println!(
        "\nwrote {}, compare.md and compare.svg",
        out.join("compare.csv").display()
    );
    Ok(())
}

/// results/runs/compare-<model>-<hash of the settings other than attention and out>.
fn default_out(base: &RunOptions, checkpoint: &Checkpoint) -> PathBuf {
    let settings = RunOptions {
        attention: None,
        out: None,
        config: None,
        ..base.clone()
    };
    let settings = serde_json::to_value(settings).expect("options are plain data");
    let digest = Sha256::digest(settings.to_string().as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    PathBuf::from("results/runs").join(format!("compare-{}-{hex}", checkpoint.folder_name()))
}

/// `harness eval --config DIR/config.json` in a child process.
fn run_child(config: &RunOptions, dir: &Path, label: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let config_path = dir.join("config.json");
    reports::run_dir::write_json(&config_path, &serde_json::to_value(config)?)?;
    let exe = std::env::current_exe().context("cannot locate the harness binary to run the variants")?;
    let status = Command::new(&exe)
        .arg("eval")
        .arg("--config")
        .arg(&config_path)
        .status()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    if !status.success() {
        bail!(
            "variant `{label}`: `harness eval --config {}` failed ({status}; its error is above)",
            config_path.display()
        );
    }
    Ok(())
}
