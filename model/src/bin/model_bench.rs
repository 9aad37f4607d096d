//! Model benchmarks: forward throughput on a real checkpoint, and KV-cache memory for the
//! Mistral 7B shape, full versus rolling buffer.
//!
//! cargo run --release -p model --bin model-bench -- [--model PATH] [--batch 8] [--seq 128] [--runs 3] [--backend flex]

use std::path::PathBuf;
use std::time::Instant;

use model::backend::BackendKind;
use model::cache::kv_cache_bytes;
use model::{AttentionSpec, StepInput, load_model};

struct Options {
    model: PathBuf,
    batch: usize,
    seq: usize,
    runs: usize,
    backends: Vec<BackendKind>,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        model: PathBuf::from("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        batch: 8,
        seq: 128,
        runs: 3,
        backends: BackendKind::ALL
            .into_iter()
            .filter(|b| b.compiled() && *b != BackendKind::Wgpu)
            .collect(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).ok_or_else(|| format!("{} needs a value", pair[0]))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{}: `{value}` is not a number", pair[0]))
        };
        match pair[0].as_str() {
            "--model" => options.model = PathBuf::from(value),
            "--batch" => options.batch = number()?,
            "--seq" => options.seq = number()?,
            "--runs" => options.runs = number()?,
            "--backend" => options.backends = vec![value.parse().map_err(|e| format!("{e}"))?],
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    kv_memory_report();
    for backend in &options.backends {
        if let Err(e) = forward_throughput(&options, *backend) {
            eprintln!("error: {backend}: {e}");
            std::process::exit(1);
        }
    }
}

/// The Mistral 7B shape (32 layers, 8 KV heads of 128) at 32k tokens, f16 values as the paper counts.
fn kv_memory_report() {
    let (layers, kv_heads, head_dim, tokens) = (32, 8, 128, 32_768);
    let full = kv_cache_bytes(layers, kv_heads, head_dim, 1, tokens, None, 2);
    let rolling = kv_cache_bytes(layers, kv_heads, head_dim, 1, tokens, Some(4096), 2);
    let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
    println!(
        "kv-cache mistral-7b shape, 32768 tokens, f16: full {:.2} GiB, rolling W=4096 {:.2} GiB ({:.1}x less)",
        gib(full),
        gib(rolling),
        full as f64 / rolling as f64
    );
}

fn forward_throughput(options: &Options, backend: BackendKind) -> Result<(), Box<dyn std::error::Error>> {
    let device = backend.device()?;
    let loaded = load_model(&options.model, &AttentionSpec::default(), &device)?;
    let vocab = loaded.decoder.config.vocab_size as u32;
    let rows: Vec<Vec<u32>> = (0..options.batch)
        .map(|r| {
            (0..options.seq)
                .map(|t| ((r * 7919 + t * 104_729) as u32) % vocab)
                .collect()
        })
        .collect();
    let input = StepInput::right_padded(&rows, 0);
    // One warm-up pass, then timed passes (each one reads the logits back, as scoring does).
    let _ = loaded.decoder.forward(&input, None)?.into_data();
    let start = Instant::now();
    for _ in 0..options.runs {
        let _ = loaded.decoder.forward(&input, None)?.into_data();
    }
    let seconds = start.elapsed().as_secs_f64() / options.runs as f64;
    let tokens = (options.batch * options.seq) as f64;
    println!(
        "forward {} backend={backend} batch={} seq={}: {:.3} s/pass, {:.0} tokens/s ({} threads)",
        options.model.display(),
        options.batch,
        options.seq,
        seconds,
        tokens / seconds,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
