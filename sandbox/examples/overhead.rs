//! Time the sandbox adds per program: runs `pass` N times through it, and `python3 -c pass`
//! directly N times, and prints the mean of each and the difference.
//!
//! `cargo run --release -p sandbox --example overhead -- [N]` (default N = 50).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Limits, Sandbox};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: u32 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|_| format!("N must be a positive integer, got {arg:?}"))?,
        None => 50,
    };
    if runs == 0 {
        return Err("N must be at least 1".into());
    }
    let sandbox = Sandbox::new(Limits::default())?;
    for warning in sandbox.capabilities().warnings() {
        eprintln!("warning: {warning}");
    }

    let started = Instant::now();
    for _ in 0..runs {
        let run = sandbox.run_python("pass")?;
        if !run.passed() {
            return Err(format!("`pass` did not pass: {run:?}").into());
        }
    }
    let sandboxed = started.elapsed() / runs;

    let started = Instant::now();
    for _ in 0..runs {
        let status = Command::new(sandbox.interpreter())
            .args(["-s", "-c", "pass"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("bare python3 failed: {status}").into());
        }
    }
    let bare = started.elapsed() / runs;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("runs: {runs}, interpreter: {}", sandbox.interpreter().display());
    println!("bare `python3 -c pass`:     {:7.2} ms mean", ms(bare));
    println!("sandboxed `pass`:           {:7.2} ms mean", ms(sandboxed));
    println!(
        "sandbox overhead:           {:7.2} ms per program",
        ms(sandboxed) - ms(bare)
    );
    Ok(())
}
