//! Bad input on the command line: each case a clear error naming the value (exit 1, or 2 for a
//! flag clap rejects), never a panic, a hang, a silent default, or a gate that passes.

mod common;

use common::{gguf, root};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().unwrap()
}

/// Runs `args`, expects failure with `code` and every needle in stderr, and no panic.
fn refused(args: &[&str], code: i32, needles: &[&str]) {
    let out = harness(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in {stderr}");
    }
}

#[test]
fn numeric_flags_are_range_checked_in_every_subcommand() {
    let model = gguf();
    let model = model.to_str().unwrap();
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", "--model", model, "--tasks", "arc_easy"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, code: i32, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, code, needles);
    };
    run(eval(&["--limit", "0"]), 1, &["--limit must be at least 1"]);
    run(eval(&["--batch-size", "0"]), 1, &["--batch-size"]);
    run(eval(&["--max-gen-toks", "0"]), 1, &["--max-gen-toks"]);
    run(eval(&["--temperature", "nan"]), 1, &["temperature"]);
    run(
        eval(&["--task-limits", "arc_easy=2,arc_easy=3"]),
        1,
        &["names arc_easy twice"],
    );
    run(eval(&["--attention", "gqa:x"]), 2, &["gqa", "native, mha, mqa"]);
    run(eval(&["--attention", "swa:99999999999999999999999"]), 2, &["too large"]);
    run(eval(&["--backend", "tpu"]), 2, &["flex, ndarray or wgpu"]);
    refused(&["eval", "--model", model, "--tasks", ""], 1, &["no tasks given"]);
    // table validates through the same path (it used to panic on a zero batch size), and checks
    // --temperature even when no maj@k column runs.
    let table = |extra: &[&str]| {
        let mut args = vec![
            "table",
            "--paper",
            "mistral-7b",
            "--model",
            model,
            "--tasks",
            "arc_easy",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    run(table(&["--batch-size", "0"]), 1, &["--batch-size"]);
    for temperature in ["nan", "0"] {
        run(
            table(&["--temperature", temperature]),
            1,
            &["--temperature", "finite temperature > 0"],
        );
    }
    // tasks: --show's own flags without it, and no items to show.
    for flag in [&["--n", "3"][..], &["--shots", "3"], &["--seed", "7"]] {
        let mut args = vec!["tasks"];
        args.extend_from_slice(flag);
        refused(&args, 2, &[flag[0], "--show"]);
    }
    refused(&["tasks", "--show", "arc_easy", "--n", "0"], 2, &["--n"]);
    // regress: --config's own flags beside --run would be accepted and ignored.
    for flag in [&["--fresh"][..], &["--out", "x"]] {
        let mut args = vec![
            "regress",
            "--baseline",
            "results/baselines/nightly-smollm2",
            "--run",
            "x",
        ];
        args.extend_from_slice(flag);
        refused(&args, 2, &[flag[0], "--run"]);
    }
    // regress: thresholds that would turn the gate off.
    for (flag, value) in [
        ("--alpha", "nan"),
        ("--alpha", "-0.1"),
        ("--alpha", "1"),
        ("--tolerance-points", "nan"),
    ] {
        refused(
            &[
                "regress",
                "--baseline",
                "results/baselines/nightly-smollm2",
                "--run",
                "x",
                flag,
                value,
            ],
            2,
            &[flag],
        );
    }
}

#[test]
fn a_device_file_as_model_is_refused_without_reading_it() {
    let start = Instant::now();
    refused(
        &["eval", "--model", "/dev/zero", "--tasks", "arc_easy", "--limit", "1"],
        1,
        &["/dev/zero"],
    );
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[test]
fn logprobs_past_the_context_warns_and_computes_as_transformers_does() {
    let tiny = root().join("../shared/fixtures/tiny/tiny-llama-gqa");
    let logprobs = |n: usize| {
        let ids: Vec<String> = (0..n).map(|i| (i % 50).to_string()).collect();
        let out = harness(&[
            "logprobs",
            "--model",
            tiny.to_str().unwrap(),
            "--ids",
            &ids.join(","),
            "--json",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (json["positions"].as_array().unwrap().clone(), stderr)
    };
    let (past, warning) = logprobs(129);
    assert!(
        warning.contains("129 tokens, past the model's context of 128"),
        "{warning}"
    );
    assert_eq!(past.len(), 129);
    // Causal: the first 128 positions are those of the 128 tokens alone (to float noise: the
    // products are blocked by length).
    let (within, quiet) = logprobs(128);
    assert!(!quiet.contains("warning"), "{quiet}");
    for (i, (a, b)) in past.iter().zip(&within).enumerate().skip(1) {
        let (a, b) = (a["logprob"].as_f64().unwrap(), b["logprob"].as_f64().unwrap());
        assert!((a - b).abs() < 1e-5, "position {i}: {a} vs {b}");
    }
}

#[test]
fn a_run_that_failed_before_scoring_does_not_block_the_corrected_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let model = gguf();
    let args = |attention: &str| -> Vec<String> {
        [
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--tasks",
            "arc_easy",
            "--limit",
            "2",
            "--attention",
            attention,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    // SmolLM2 has 9 query heads: 2 groups do not divide them, which only the model can tell.
    let first = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args("gqa:2"))
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&first.stderr).contains("do not divide"));
    let second = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args("native"))
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(Path::new(&out).join("scores.csv").is_file());
}

#[test]
fn bad_configs_and_unfinished_shards_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let array = write("array.json", r#"["model"]"#);
    refused(
        &["eval", "--config", &array],
        1,
        &["array.json", "JSON object", "an array"],
    );
    let number = write("number.json", r#"{"model": "m.gguf", "tasks": 5}"#);
    refused(
        &["eval", "--config", &number],
        1,
        &["number.json", "list of task names"],
    );

    // A shard that has not finished (no scores.csv yet) is named as such.
    let identity = |shard: &str| {
        format!(
            r#"{{"model": "m", "model_sha256": "a", "tasks": ["arc_easy"], "shots": null, "limit": 4,
                "attention": "native", "backend": "flex", "seed": 1234, "data_sha256": {{}}, "shard": "{shard}"}}"#
        )
    };
    for (i, name) in ["shard0", "shard1"].iter().enumerate() {
        std::fs::create_dir_all(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("identity.json"), identity(&format!("{i}/2"))).unwrap();
    }
    let shard = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let out = shard("merged");
    refused(
        &["merge", "--out", &out, &shard("shard0"), &shard("shard1")],
        1,
        &["shard0", "shard 0/2", "did not finish"],
    );
}

