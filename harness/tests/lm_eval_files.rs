//! The lm-eval output files against real lm-eval 0.4.13 files (../shared/lm-eval-format): the
//! same sections, entries and sample fields, and — where our bundled data holds the same
//! document — the same doc, prompt and target hashes.

mod common;

use common::{gguf, root};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn reference(prefix: &str) -> PathBuf {
    let dir = root().join("../shared/lm-eval-format");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found.remove(0)
}

fn ours(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn export(run: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["export", "--format", "lm-eval"])
        .arg(run)
        .output()
        .unwrap()
}

/// The stderr of an export that must fail with exit code 1.
fn refused_export(run: &Path) -> String {
    let output = export(run);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn a_run_writes_lm_evals_files_field_for_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let status = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "eval",
            "--tasks",
            "piqa,gsm8k",
            "--limit",
            "2",
            "--max-gen-toks",
            "8",
            "--quiet",
            "--model",
        ])
        .arg(gguf())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    // Results: the sections lm-eval writes, and each task entry's fields.
    let results: Value = serde_json::from_str(&std::fs::read_to_string(ours(&out, "results_")).unwrap()).unwrap();
    let piqa_ref: Value =
        serde_json::from_str(&std::fs::read_to_string(reference("results_2026-11-29T08-01")).unwrap()).unwrap();
    let gsm_ref: Value =
        serde_json::from_str(&std::fs::read_to_string(reference("results_2026-11-29T08-20")).unwrap()).unwrap();
    for section in [
        "results",
        "group_subtasks",
        "configs",
        "versions",
        "n-shot",
        "higher_is_better",
        "n-samples",
        "config",
        "date",
        "max_length",
        "task_hashes",
        "model_name",
        "system_instruction",
        "chat_template",
        "total_evaluation_time_seconds",
    ] {
        assert!(piqa_ref.get(section).is_some(), "{section} is not in lm-eval's file");
        assert!(results.get(section).is_some(), "{section} missing");
    }
    assert_eq!(keys(&results["results"]["piqa"]), keys(&piqa_ref["results"]["piqa"]));
    assert_eq!(keys(&results["results"]["gsm8k"]), keys(&gsm_ref["results"]["gsm8k"]));
    assert_eq!(keys(&results["configs"]["gsm8k"]), keys(&gsm_ref["configs"]["gsm8k"]));
    assert_eq!(
        results["n-samples"]["piqa"],
        serde_json::json!({"original": 1838, "effective": 2})
    );
    assert_eq!(results["versions"]["gsm8k"], gsm_ref["versions"]["gsm8k"]);
    assert_eq!(
        results["higher_is_better"]["gsm8k"],
        gsm_ref["higher_is_better"]["gsm8k"]
    );

    // Samples: the same fields per line, one line per document and filter, and lm-eval's hashes
    // of the same document, prompt and target.
    let piqa = lines(&ours(&out, "samples_piqa_"));
    let piqa_lines = lines(&reference("samples_piqa_"));
    assert_eq!(piqa.len(), 2);
    assert_eq!(keys(&piqa[0]), keys(&piqa_lines[0]));
    for field in [
        "doc",
        "target",
        "arguments",
        "doc_hash",
        "prompt_hash",
        "target_hash",
        "filter",
        "metrics",
    ] {
        assert_eq!(piqa[0][field], piqa_lines[0][field], "piqa doc 0: {field}");
    }
    // Log-likelihoods as Python prints them, within the model's fidelity tolerance of lm-eval's.
    for (a, b) in piqa[0]["resps"]
        .as_array()
        .unwrap()
        .iter()
        .zip(piqa_lines[0]["resps"].as_array().unwrap())
    {
        let (a, b): (f64, f64) = (
            a[0][0].as_str().unwrap().parse().unwrap(),
            b[0][0].as_str().unwrap().parse().unwrap(),
        );
        assert!((a - b).abs() < 2e-3, "{a} vs {b}");
    }
    let gsm8k = lines(&ours(&out, "samples_gsm8k_"));
    let gsm_lines = lines(&reference("samples_gsm8k_"));
    let filters: Vec<(u64, &str)> = gsm8k
        .iter()
        .map(|l| (l["doc_id"].as_u64().unwrap(), l["filter"].as_str().unwrap()))
        .collect();
    assert_eq!(
        filters,
        [
            (0, "strict-match"),
            (1, "strict-match"),
            (0, "flexible-extract"),
            (1, "flexible-extract")
        ]
    );
    assert_eq!(keys(&gsm8k[0]), keys(&gsm_lines[0]));
    for field in [
        "doc",
        "target",
        "arguments",
        "doc_hash",
        "prompt_hash",
        "target_hash",
        "metrics",
    ] {
        assert_eq!(gsm8k[0][field], gsm_lines[0][field], "gsm8k doc 0: {field}");
    }
    assert_eq!(gsm8k[0]["resps"].as_array().unwrap().len(), 1);
    assert!(gsm8k[0]["resps"][0][0].is_string());

    // Export rewrites the same files from the run folder.
    let exported = export(&out);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(lines(&ours(&out, "samples_gsm8k_")), gsm8k);

    // scores.csv edited: its piqa acc no longer the journal's mean.
    let scores = out.join("scores.csv");
    let original = std::fs::read_to_string(&scores).unwrap();
    let piqa_acc = original
        .lines()
        .find(|l| l.contains(",piqa,") && l.contains(",acc,"))
        .unwrap();
    let fields: Vec<&str> = piqa_acc.split(',').collect();
    let edited_line = piqa_acc.replacen(&format!(",acc,{},", fields[7]), ",acc,NaN,", 1);
    std::fs::write(&scores, original.replace(piqa_acc, &edited_line)).unwrap();
    let stderr = refused_export(&out);
    assert!(
        stderr.contains("scores.csv") && stderr.contains("piqa acc is NaN"),
        "{stderr}"
    );
    std::fs::write(&scores, original).unwrap();

    // A journal that lost a record, holds one the run never had, or ends torn: an error naming
    // it, never files that claim two documents and show one.
    let journal = out.join("samples/piqa.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    let (first, second) = text.trim_end().split_once('\n').unwrap();
    let stray = second.replacen("\"doc_id\":1", "\"doc_id\":999", 1);
    for (broken, needle) in [
        (format!("{first}\n"), "over 2 items, but its 1 items in"),
        (
            format!("{first}\n{stray}\n"),
            "holds doc 999, which is not among this run's 2 items of piqa",
        ),
        (format!("{first}\n{}", &second[..20]), "line 2: not valid JSON"),
    ] {
        std::fs::write(&journal, &broken).unwrap();
        let stderr = refused_export(&out);
        assert!(stderr.contains("piqa.jsonl") && stderr.contains(needle), "{stderr}");
    }
}
