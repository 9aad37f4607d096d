//! The jobs' glue without a model: compare's table from synthetic run folders (deltas and paired
//! tests against hand-computed values, the native row blank) and table's plan for the Mistral 7B
//! paper (which settings each column uses, no-data and not-run columns).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness::jobs::compare::{CompareRow, KvShape, VariantRun, assemble, write_csv};
use harness::jobs::table::{How, Settings, failures, our_values, plan, render, runs};
use model::ResolvedAttention;
use reports::paper::PaperTable;
use reports::run_dir::RunDir;
use serde_json::json;

const HEADER: &str = "model,attention,backend,task,shots,n,metric,value,stderr,seconds,items_per_s\n";

/// A run folder: task `t1` (acc per item, with token counts), task `t2` (acc), and a group row
/// `grp` = t1 + t2 whose value is the pooled mean.
fn write_variant(dir: &Path, attention: &str, t1: &[f64], t2: &[f64]) -> RunDir {
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let all: Vec<f64> = t1.iter().chain(t2).copied().collect();
    let mut csv = String::from(HEADER);
    for (task, values) in [("t1", t1), ("t2", t2), ("grp", &all[..])] {
        let n = values.len();
        csv.push_str(&format!(
            "m,{attention},flex,{task},0,{n},acc,{},0.1,{},2.0\n",
            mean(values),
            n as f64 / 2.0
        ));
    }
    std::fs::write(dir.join("scores.csv"), csv).unwrap();
    // t1 items: a shared 10-token context and continuations of 2 and 4 tokens; 0.5 s each.
    let t1_lines: String = t1
        .iter()
        .enumerate()
        .map(|(doc, a)| {
            let item = json!({"doc_id": doc, "prompt": "p", "contexts": null, "choices": [" a", " b"],
                              "acc": a, "seconds": 0.5, "context_tokens": [10, 10], "continuation_tokens": [2, 4]});
            format!("{item}\n")
        })
        .collect();
    std::fs::write(dir.join("samples/t1.jsonl"), t1_lines).unwrap();
    let t2_lines: String = t2
        .iter()
        .enumerate()
        .map(|(doc, a)| {
            format!(
                "{}\n",
                json!({"doc_id": doc, "prompt": "q", "choices": [" x"], "acc": a, "seconds": 0.25})
            )
        })
        .collect();
    std::fs::write(dir.join("samples/t2.jsonl"), t2_lines).unwrap();
    std::fs::write(dir.join("run.json"), json!({"peak_rss_bytes": 1000}).to_string()).unwrap();
    RunDir::load(dir).unwrap()
}

fn members(group: &str) -> Option<Vec<String>> {
    (group == "grp").then(|| vec!["t1".to_string(), "t2".to_string()])
}

/// Two layers of 3 K/V heads of 4, full attention (or every layer windowed).
fn kv(kv_heads: usize, window: Option<usize>) -> KvShape {
    KvShape {
        attention: ResolvedAttention {
            num_heads: 6,
            native_kv_heads: 3,
            kv_heads,
            windows: vec![window; 2],
        },
        head_dim: 4,
    }
}

fn find<'a>(rows: &'a [CompareRow], variant: &str, task: &str) -> &'a CompareRow {
    rows.iter()
        .find(|r| r.variant == variant && r.score.task == task)
        .unwrap()
}

