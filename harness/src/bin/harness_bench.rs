//! Harness benchmarks (throughput belongs here, never in tests).
//!
//! `decode`: KV-cached generation tokens/s at several batch sizes, prefill timed apart.
//! `long-context`: chunked pre-fill of one long sequence, full attention against a sliding
//! window (rolling-buffer cache), and KV-cache sizes (Mistral 7B paper, §2).
//! `checkpoint`, `score`: real-size random checkpoints, and loading and scoring them (see
//! bench/weights.rs).
//! `decoders`: how fast each build of the stored-weight decoders decodes each GGUF type.
//!
//!     cargo run --release -p harness --bin harness-bench -- decode --batch-sizes 1,16
//!     cargo run --release -p harness --bin harness-bench -- long-context --tokens 8192 --window 2048

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use harness::lm::{Lm, TokenGenRequest};
use harness::sampling::Sampling;
use model::backend::BackendKind;
use model::cache::kv_cache_bytes;
use model::load::weights::random_decoder;
use model::{AttentionSpec, ComputeDtype, Decoder, LoadOptions, ModelConfig, StepInput, WeightsPolicy, load_model};
use reports::run_record::Machine;

#[path = "bench/decoders.rs"]
mod decoders;
#[path = "bench/weights.rs"]
mod weights;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Decode tokens/s: a batch of identical prompts (pre-filled once, shared by every row),
    /// each row generating up to `new_tokens`.
    Decode {
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1,16", value_parser = at_least(1))]
        batch_sizes: Vec<usize>,
        #[arg(long, default_value_t = 128, value_parser = at_least(1))]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128, value_parser = at_least(1))]
        new_tokens: usize,
        #[arg(long, default_value = "flex")]
        backend: BackendKind,
        #[arg(long, default_value = "native")]
        attention: AttentionSpec,
        /// Compute precision, as `eval --dtype`.
        #[arg(long, default_value = "auto")]
        dtype: ComputeDtype,
        /// Weights as `eval --weights` (a 7B model decodes fastest with `direct`).
        #[arg(long, default_value = "auto")]
        weights: WeightsPolicy,
    },
    /// Chunked pre-fill of one long sequence through the KV cache, full attention against a
    /// sliding window W (rolling buffer), and KV-cache bytes, full against W.
    LongContext {
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: PathBuf,
        /// Random weights of this shape instead of `--model` (no file needed).
        #[arg(long)]
        synthetic: Option<Shape>,
        #[arg(long, default_value_t = 16384)]
        tokens: usize,
        /// The sliding window W [default: tokens/4, i.e. 4096 at 16384 tokens as in the paper].
        #[arg(long)]
        window: Option<usize>,
        /// Tokens per pre-fill step.
        #[arg(long, default_value_t = 512)]
        chunk: usize,
        #[arg(long, default_value = "flex")]
        backend: BackendKind,
    },
    /// Write a randomly initialised checkpoint of a named shape (HF bf16 folder, GGUF Q8_0/Q4_K).
    Checkpoint(weights::CheckpointArgs),
    /// Load a checkpoint (timed, with peak RSS) and time scoring passes over it.
    Score(weights::ScoreArgs),
    /// Decoding rate of each stored type by each decoder build (AVX-512, AVX2, portable).
    Decoders(decoders::DecodersArgs),
}

/// Model shapes for `--synthetic`.
#[derive(Clone, Copy, ValueEnum)]
enum Shape {
    /// SmolLM2-135M: 30 layers, 9 query / 3 KV heads of 64, hidden 576.
    Smollm2,
    /// Mistral-like, smaller: 8 layers, 8 query / 2 KV heads of 128 (4 query heads per KV head,
    /// as Mistral 7B), hidden 1024.
    MistralMini,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Smollm2 => "smollm2",
            Shape::MistralMini => "mistral-mini",
        }
    }

    fn config(self) -> ModelConfig {
        let (model_type, vocab, hidden, inter, layers, heads, kv_heads, head_dim, theta) = match self {
            Shape::Smollm2 => ("llama", 49_152, 576, 1536, 30, 9, 3, 64, 100_000.0),
            Shape::MistralMini => ("mistral", 32_000, 1024, 3584, 8, 8, 2, 128, 1_000_000.0),
        };
        ModelConfig {
            model_type: model_type.into(),
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: inter,
            num_layers: layers,
            num_heads: heads,
            num_kv_heads: kv_heads,
            head_dim,
            rms_norm_eps: 1e-5,
            rope_theta: theta,
            rope_scaling: model::rope::RopeScaling::None,
            max_position_embeddings: 32_768,
            tie_word_embeddings: true,
            sliding_window: None,
            bos_token_id: None,
            eos_token_ids: vec![],
        }
    }
}

