//! Time the sandbox adds per program: runs `pass` N times through it and `python3 -c pass`
//! directly N times, alternating (so a change of machine load hits both alike), and prints the
//! median and mean of each and the difference of the medians.
//!
//! `cargo run --release -p sandbox --example overhead -- [N]` (default N = 50).

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("the sandbox needs Linux");
}

#[cfg(target_os = "linux")]
use std::process::{Command, Stdio};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use sandbox::{Limits, Sandbox};

#[cfg(target_os = "linux")]
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

    let (mut sandboxed, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let run = sandbox.run_python("pass")?;
        sandboxed.push(started.elapsed());
        if !run.passed() {
            return Err(format!("`pass` did not pass: {run:?}").into());
        }
        let started = Instant::now();
        let status = Command::new(sandbox.interpreter())
            .args(["-s", "-c", "pass"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        bare.push(started.elapsed());
        if !status.success() {
            return Err(format!("bare python3 failed: {status}").into());
        }
    }

    let (bare_median, bare_mean) = summary(&mut bare);
    let (sandboxed_median, sandboxed_mean) = summary(&mut sandboxed);
    println!("runs: {runs}, interpreter: {}", sandbox.interpreter().display());
    println!("bare `python3 -c pass`:     {bare_median:7.2} ms median, {bare_mean:7.2} ms mean");
    println!("sandboxed `pass`:           {sandboxed_median:7.2} ms median, {sandboxed_mean:7.2} ms mean");
    println!(
        "sandbox overhead:           {:7.2} ms per program (difference of the medians)",
        sandboxed_median - bare_median
    );
    Ok(())
}

/// Median and mean in milliseconds.
#[cfg(target_os = "linux")]
fn summary(times: &mut [Duration]) -> (f64, f64) {
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|&d| ms(d)).sum::<f64>() / times.len() as f64;
    (ms(times[times.len() / 2]), mean)
}