#[test]
fn compare_rows_carry_deltas_and_paired_tests_against_native() {
    let dir = tempfile::tempdir().unwrap();
    let native_t1 = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    // mqa: items 0, 1, 2 lost (b = 3), item 4 gained (c = 1).
    let mqa_t1 = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let t2 = [1.0, 0.0, 1.0, 0.0];
    // swa: t2 item 1 gained; the group pools 14 items: b = 0, c = 1.
    let swa_t2 = [1.0, 1.0, 1.0, 0.0];
    let runs = vec![
        VariantRun {
            label: "native".into(),
            kv: kv(3, None),
            run: write_variant(&dir.path().join("native"), "native", &native_t1, &t2),
            peak_bytes: Some(1000),
        },
        VariantRun {
            label: "mqa".into(),
            kv: kv(1, None),
            run: write_variant(&dir.path().join("mqa"), "mqa", &mqa_t1, &t2),
            peak_bytes: Some(900),
        },
        VariantRun {
            label: "swa:8".into(),
            kv: kv(3, Some(8)),
            run: write_variant(&dir.path().join("swa"), "swa:8", &native_t1, &swa_t2),
            peak_bytes: None,
        },
    ];
    let rows = assemble(&runs, 0, &members).unwrap();
    assert_eq!(rows.len(), 9);

    // The reference rows: no delta, no p-value.
    for task in ["t1", "t2", "grp"] {
        let native = find(&rows, "native", task);
        assert_eq!((native.delta_vs_native, native.p_value), (None, None));
    }
    // mqa t1: 0.3 − 0.5; McNemar b = 3, c = 1: p = 2·P[X ≤ 1], X ~ Bin(4, ½) = 2·5/16 = 0.625.
    let t1 = find(&rows, "mqa", "t1");
    assert!((t1.delta_vs_native.unwrap() + 0.2).abs() < 1e-12);
    assert!((t1.p_value.unwrap() - 0.625).abs() < 1e-12);
    assert_eq!(t1.test.as_deref(), Some("McNemar b=3 c=1"));
    // mqa t2: identical items: b = c = 0, p = 1.
    let t2_row = find(&rows, "mqa", "t2");
    assert_eq!((t2_row.delta_vs_native, t2_row.p_value), (Some(0.0), Some(1.0)));
    // swa group row: the members' 14 items pooled: b = 0, c = 1: p = 2·P[X ≤ 0], X ~ Bin(1, ½) = 1.
    let group = find(&rows, "swa:8", "grp");
    assert_eq!(group.test.as_deref(), Some("McNemar b=0 c=1"));
    assert_eq!(group.p_value, Some(1.0));
    assert!((group.delta_vs_native.unwrap() - (8.0 / 14.0 - 7.0 / 14.0)).abs() < 1e-12);

    // Tokens: t1 sequences of 12 and 14 tokens (mean 13); 10 + 2 + 4 = 16 tokens per 0.5 s item.
    assert_eq!(t1.mean_tokens, Some(13.0));
    assert_eq!(t1.tokens_per_s, Some(32.0));
    assert!(!t1.tokens_estimated);
    // KV bytes: 2 · layers · heads · tokens · head_dim · 4 bytes, a window capping the tokens.
    assert_eq!(t1.kv_bytes, Some(2 * 2 * 13 * 4 * 4));
    assert_eq!(t1.kv_bytes_32k, 2 * 2 * 32_768 * 4 * 4);
    assert_eq!(find(&rows, "swa:8", "t1").kv_bytes, Some(2 * 2 * 3 * 8 * 4 * 4));
    assert_eq!(find(&rows, "native", "t1").kv_bytes_32k, 2 * 2 * 3 * 32_768 * 4 * 4);
    // t2 has no token counts: estimated from text (1 + 1 chars → 1 + 1 tokens).
    assert!(find(&rows, "native", "t2").tokens_estimated);
    assert_eq!(t1.peak_bytes, Some(900));

    // The CSV: native rows blank in the last two columns.
    let path = dir.path().join("compare.csv");
    write_csv(&path, &rows).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], harness::jobs::compare::CSV_HEADER);
    assert!(lines[1].starts_with("m,native,flex,t1,0,10,acc,0.5,") && lines[1].ends_with(",1000,,"));
    assert!(lines[4].starts_with("m,mqa,flex,t1,0,10,acc,0.3,"), "{}", lines[4]);
    assert!(lines[4].ends_with(",900,-0.2,0.625"), "{}", lines[4]);
}

fn mistral() -> PaperTable {
    PaperTable::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs/papers/mistral-7b.json")).unwrap()
}

fn how<'a>(plans: &'a [(String, How)], task: &str) -> &'a How {
    &plans.iter().find(|(t, _)| t == task).unwrap().1
}

/// (run task, row task, metric, settings) of a planned column.
fn ran(plans: &[(String, How)], task: &str) -> (String, String, String, Settings) {
    match how(plans, task) {
        How::Run {
            run_task,
            row_task,
            metric,
            settings,
            ..
        } => (run_task.clone(), row_task.clone(), metric.clone(), *settings),
        other => panic!("{task}: {other:?}"),
    }
}

fn settings(shots: usize, samples: usize, temperature: f32, code: bool) -> Settings {
    Settings {
        shots,
        samples,
        temperature,
        code,
    }
}

