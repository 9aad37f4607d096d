//! The command line: one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use model::backend::BackendKind;
use model::{AttentionSpec, ComputeDtype, LoadOptions, WeightsPolicy};

#[derive(Parser)]
#[command(
    name = "harness",
    version,
    about = "Evaluate Llama/Mistral-family checkpoints on benchmark suites"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Print per-token log-probabilities and top-k alternatives for a text or token ids.
    Logprobs(crate::logprobs::LogprobsArgs),
    /// Evaluate a model on tasks (multiple-choice and generative); writes scores.csv, samples/,
    /// run.json and lm-eval's results and samples files. A rerun of the same command resumes.
    Eval(crate::options::RunOptions),
    /// List every task, group and tag (with its source, shots and items), or print a task's
    /// first prompts (`--show NAME`) without loading a model.
    Tasks(crate::task_list::TasksArgs),
    /// Write an existing run's results in another tool's format (`--format lm-eval`).
    Export(crate::lm_eval_files::ExportArgs),
    /// Join the run folders of `eval --shard i/n` (all n of them) into one run folder.
    Merge(crate::jobs::merge::MergeArgs),
    /// Compare a run (or a run of a config, made first) with a baseline run; exit 0 no
    /// regression, 1 regression, 2 cannot compare.
    Regress(crate::jobs::regress::RegressArgs),
    /// Run several attention variants of one model on the same tasks; write compare.csv,
    /// compare.md and compare.svg (scores, paired tests against native, KV-cache bytes, memory).
    Compare(crate::jobs::compare::CompareArgs),
    /// Run a paper's benchmark suite with the paper's settings and print its table beside ours.
    Table(crate::jobs::table::TableArgs),
}

/// How to load and run a model: shared by every subcommand.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// An HF folder (config.json + safetensors [+ tokenizer.json]), a .gguf file, or a hub id
    /// org/name[@revision] found offline in the HuggingFace cache (HF_HUB_CACHE, HF_HOME/hub,
    /// XDG_CACHE_HOME/huggingface/hub or ~/.cache/huggingface/hub); an existing local path wins.
    #[arg(long)]
    pub model: PathBuf,
    /// Attention variant: native, mha, mqa, gqa:G, swa:W (swa:W@even|@odd|@A-B: those layers
    /// only), full (comma-combinable).
    #[arg(long, default_value = "native")]
    pub attention: AttentionSpec,
    /// Compute backend: flex (CPU, default), ndarray (CPU) or wgpu (GPU), as compiled in.
    #[arg(long, default_value = "flex")]
    pub backend: BackendKind,
    /// Compute precision: auto (f32 on CPU, f16 on a GPU), f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    pub dtype: ComputeDtype,
    /// Weights: auto (materialized at load when the model takes at most half the available
    /// memory, else streamed), load (materialized at load), stream (converted per layer) or
    /// direct (as stream, but decode steps multiply straight from the stored form; f32 on CPU).
    #[arg(long, default_value = "auto")]
    pub weights: WeightsPolicy,
}

impl ModelArgs {
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        Ok(LoadOptions::new(self.dtype, self.weights, self.backend)?)
    }
}

/// Runs a command; Ok holds the process exit code (regress: 0, 1 or 2; others 0).
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Logprobs(args) => crate::logprobs::run(&args).map(|()| 0),
        Command::Eval(flags) => crate::eval::run(&flags).map(|()| 0),
        Command::Tasks(args) => crate::task_list::run(&args).map(|()| 0),
        Command::Export(args) => crate::lm_eval_files::export(&args).map(|()| 0),
        Command::Merge(args) => crate::jobs::merge::run(&args).map(|()| 0),
        Command::Regress(args) => Ok(crate::jobs::regress::run(&args)),
        Command::Compare(args) => crate::jobs::compare::run(&args).map(|()| 0),
        Command::Table(args) => crate::jobs::table::run(&args).map(|()| 0),
    }
}