/// A count flag's parser: a whole number of at least `least`.
pub fn at_least(least: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<usize>() {
        Ok(n) if n >= least => Ok(n),
        _ => Err(format!("expected a whole number of at least {least}")),
    }
}

/// Work that the model's context cannot hold is refused before loading it.
pub fn within_context(tokens: usize, what: &str, config: &ModelConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        tokens <= config.max_position_embeddings,
        "{what}: {tokens} tokens, more than the model's context of {}",
        config.max_position_embeddings
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Decode {
            model,
            batch_sizes,
            prompt_tokens,
            new_tokens,
            backend,
            attention,
            dtype,
            weights,
        } => {
            let options = LoadOptions::new(dtype, weights, backend)?;
            decode(
                &model,
                &batch_sizes,
                prompt_tokens,
                new_tokens,
                backend,
                &attention,
                &options,
            )
        }
        Bench::LongContext {
            model,
            synthetic,
            tokens,
            window,
            chunk,
            backend,
        } => {
            let window = window.unwrap_or(tokens / 4);
            anyhow::ensure!(
                tokens > 0 && chunk > 0 && window > 0,
                "--tokens, --chunk and --window must be positive"
            );
            long_context(&model, synthetic, tokens, window, chunk, backend)
        }
        Bench::Checkpoint(args) => weights::checkpoint(&args),
        Bench::Score(args) => weights::score(&args),
        Bench::Decoders(args) => decoders::decoders(&args),
    }
}

fn decode(
    model: &Path,
    batch_sizes: &[usize],
    prompt_tokens: usize,
    new_tokens: usize,
    backend: BackendKind,
    attention: &AttentionSpec,
    options: &LoadOptions,
) -> anyhow::Result<()> {
    let checkpoint = model::Checkpoint::open(model)?;
    within_context(
        prompt_tokens + new_tokens,
        "--prompt-tokens + --new-tokens",
        checkpoint.config(),
    )?;
    let loaded = checkpoint.load_with(attention, &backend.device()?, options)?;
    let tokenizer = loaded
        .tokenizer
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the model has no tokenizer"))?;
    println!(
        "machine: {}; backend: {backend}; model: {}",
        serde_json::to_string(&Machine::this())?,
        model.display()
    );
    println!("| batch | prompt tokens | new tokens/row | prefill s | decode s | decode tokens/s |");
    println!("|---|---|---|---|---|---|");
    let text = "The history of the city begins in the early middle ages, when traders settled on the river. ";
    let mut prompt = tokenizer.encode(&text.repeat(prompt_tokens / 8 + 1), false)?;
    prompt.truncate(prompt_tokens);
    for &batch in batch_sizes {
        // A high temperature keeps rows from ending early on EOS; the table reports what ran.
        let requests = |max_new_tokens: usize| -> Vec<TokenGenRequest> {
            (0..batch)
                .map(|i| TokenGenRequest {
                    prompt: prompt.clone(),
                    truncated: false,
                    until: vec![],
                    max_new_tokens,
                    sampling: Sampling {
                        temperature: 5.0,
                        top_k: 0,
                        top_p: 1.0,
                    },
                    seed: i as u64,
                })
                .collect()
        };
        // A fresh engine per timed call: an engine keeps the KV of a prefix its rows share for
        // later calls, which would turn the timed pre-fill into a cache hit.
        let fresh = || Lm::new(&loaded.decoder, tokenizer, batch);
        fresh()?.generate_tokens(&requests(1))?; // warm-up
        let start = Instant::now();
        fresh()?.generate_tokens(&requests(1))?;
        let prefill = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let out = fresh()?.generate_tokens(&requests(new_tokens))?;
        let decode = (start.elapsed().as_secs_f64() - prefill).max(1e-9);
        let generated: usize = out.iter().map(|g| g.ids.len()).sum();
        println!(
            "| {batch} | {prompt_tokens} | {:.1} | {prefill:.3} | {decode:.3} | {:.1} |",
            generated as f64 / batch as f64,
            (generated - batch) as f64 / decode
        );
    }
    Ok(())
}

/// One pre-fill of `ids` in chunks through a fresh cache: (total s, last chunk s, cache bytes).
fn chunked_prefill(decoder: &Decoder, ids: &[u32], chunk: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut cache = decoder.new_cache(1);
    let (start, mut last) = (Instant::now(), 0.0);
    for (i, part) in ids.chunks(chunk).enumerate() {
        let step = Instant::now();
        let logits = decoder.last_logits(&StepInput::single(part, i * chunk), Some(&mut cache))?;
        // Reading the logits back waits for the device, so each chunk is timed in full.
        logits
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading logits back: {e:?}"))?;
        last = step.elapsed().as_secs_f64();
    }
    Ok((start.elapsed().as_secs_f64(), last, cache.bytes()))
}

