//! `harness`: evaluate Llama/Mistral-family checkpoints on benchmark suites.

mod cli;
mod logprobs;
mod scoring;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
