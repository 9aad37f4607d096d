//! The jobs through the binary: `eval --shard` + `merge` reproduce the unsharded run, `regress`
//! exits 0/1/2, and a tiny real `compare`.

mod common;

use common::gguf;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).output().unwrap()
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// scores.csv without the timing columns (seconds, items_per_s).
fn scores_without_timings(dir: &Path) -> Vec<String> {
    text(&dir.join("scores.csv"))
        .lines()
        .map(|l| l.split(',').take(9).collect::<Vec<_>>().join(","))
        .collect()
}

/// A samples file's items without their timing field.
fn samples_without_timings(path: &Path) -> Vec<Value> {
    text(path)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

#[test]
fn three_shards_merge_to_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = gguf();
    // Batch size 1: every row is computed alone, so shards and the whole run do the same float
    // operations per item and agree exactly.
    let eval = |out: &Path, shard: Option<&str>| {
        let mut args = vec![
            "eval",
            "--model",
            path_str(&model),
            "--tasks",
            "arc_easy",
            "--limit",
            "12",
            "--batch-size",
            "1",
            "--out",
            path_str(out),
        ];
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        let output = harness(&args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    let whole = dir.path().join("whole");
    eval(&whole, None);
    let shards: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("shard{i}"))).collect();
    for (i, shard) in shards.iter().enumerate() {
        eval(shard, Some(&format!("{i}/3")));
        // Shard i holds the doc_ids i, i + 3, ...: unsharded numbering.
        let ids: Vec<u64> = samples_without_timings(&shard.join("samples/arc_easy.jsonl"))
            .iter()
            .map(|s| s["doc_id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (i as u64..12).step_by(3).collect::<Vec<_>>());
        let identity: Value = serde_json::from_str(&text(&shard.join("identity.json"))).unwrap();
        assert_eq!(identity["shard"], json!(format!("{i}/3")));
    }
    let merged = dir.path().join("merged");
    let mut args = vec!["merge", "--out", path_str(&merged)];
    args.extend(shards.iter().rev().map(|p| path_str(p))); // any order
    let output = harness(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    assert_eq!(scores_without_timings(&merged), scores_without_timings(&whole));
    assert_eq!(
        samples_without_timings(&merged.join("samples/arc_easy.jsonl")),
        samples_without_timings(&whole.join("samples/arc_easy.jsonl"))
    );
    assert_eq!(text(&merged.join("identity.json")), text(&whole.join("identity.json")));

    // A shard missing: an error naming it, exit 1.
    let output = harness(&[
        "merge",
        "--out",
        path_str(&dir.path().join("bad")),
        path_str(&shards[0]),
        path_str(&shards[1]),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing shards: 2/3"));
}

/// A synthetic run folder: arc_easy with per-item `acc` (and `acc_norm` equal to it).
fn write_run(dir: &Path, acc: &[f64], identity: &Value, git: &str) {
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    let n = acc.len() as f64;
    let mean = acc.iter().sum::<f64>() / n;
    let stderr = (acc.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    let mut csv = String::from("model,attention,backend,task,shots,n,metric,value,stderr,seconds,items_per_s\n");
    for metric in ["acc", "acc_norm"] {
        csv.push_str(&format!(
            "m,native,flex,arc_easy,0,{},{metric},{mean},{stderr},2.0,{}\n",
            acc.len(),
            n / 2.0
        ));
    }
    std::fs::write(dir.join("scores.csv"), csv).unwrap();
    let lines: String = acc
        .iter()
        .enumerate()
        .map(|(doc, a)| format!("{}\n", json!({"doc_id": doc, "acc": a, "acc_norm": a, "seconds": 0.01})))
        .collect();
    std::fs::write(dir.join("samples/arc_easy.jsonl"), lines).unwrap();
    std::fs::write(dir.join("identity.json"), identity.to_string()).unwrap();
    let config =
        json!({"model": "m.gguf", "tasks": ["arc_easy"], "limit": identity["limit"], "batch_size": 8, "out": dir});
    std::fs::write(
        dir.join("run.json"),
        json!({"config": config, "harness_git": git}).to_string(),
    )
    .unwrap();
}

fn identity() -> Value {
    json!({"model": "m.gguf", "model_sha256": "aaa", "tasks": ["arc_easy"], "shots": null, "limit": 200,
           "attention": "native", "backend": "flex", "seed": 1234,
           "data_sha256": {"arc_easy/ARC-Easy-Test.jsonl.gz": "d1"}})
}

fn regress(baseline: &Path, run: &Path) -> (Option<i32>, String) {
    let output = harness(&["regress", "--baseline", path_str(baseline), "--run", path_str(run)]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), all)
}

#[test]
fn regress_exits_0_1_or_2() {
    let dir = tempfile::tempdir().unwrap();
    let acc: Vec<f64> = (0..200).map(|i| f64::from(i < 120)).collect();
    let baseline = dir.path().join("baseline");
    write_run(&baseline, &acc, &identity(), "unknown");

    // An identical copy: no regression (McNemar b = c = 0).
    let same = dir.path().join("same");
    write_run(&same, &acc, &identity(), "unknown");
    let (code, out) = regress(&baseline, &same);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("status: **no regression** (exit code 0)"), "{out}");
    assert!(same.join("regress.md").is_file() && same.join("regress.csv").is_file());

    // 20 items flipped from right to wrong: McNemar b = 20, c = 0, p = 2·0.5^20 ≈ 1.9e-6.
    let mut worse = acc.clone();
    worse[..20].iter_mut().for_each(|a| *a = 0.0);
    let flipped = dir.path().join("flipped");
    write_run(&flipped, &worse, &identity(), "unknown");
    let (code, out) = regress(&baseline, &flipped);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("McNemar (b=20, c=0)") && out.contains("1.9e-6") && out.contains("REGRESSION"),
        "{out}"
    );

    // Same clean commit on both sides: deterministic, so two flipped items are a mismatch.
    let pinned = dir.path().join("pinned");
    write_run(&pinned, &acc, &identity(), "abc123");
    let mut two = acc.clone();
    two[0] = 0.0;
    two[150] = 1.0;
    let two_flipped = dir.path().join("two-flipped");
    write_run(&two_flipped, &two, &identity(), "abc123");
    let (code, out) = regress(&pinned, &two_flipped);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("DETERMINISTIC MISMATCH") && out.contains("doc_ids 0, 150"),
        "{out}"
    );

    // Other data or another limit: cannot compare, with the reason.
    let mut other = identity();
    other["data_sha256"]["arc_easy/ARC-Easy-Test.jsonl.gz"] = json!("d2");
    other["limit"] = json!(100);
    let different = dir.path().join("different");
    write_run(&different, &acc, &other, "unknown");
    let (code, out) = regress(&baseline, &different);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("cannot compare"), "{out}");
    assert!(out.contains("data_sha256[arc_easy/ARC-Easy-Test.jsonl.gz]"), "{out}");
    assert!(out.contains("limit: baseline 200 ≠ candidate 100"), "{out}");

    // A baseline that is not a run folder: 2, naming the file.
    let (code, out) = regress(&dir.path().join("nowhere"), &same);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("nowhere/scores.csv: no such file"), "{out}");
}

