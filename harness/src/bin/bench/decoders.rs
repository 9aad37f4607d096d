//! `harness-bench decoders`: how fast each build of the stored-weight decoders (AVX-512, AVX2,
//! the portable block functions) turns each GGUF type into f32, on one thread, with the blocks
//! and their output in L1 so that the figure is the decoder's, not the memory's.

use std::time::Instant;

use clap::Args;
use model::load::quant::{GgmlType, decoder_builds, random_blocks};
use reports::run_record::Machine;

#[derive(Args)]
pub struct DecodersArgs {
    /// Values per decode call (a multiple of 256: whole blocks of every type).
    #[arg(long, default_value_t = 4096)]
    values: usize,
    /// Decode calls timed per figure (the best of 5 such runs is reported).
    #[arg(long, default_value_t = 4000)]
    calls: usize,
}

pub fn decoders(args: &DecodersArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.values > 0 && args.values.is_multiple_of(256) && args.calls > 0,
        "--values must be a positive multiple of 256 and --calls positive"
    );
    let builds = decoder_builds();
    println!("machine: {}; one thread", serde_json::to_string(&Machine::this())?);
    let names: Vec<&str> = builds.iter().map(|(name, _)| *name).collect();
    println!("| type | {} (G values/s) |", names.join(" | "));
    println!("|---|{}", "---|".repeat(builds.len()));
    for ty in GgmlType::dequantizable() {
        let bytes = random_blocks(ty, args.values);
        let mut out = vec![0.0f32; args.values];
        let rates: Vec<String> = builds
            .iter()
            .map(
                |(_, decode)| match best_seconds(args.calls, || decode(ty, &bytes, std::hint::black_box(&mut out))) {
                    Some(seconds) => format!("{:.2}", args.values as f64 * args.calls as f64 / seconds / 1e9),
                    None => "—".into(),
                },
            )
            .collect();
        println!("| {ty} | {} |", rates.join(" | "));
    }
    Ok(())
}

/// The fastest of 5 runs of `calls` calls, or `None` when `decode` has no decoder for the type.
fn best_seconds(calls: usize, mut decode: impl FnMut() -> bool) -> Option<f64> {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                if !std::hint::black_box(decode()) {
                    return None;
                }
            }
            Some(start.elapsed().as_secs_f64())
        })
        .collect::<Option<Vec<f64>>>()
        .map(|runs| runs.into_iter().fold(f64::INFINITY, f64::min))
}