#[test]
fn an_edited_journal_or_a_run_folder_without_identity_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let model = gguf();
    let args = [
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--tasks",
        "arc_easy",
        "--limit",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let first = harness(&args);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // A doc the run's items do not include (its identity fixes them) was written by hand.
    let journal = out.join("samples/arc_easy.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines[1]["doc_id"] = serde_json::json!(7);
    let edited: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&journal, edited).unwrap();
    refused(
        &args,
        1,
        &["arc_easy.jsonl", "holds doc 7, which is not among this run's 2 items"],
    );
    // The same doc twice.
    lines[1]["doc_id"] = lines[0]["doc_id"].clone();
    let edited: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&journal, edited).unwrap();
    refused(&args, 1, &["arc_easy.jsonl: line 2: doc 0 is recorded a second time"]);
    // Results without the identity that says whose they are are nobody's to resume.
    std::fs::remove_file(out.join("identity.json")).unwrap();
    refused(&args, 1, &["holds results", "no identity.json"]);
}

/// A column whose data cannot be read is `no data` in the written table, as a failed run's
/// columns are, and the job exits 1 naming the file: a nightly table that lost its data fails.
/// A column this harness cannot run as shipped (TriviaQA, not bundled) does not.
#[test]
fn a_table_whose_data_cannot_be_read_is_written_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("table"));
    std::fs::create_dir(&data).unwrap();
    let model = gguf();
    let args = |tasks: &str| {
        let words = [
            "table",
            "--paper",
            "mistral-7b",
            "--model",
            model.to_str().unwrap(),
            "--tasks",
            tasks,
        ];
        let mut args: Vec<String> = words.map(String::from).to_vec();
        for extra in [["--data-dir", data.to_str().unwrap()], ["--out", out.to_str().unwrap()]] {
            args.extend(extra.map(String::from));
        }
        args
    };
    let failed = args("hellaswag,triviaqa");
    let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
    let expected = data.join("hellaswag/hellaswag_val.jsonl.gz");
    refused(
        &failed,
        1,
        &["1 error(s)", &expected.display().to_string(), "not found"],
    );
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("- HellaSwag (`hellaswag`): no data: "), "{table}");
    assert!(
        table.contains("- TriviaQA (`triviaqa`): no data: data not bundled"),
        "{table}"
    );

    let output = harness(&args("triviaqa").iter().map(String::as_str).collect::<Vec<_>>());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}
