//! The eval pipeline end to end on the default model: results independent of batch size,
//! and a run killed with SIGKILL resumes to the same CSV as an uninterrupted one.

mod common;

use common::gguf;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::eval::evaluate;
use harness::options::RunOptions;
use harness::run_task::generate::GenSample;
use harness::run_task::multiple_choice::McSample;

fn config(tasks: &[&str], limit: usize, batch_size: usize, out: &Path) -> RunOptions {
    RunOptions {
        model: Some(gguf()),
        tasks: Some(tasks.iter().map(|t| t.to_string()).collect()),
        limit: Some(limit),
        batch_size: Some(batch_size),
        out: Some(out.to_path_buf()),
        quiet: Some(true),
        ..Default::default()
    }
}

fn samples(out: &Path, task: &str) -> Vec<McSample> {
    let text = std::fs::read_to_string(out.join("samples").join(format!("{task}.jsonl"))).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// scores.csv without the timing columns (seconds, items_per_s), which differ between any two runs.
fn scores_without_timings(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    text.lines()
        .map(|l| l.split(',').take(9).collect::<Vec<_>>().join(","))
        .collect()
}

#[test]
fn results_do_not_depend_on_batch_size() {
    let tasks = ["arc_easy", "winogrande", "piqa"];
    let dir = tempfile::tempdir().unwrap();
    let mut reference: Option<Vec<Vec<McSample>>> = None;
    for batch_size in [1, 7, 32] {
        let out = dir.path().join(format!("b{batch_size}"));
        evaluate(&config(&tasks, 10, batch_size, &out)).unwrap();
        let all: Vec<Vec<McSample>> = tasks.iter().map(|t| samples(&out, t)).collect();
        if let Some(reference) = &reference {
            for (ours, theirs) in all.iter().flatten().zip(reference.iter().flatten()) {
                assert_eq!(ours.doc_id, theirs.doc_id);
                for (a, b) in ours.loglikelihoods.iter().zip(&theirs.loglikelihoods) {
                    assert!(
                        (a - b).abs() <= 1e-4,
                        "batch {batch_size}, doc {}: {a} vs {b}",
                        ours.doc_id
                    );
                }
                assert_eq!(
                    (ours.prediction, ours.prediction_norm),
                    (theirs.prediction, theirs.prediction_norm)
                );
            }
            assert_eq!(
                scores_without_timings(&out),
                scores_without_timings(&dir.path().join("b1"))
            );
        } else {
            reference = Some(all);
        }
    }
}

#[test]
fn a_killed_run_resumes_to_the_same_csv() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    let args = |out: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args([
            "eval",
            "--tasks",
            "arc_easy",
            "--limit",
            "24",
            "--batch-size",
            "1",
            "--model",
        ])
        .arg(gguf())
        .arg("--out")
        .arg(out);
        cmd
    };
    let status = args(&whole).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    // Start, wait for the journal to hold some items but not all, then SIGKILL.
    let mut child = args(&resumed).spawn().unwrap();
    let journal = resumed.join("samples/arc_easy.jsonl");
    let start = Instant::now();
    loop {
        let lines = std::fs::read_to_string(&journal)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 4 || start.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(partial > 0 && partial < 24, "killed with {partial} items journaled");

    let status = args(&resumed).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(scores_without_timings(&resumed), scores_without_timings(&whole));
    let strip = |s: Vec<McSample>| {
        s.into_iter()
            .map(|x| McSample { seconds: 0.0, ..x })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(samples(&resumed, "arc_easy")), strip(samples(&whole, "arc_easy")));

    // A different configuration in the same folder is refused, not mixed in.
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["eval", "--tasks", "arc_easy", "--limit", "5", "--model"])
        .arg(gguf())
        .arg("--out")
        .arg(&resumed)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("different run"));
}

#[test]
fn generation_resumes_after_a_kill_and_does_not_depend_on_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, resumed) = (dir.path().join("whole"), dir.path().join("resumed"));
    let args = |out: &Path, batch: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
        cmd.args([
            "eval",
            "--tasks",
            "gsm8k",
            "--limit",
            "6",
            "--max-gen-toks",
            "40",
            "--batch-size",
            batch,
        ])
        .arg("--model")
        .arg(gguf())
        .arg("--out")
        .arg(out);
        cmd
    };
    let status = args(&whole, "6").output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    // Batch 1 journals every 2 items: kill once some are written.
    let mut child = args(&resumed, "1").spawn().unwrap();
    let journal = resumed.join("samples/gsm8k.jsonl");
    let start = Instant::now();
    while std::fs::read_to_string(&journal)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 2
        && start.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(partial > 0 && partial < 6, "killed with {partial} items journaled");
    let status = args(&resumed, "1").output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let read = |out: &Path| -> Vec<GenSample> {
        let text = std::fs::read_to_string(out.join("samples/gsm8k.jsonl")).unwrap();
        text.lines()
            .map(|l| GenSample {
                seconds: 0.0,
                ..serde_json::from_str(l).unwrap()
            })
            .collect()
    };
    let (a, b) = (read(&whole), read(&resumed));
    assert_eq!(a.len(), 6);
    assert_eq!(
        a, b,
        "greedy generations differ between batch 6 and a resumed batch-1 run"
    );
    assert!(
        a.iter()
            .all(|s| s.generated_tokens[0] <= 40 && s.prompt.starts_with("Question:"))
    );
    assert!(
        a.iter()
            .all(|s| s.scores.contains_key("exact_match") && s.scores.contains_key("exact_match_flexible"))
    );
    assert_eq!(scores_without_timings(&resumed), scores_without_timings(&whole));
}
