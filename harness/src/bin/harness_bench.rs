//! Harness benchmarks (throughput belongs here, never in tests).
//!
//! `decode`: KV-cached generation tokens/s at several batch sizes, prefill timed apart.
//!
//!     cargo run --release -p harness --bin harness-bench -- decode --batch-sizes 1,16

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use harness::generate::{Generator, TokenGenRequest};
use harness::report::machine_info;
use harness::sampling::Sampling;
use model::backend::BackendKind;
use model::{AttentionSpec, load_model};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Decode tokens/s: a batch of identical prompts, each row generating up to `new_tokens`.
    Decode {
        #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
        model: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        batch_sizes: Vec<usize>,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        new_tokens: usize,
        #[arg(long, default_value = "flex")]
        backend: BackendKind,
        #[arg(long, default_value = "native")]
        attention: AttentionSpec,
    },
}

fn main() -> anyhow::Result<()> {
    let Bench::Decode {
        model,
        batch_sizes,
        prompt_tokens,
        new_tokens,
        backend,
        attention,
    } = Cli::parse().bench;
    let loaded = load_model(&model, &attention, &backend.device()?)?;
    let tokenizer = loaded
        .tokenizer
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the model has no tokenizer"))?;
    println!(
        "machine: {}; backend: {backend}; model: {}",
        machine_info(),
        model.display()
    );
    println!("| batch | prompt tokens | new tokens/row | prefill s | decode s | decode tokens/s |");
    println!("|---|---|---|---|---|---|");
    let text = "The history of the city begins in the early middle ages, when traders settled on the river. ";
    let mut prompt = tokenizer.encode(&text.repeat(prompt_tokens / 8 + 1), false)?;
    prompt.truncate(prompt_tokens);
    for &batch in &batch_sizes {
        // A high temperature keeps rows from ending early on EOS; the table reports what ran.
        let requests = |max_new_tokens: usize| -> Vec<TokenGenRequest> {
            (0..batch)
                .map(|i| TokenGenRequest {
                    prompt: prompt.clone(),
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
        let generator = Generator::new(&loaded.decoder, tokenizer, batch)?;
        generator.generate_tokens(&requests(1), |_, _| Ok(()))?; // warm-up
        let start = Instant::now();
        generator.generate_tokens(&requests(1), |_, _| Ok(()))?;
        let prefill = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let out = generator.generate_tokens(&requests(new_tokens), |_, _| Ok(()))?;
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