fn long_context(
    model: &Path,
    synthetic: Option<Shape>,
    tokens: usize,
    window: usize,
    chunk: usize,
    backend: BackendKind,
) -> anyhow::Result<()> {
    let device = backend.device()?;
    let load = |spec: &str| -> anyhow::Result<Decoder> {
        let spec: AttentionSpec = spec.parse()?;
        Ok(match synthetic {
            Some(shape) => random_decoder(&shape.config(), &spec, &device, 0)?,
            None => {
                load_model(model, &spec, &device)
                    .with_context(|| format!("loading {}", model.display()))?
                    .decoder
            }
        })
    };
    let source = match synthetic {
        Some(shape) => format!("random weights, {} shape", shape.name()),
        None => model.display().to_string(),
    };
    println!(
        "machine: {}; backend: {backend}; model: {source}",
        serde_json::to_string(&Machine::this())?
    );
    println!(
        "pre-fill of {tokens} tokens in chunks of {chunk} through the KV cache (LM head on the last position only)\n"
    );
    println!("| attention | pre-fill s | tokens/s | last chunk s | KV cache after pre-fill | formula |");
    println!("|---|---|---|---|---|---|");
    let mut runs = Vec::new();
    let mut dims_of_model = None;
    for (name, w) in [("full".to_string(), None), (format!("swa:{window}"), Some(window))] {
        let decoder = load(&name)?;
        let vocab = decoder.config.vocab_size;
        let ids: Vec<u32> = (0..tokens).map(|t| ((t * 104_729 + 7919) % vocab) as u32).collect();
        chunked_prefill(&decoder, &ids[..chunk.min(tokens)], chunk)?; // warm-up
        let (total, last, measured) = chunked_prefill(&decoder, &ids, chunk)?;
        let dims = (
            decoder.blocks.len(),
            decoder.attention.kv_heads,
            decoder.config.head_dim,
        );
        let value_bytes = model::precision::dtype_bytes(decoder.dtype) as usize;
        let formula = kv_cache_bytes(dims.0, dims.1, dims.2, 1, tokens, w, value_bytes);
        println!(
            "| {name} | {total:.2} | {:.0} | {last:.3} | {} | {} |",
            tokens as f64 / total,
            size(measured),
            size(formula)
        );
        anyhow::ensure!(
            measured == formula,
            "{name}: KvCache::bytes() {measured} ≠ formula {formula}"
        );
        dims_of_model = Some((dims, value_bytes));
        runs.push((total, last, measured));
    }
    let ((full, full_last, full_bytes), (swa, swa_last, swa_bytes)) = (runs[0], runs[1]);
    println!(
        "| full/swa | {:.2}× | | {:.2}× | {:.1}× | |\n",
        full / swa,
        full_last / swa_last,
        full_bytes as f64 / swa_bytes as f64
    );

    let (dims, value_bytes) = dims_of_model.context("no run")?;
    kv_shape_table(dims, value_bytes, tokens, window);
    Ok(())
}

/// The KV cache of this model and of Mistral 7B, full and windowed, from the formula that
/// `long_context` checked against the cache's own count.
fn kv_shape_table(
    (layers, kv_heads, head_dim): (usize, usize, usize),
    value_bytes: usize,
    tokens: usize,
    window: usize,
) {
    let this = format!("this model ({layers} layers, {kv_heads} KV heads × {head_dim})");
    let mistral = "Mistral 7B (32 layers, 8 KV heads × 128)";
    let mut lengths = vec![tokens, 32_768];
    lengths.dedup();
    println!("| KV cache shape | values | tokens | window | full | windowed | full/windowed |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows: Vec<_> = lengths
        .iter()
        .map(|&n| (this.as_str(), (layers, kv_heads, head_dim), value_bytes, n, window))
        .collect();
    for value in [2, 4] {
        rows.extend(lengths.iter().map(|&n| (mistral, (32, 8, 128), value, n, 4096)));
    }
    for (label, (l, h, d), value, n, w) in rows {
        let full = kv_cache_bytes(l, h, d, 1, n, None, value);
        let windowed = kv_cache_bytes(l, h, d, 1, n, Some(w), value);
        println!(
            "| {label} | f{} | {n} | {w} | {} | {} | {:.1}× |",
            8 * value,
            size(full),
            size(windowed),
            full as f64 / windowed as f64
        );
    }
}

/// Bytes as MiB, or GiB from 1 GiB up.
fn size(bytes: usize) -> String {
    let mib = bytes as f64 / (1u64 << 20) as f64;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}
