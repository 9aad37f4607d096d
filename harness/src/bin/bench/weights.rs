//! Real-size checkpoints and what they cost: `checkpoint` writes a randomly initialised model of
//! a named shape (HF bf16 folder, GGUF Q8_0 / Q4_K); `score` loads a checkpoint with a chosen
//! dtype and weights policy and times loading and scoring passes, with the process's peak RSS.
//!
//!     harness-bench checkpoint --shape mistral-7b --out /var/tmp/ckpt/mistral-7b --formats hf,q8_0,q4_k
//!     harness-bench score --model /var/tmp/ckpt/mistral-7b/hf --weights stream --batch 1 --seq 64

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use model::backend::BackendKind;
use model::load::memory::gib;
use model::load::quant::GgmlType;
use model::synthetic::{DEFAULT_SHARD_BYTES, SyntheticShape, write_gguf, write_hf_folder};
use model::{AttentionSpec, ComputeDtype, LoadOptions, StepInput, TokenQuery, WeightsPolicy};
use reports::run_record::{Machine, peak_rss_bytes};

#[derive(Args)]
pub struct CheckpointArgs {
    /// mistral-7b, llama2-7b, llama-0.8b or small.
    #[arg(long)]
    shape: SyntheticShape,
    /// Folder to write into (never the repository: 7B files are 4–15 GB).
    #[arg(long)]
    out: PathBuf,
    /// Any of hf (bf16 safetensors folder), q8_0, q4_k, bf16 (GGUF).
    #[arg(long, value_delimiter = ',', default_value = "hf,q8_0,q4_k")]
    formats: Vec<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = DEFAULT_SHARD_BYTES)]
    shard_bytes: u64,
}

pub fn checkpoint(args: &CheckpointArgs) -> anyhow::Result<()> {
    let config = args.shape.config();
    for format in &args.formats {
        let start = Instant::now();
        let written: Vec<PathBuf> = match format.as_str() {
            "hf" => write_hf_folder(&config, args.seed, &args.out.join("hf"), args.shard_bytes)?,
            other => {
                let ty = match other {
                    "q8_0" => GgmlType::Q8_0,
                    "q4_k" => GgmlType::Q4_K,
                    "bf16" => GgmlType::BF16,
                    _ => anyhow::bail!("unknown format `{other}` (expected hf, q8_0, q4_k or bf16)"),
                };
                let path = args.out.join(format!("{}.{ty}.gguf", args.shape));
                std::fs::create_dir_all(&args.out)?;
                write_gguf(&config, args.seed, &path, ty)?;
                vec![path]
            }
        };
        let bytes: u64 = written.iter().map(|p| p.metadata().map_or(0, |m| m.len())).sum();
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "{format}: {} files, {} in {seconds:.1} s ({:.0} MB/s) under {}",
            written.len(),
            gib(bytes),
            bytes as f64 / 1e6 / seconds,
            args.out.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct ScoreArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value = "auto")]
    dtype: ComputeDtype,
    #[arg(long, default_value = "auto")]
    weights: WeightsPolicy,
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    #[arg(long, default_value_t = 1, value_parser = crate::at_least(1))]
    batch: usize,
    /// Tokens per row, every position after the first scored.
    #[arg(long, default_value_t = 64, value_parser = crate::at_least(2))]
    seq: usize,
    /// Timed scoring passes after one warm-up pass (0: time loading only).
    #[arg(long, default_value_t = 1)]
    runs: usize,
}

/// Loads `--model`, then scores every position of a `batch` × `seq` batch `runs` times (what
/// `eval` does per batch: the hidden states, then the LM head on the scored positions only).
pub fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let device = args.backend.device()?;
    let options = LoadOptions::new(args.dtype, args.weights, args.backend)?;
    let checkpoint = model::Checkpoint::open(&args.model)?;
    crate::within_context(args.seq, "--seq", checkpoint.config())?;
    let start = Instant::now();
    let loaded = checkpoint.load_with(&AttentionSpec::default(), &device, &options)?;
    let load_s = start.elapsed().as_secs_f64();
    let stored = loaded.memory.stored_bytes;
    println!(
        "machine: {}; backend: {}; model: {}",
        serde_json::to_string(&Machine::this())?,
        args.backend,
        args.model.display()
    );
    println!("{}", loaded.memory);
    println!(
        "load: {load_s:.2} s ({:.0} MB/s of checkpoint files); peak RSS after load {}",
        stored as f64 / 1e6 / load_s,
        gib(peak_rss_bytes().unwrap_or(0))
    );
    if args.runs == 0 {
        return Ok(());
    }
    let decoder = &loaded.decoder;
    let vocab = decoder.config.vocab_size;
    let rows: Vec<Vec<u32>> = (0..args.batch)
        .map(|r| {
            (0..args.seq)
                .map(|t| ((r * 7919 + t * 104_729 + 1) % vocab) as u32)
                .collect()
        })
        .collect();
    let input = StepInput::right_padded(&rows, 0);
    let queries: Vec<TokenQuery> = (0..args.batch)
        .flat_map(|row| (0..args.seq - 1).map(move |pos| (row, pos)))
        .map(|(row, pos)| TokenQuery {
            row,
            pos,
            target: rows[row][pos + 1],
        })
        .collect();
    decoder.score_tokens(&input, &queries)?; // warm-up
    let start = Instant::now();
    for _ in 0..args.runs {
        decoder.score_tokens(&input, &queries)?;
    }
    let per_pass = start.elapsed().as_secs_f64() / args.runs as f64;
    println!(
        "score: batch {} × {} tokens: {per_pass:.2} s/pass, {:.1} tokens/s; peak RSS {}",
        args.batch,
        args.seq,
        (args.batch * args.seq) as f64 / per_pass,
        gib(peak_rss_bytes().unwrap_or(0))
    );
    Ok(())
}