#[test]
fn table_columns_use_the_papers_settings() {
    let table = mistral();
    let plans = plan(&table, None, false, 0.6, &tasks::Registry::new(&[]).unwrap()).unwrap();
    assert_eq!(plans.len(), table.columns.len());
    let s = |shots| settings(shots, 1, 0.0, false);
    assert_eq!(ran(&plans, "mmlu"), ("mmlu".into(), "mmlu".into(), "acc".into(), s(5)));
    assert_eq!(ran(&plans, "hellaswag").2, "acc_norm");
    assert_eq!(
        ran(&plans, "winogrande"),
        ("winogrande".into(), "winogrande".into(), "acc".into(), s(0))
    );
    assert_eq!(ran(&plans, "boolq").3, s(0));
    assert_eq!(
        ran(&plans, "bbh"),
        ("bbh".into(), "bbh".into(), "exact_match".into(), s(3))
    );
    assert_eq!(ran(&plans, "humaneval").2, "pass@1");
    assert_eq!(ran(&plans, "humaneval").3, settings(0, 1, 0.0, true));
    assert_eq!(ran(&plans, "mbpp").3, settings(3, 1, 0.0, true));
    // GSM8K 8-shot maj@8: gsm8k_cot's 8 exemplars, 8 samples; MATH 4-shot maj@4.
    assert_eq!(
        ran(&plans, "gsm8k"),
        (
            "gsm8k_cot".into(),
            "gsm8k_cot".into(),
            "maj@8".into(),
            settings(8, 8, 0.6, false)
        )
    );
    assert_eq!(
        ran(&plans, "math"),
        ("math".into(), "math".into(), "maj@4".into(), settings(4, 4, 0.6, false))
    );
    // NQ: 0-shot, with the deviation stated.
    assert_eq!(ran(&plans, "nq_open").3, s(0));
    match how(&plans, "nq_open") {
        How::Run { deviation: Some(d), .. } => assert!(d.contains("the paper: 5-shot"), "{d}"),
        other => panic!("{other:?}"),
    }
    // No data: TriviaQA (not bundled), QuAC and AGIEval (not implemented).
    match how(&plans, "triviaqa") {
        How::NoData(reason) => assert!(
            reason.contains("not bundled") && reason.contains("trivia_qa"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    for task in ["quac", "agieval"] {
        assert!(
            matches!(how(&plans, task), How::NoData(r) if r.contains("not implemented")),
            "{task}"
        );
    }
    // One evaluate() per distinct setting, in column order.
    let groups: Vec<(String, Vec<String>)> = runs(&plans).into_iter().map(|(s, t)| (s.label(), t)).collect();
    let labels: Vec<&str> = groups.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "5shot",
            "0shot",
            "0shot-code",
            "3shot-code",
            "4shot-4samples-t0.6",
            "8shot-8samples-t0.6",
            "3shot"
        ]
    );
    assert_eq!(
        groups[1].1,
        [
            "hellaswag",
            "winogrande",
            "piqa",
            "arc_easy",
            "arc_challenge",
            "nq_open",
            "siqa",
            "openbookqa",
            "commonsense_qa",
            "boolq"
        ]
    );

    // --greedy: maj@1, greedy, said so.
    let greedy = plan(
        &table,
        Some(&["gsm8k".to_string(), "math".to_string()]),
        true,
        0.6,
        &tasks::Registry::new(&[]).unwrap(),
    )
    .unwrap();
    assert_eq!(ran(&greedy, "gsm8k").2, "exact_match");
    assert_eq!(ran(&greedy, "gsm8k").3, settings(8, 1, 0.0, false));
    assert!(matches!(how(&greedy, "math"), How::Run { deviation: Some(d), .. } if d.contains("maj@1, greedy")));
    assert_eq!(*how(&greedy, "mmlu"), How::NotRun);
}

#[test]
fn partial_tables_show_no_data_and_not_run() {
    let table = mistral();
    let selected: Vec<String> = ["mmlu", "hellaswag", "triviaqa", "gsm8k"].map(String::from).to_vec();
    let mut plans = plan(&table, Some(&selected), false, 0.6, &tasks::Registry::new(&[]).unwrap()).unwrap();
    let scores: BTreeMap<(String, String), f64> = [
        (("mmlu".to_string(), "acc".to_string()), 0.25),
        (("hellaswag".to_string(), "acc_norm".to_string()), 0.4),
    ]
    .into();
    let ours = our_values(&mut plans, &scores);
    // Fractions to percent; a planned column without its score row becomes no data, with why.
    assert_eq!(ours["mmlu"], Some(25.0));
    assert_eq!(ours["triviaqa"], None);
    assert!(matches!(how(&plans, "gsm8k"), How::Failed(r) if r.contains("no `maj@8` score for `gsm8k_cot`")));
    assert_eq!(failures(&plans), ["no `maj@8` score for `gsm8k_cot` in the run"]);
    let (markdown, csv) = render(&table, &plans, &ours);
    let line = markdown.lines().find(|l| l.starts_with("| ours |")).unwrap();
    // MMLU, HellaSwag, WinoG (not run), ..., NQ (not run), TriviaQA (no data).
    let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    assert_eq!(&cells[..4], ["ours", "25.0", "40.0", "not run"]);
    assert_eq!((cells[7], cells[8]), ("not run", "no data"));
    assert_eq!(cells[12], "no data"); // GSM8K: ran, no score
    assert!(
        markdown.contains("- TriviaQA (`triviaqa`): no data: data not bundled"),
        "{markdown}"
    );
    assert!(markdown.contains("- MMLU (`mmlu`): `mmlu`, 5-shot, acc (row `mmlu`), run folder runs/5shot"));
    assert!(markdown.contains("- PIQA (`piqa`): not run"));
    assert!(csv.lines().any(|l| l.starts_with("ours,25.00,40.00,not run,")));
}