#[test]
fn regress_runs_a_config_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.json");
    std::fs::write(
        &config,
        json!({"model": gguf(), "tasks": ["arc_easy"], "limit": 4}).to_string(),
    )
    .unwrap();
    let baseline = dir.path().join("baseline");
    let output = harness(&["eval", "--config", path_str(&config), "--out", path_str(&baseline)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let candidate = dir.path().join("candidate");
    let report = dir.path().join("report");
    let output = harness(&[
        "regress",
        "--baseline",
        path_str(&baseline),
        "--config",
        path_str(&config),
        "--out",
        path_str(&candidate),
        "--report",
        path_str(&report),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(candidate.join("scores.csv").is_file());
    assert_eq!(
        text(&report.join("regress.md")).trim_end(),
        stdout.split("\nwrote").next().unwrap().trim_end()
    );
    assert!(text(&report.join("regress.csv")).starts_with("task,metric,n_baseline"));

    // A candidate folder holding another harness build's run is refused unless --fresh.
    let run_json = candidate.join("run.json");
    let mut run: Value = serde_json::from_str(&text(&run_json)).unwrap();
    run["harness_git"] = json!("0000000-other");
    std::fs::write(&run_json, run.to_string()).unwrap();
    let args = |fresh: bool| {
        let mut a = vec![
            "regress",
            "--baseline",
            path_str(&baseline),
            "--config",
            path_str(&config),
            "--out",
            path_str(&candidate),
        ];
        if fresh {
            a.push("--fresh");
        }
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args(false))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("made by harness 0000000-other"));
    let output = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args(true))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compare_two_variants_on_four_items() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let model = gguf();
    let args = [
        "compare",
        "--model",
        path_str(&model),
        "--variants",
        "native,mqa",
        "--tasks",
        "arc_easy",
        "--limit",
        "4",
        "--out",
        path_str(&out),
    ];
    let output = harness(&args);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    for file in [
        "compare.csv",
        "compare.md",
        "compare.svg",
        "variants/native/scores.csv",
        "variants/mqa/config.json",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    let mut reader = csv::Reader::from_path(out.join("compare.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.join(","), harness::jobs::compare::CSV_HEADER);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 4); // 2 variants × acc, acc_norm
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows {
        let native = &row[column("attention")] == "native";
        assert_eq!(row[column("delta_vs_native")].is_empty(), native);
        assert_eq!(row[column("p_value")].is_empty(), native);
        // SmolLM2-135M: 30 layers, head_dim 64; 3 K/V heads native, 1 with MQA.
        let heads: u64 = if native { 3 } else { 1 };
        assert_eq!(
            row[column("kv_bytes_32k")].parse::<u64>().unwrap(),
            2 * 30 * heads * 32_768 * 64 * 4
        );
        let mean: f64 = row[column("mean_tokens")].parse().unwrap();
        assert!(mean > 10.0 && mean < 200.0, "{mean}");
        let kv: u64 = row[column("kv_bytes")].parse().unwrap();
        assert_eq!(kv, 2 * 30 * heads * mean.round() as u64 * 64 * 4);
        assert!(row[column("peak_bytes")].parse::<u64>().unwrap() > 100 << 20);
        assert!(row[column("tokens_per_s")].parse::<f64>().unwrap() > 0.0);
    }
    let markdown = text(&out.join("compare.md"));
    assert!(markdown.contains("| task | metric | n | native | mqa |"), "{markdown}");
    assert!(
        markdown.contains("KV cache @ 32k tokens") && markdown.contains("| native | 3 | — | 1.41 GiB |"),
        "{markdown}"
    );

    // Rerunning resumes: nothing is recomputed, the table is the same.
    let before = text(&out.join("compare.csv"));
    let output = harness(&args);
    assert!(output.status.success());
    let strip = |t: &str| -> Vec<String> {
        t.lines()
            .map(|l| l.split(',').take(9).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(strip(&text(&out.join("compare.csv"))), strip(&before));

    // A variant the model cannot take fails before anything runs.
    let output = harness(&[
        "compare",
        "--model",
        path_str(&gguf()),
        "--variants",
        "native,gqa:2",
        "--tasks",
        "arc_easy",
        "--out",
        path_str(&dir.path().join("x")),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("variant `gqa:2`") && stderr.contains("do not divide"),
        "{stderr}"
    );
    assert!(!dir.path().join("x").exists());
}

/// `table` passes `--dtype` and `--weights` on to its runs, as `eval` takes them (a 7B model
/// on a 24 GiB machine generates resident only in a half dtype).
#[test]
fn table_runs_with_the_given_dtype_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("table");
    let output = harness(&[
        "table",
        "--paper",
        "mistral-7b",
        "--model",
        path_str(&gguf()),
        "--tasks",
        "arc_easy",
        "--limit",
        "2",
        "--dtype",
        "f16",
        "--weights",
        "stream",
        "--quiet",
        "--out",
        path_str(&out),
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let identity: Value = serde_json::from_str(&text(&out.join("runs/0shot/identity.json"))).unwrap();
    assert_eq!(identity["dtype"], "f16", "{identity}");
    let run: Value = serde_json::from_str(&text(&out.join("runs/0shot/run.json"))).unwrap();
    assert_eq!(run["config"]["weights"], "stream", "{run}");
    assert!(run["weights"].as_str().unwrap().contains("streamed"), "{run}");
}

/// `--weights direct` sums decode steps in another order, so it is part of a run's identity:
/// recorded in identity.json, and a resume of that folder with the materialized weights is
/// refused, naming it, instead of mixing the two in one result.
#[test]
fn direct_weights_are_part_of_the_run_identity() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let eval = |weights: &str| {
        harness(&[
            "eval",
            "--model",
            path_str(&gguf()),
            "--tasks",
            "gsm8k",
            "--limit",
            "1",
            "--max-gen-toks",
            "4",
            "--weights",
            weights,
            "--quiet",
            "--out",
            path_str(&out),
        ])
    };
    let output = eval("direct");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let identity: Value = serde_json::from_str(&text(&out.join("identity.json"))).unwrap();
    assert_eq!(identity["direct_weights"], true, "{identity}");
    let output = eval("load");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("direct_weights"), "{stderr}");
}
