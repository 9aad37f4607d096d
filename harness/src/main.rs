//! `harness`: evaluate Llama/Mistral-family checkpoints on benchmark suites.

use clap::Parser;
use harness::cli;

fn main() {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}
