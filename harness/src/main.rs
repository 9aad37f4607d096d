//! `harness`: evaluate Llama/Mistral-family checkpoints on benchmark suites.

use clap::Parser;
use harness::cli;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
