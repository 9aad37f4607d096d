//! Tasks written as files by a user: the same file runs unchanged in lm-eval and here (requests,
//! documents, targets and scores equal lm-eval 0.4.12's, reference/user_tasks_expected.json from
//! reference/lm_eval_user_tasks.py), and a multiple-choice task needs no code: arc_easy written
//! as a user file builds the built-in task's requests.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::temp_dir;
use serde_json::Value;
use tasks::{EntryKind, LoadOptions, Registry, Request, Source, default_data_dir};

fn fixture() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/user_tasks"))
}

fn expected() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/user_tasks_expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn registry() -> Registry {
    Registry::new(&[fixture()]).unwrap()
}

#[test]
fn multiple_choice_file_builds_and_scores_as_in_lm_eval() {
    let exp = expected();
    let task = registry().load("capitals", &LoadOptions::default()).unwrap();
    let cases = exp["capitals"].as_array().unwrap();
    assert_eq!(task.items.len(), cases.len());
    assert_eq!(task.shots, 2);
    for (item, case) in task.items.iter().zip(cases) {
        assert_eq!(item.doc, case["doc"], "doc {}", item.doc_id);
        assert_eq!(item.target, case["target"], "doc {}", item.doc_id);
        let Request::Choice(mc) = &item.request else {
            panic!("multiple choice")
        };
        let theirs: Vec<(String, String)> = case["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string()))
            .collect();
        let ours: Vec<(String, String)> = mc
            .requests
            .iter()
            .map(|r| (r.context.clone(), r.continuation.clone()))
            .collect();
        assert_eq!(ours, theirs, "doc {}", item.doc_id);
        let lls: Vec<f64> = case["loglikelihoods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for metric in task.choice_metrics() {
            assert_eq!(
                metric.score(mc, &lls),
                case["metrics"][metric.name()].as_f64().unwrap(),
                "{} of doc {}",
                metric.name(),
                item.doc_id
            );
        }
    }
}

#[test]
fn generative_file_builds_and_scores_as_in_lm_eval() {
    let exp = expected();
    let task = registry().load("capitals_gen", &LoadOptions::default()).unwrap();
    let cases = exp["capitals_gen"].as_array().unwrap();
    assert_eq!(task.items.len(), cases.len());
    let mut checked = 0;
    for (item, case) in task.items.iter().zip(cases) {
        assert_eq!(item.doc, case["doc"]);
        assert_eq!(item.target, case["target"]);
        let Request::Generate(g) = &item.request else {
            panic!("generate_until")
        };
        assert_eq!(g.context, case["context"].as_str().unwrap());
        let until: Vec<&str> = case["until"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(g.until, until);
        assert_eq!(g.max_gen_toks as u64, case["max_gen_toks"].as_u64().unwrap());
        for score in case["scores"].as_array().unwrap() {
            let responses: Vec<String> = score["responses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().into())
                .collect();
            let ours = task.score_generation(g, &responses);
            let mine: BTreeMap<String, f64> = ours.scores.iter().map(|s| (s.lm_eval_key.clone(), s.value)).collect();
            let theirs: BTreeMap<String, f64> = score["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
                .collect();
            assert_eq!(mine, theirs, "doc {} {responses:?}", item.doc_id);
            for s in &ours.scores {
                let filter = s.lm_eval_key.split(',').nth(1).unwrap();
                assert_eq!(
                    s.answer,
                    score["filtered"][filter].as_str().unwrap(),
                    "{filter} of {responses:?}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 48);
}

#[test]
fn user_files_are_listed_shown_and_grouped() {
    let reg = registry();
    let list = reg.list();
    let capitals = list.iter().find(|l| l.name == "capitals").unwrap();
    assert_eq!(capitals.source, Some(Source::File(fixture().join("capitals.yaml"))));
    assert!(matches!(
        capitals.kind,
        EntryKind::Task {
            num_fewshot: Some(2),
            ..
        }
    ));
    let arc = list.iter().find(|l| l.name == "arc_easy").unwrap();
    assert!(matches!(&arc.source, Some(Source::BuiltIn(p)) if p.ends_with("arc/arc_easy.yaml")));
    assert!(
        list.iter()
            .any(|l| l.name == "capitals_suite" && matches!(l.kind, EntryKind::Group { aggregated: true, .. }))
    );
    assert_eq!(reg.item_count("capitals").unwrap(), 6);
    assert_eq!(reg.group_members("capitals_suite").unwrap(), ["capitals"]);
    assert_eq!(
        reg.expand(&["capitals_gen".into(), "capitals_suite".into(), "capitals".into()])
            .unwrap(),
        ["capitals_gen", "capitals"]
    );
    let shown = reg.show("capitals_gen", 2, &LoadOptions::default()).unwrap();
    assert!(shown.contains("Q: What is the capital of Türkiye?\nA:"), "{shown}");
    assert!(!shown.contains("Brazil"), "{shown}");
    let task = reg.load("capitals", &LoadOptions::default()).unwrap();
    assert_eq!(task.config["num_fewshot"], 2);
    assert_eq!(
        task.config["doc_to_text"],
        "Q: What is the capital of {{ country }}?\nA:"
    );
    assert_eq!(task.version, Some(serde_json::json!(1.0)));
    assert_eq!(
        task.data_files.len(),
        2,
        "test and few-shot files: {:?}",
        task.data_files
    );
}

/// arc_easy as a user would write it for the bundled ARC files.
fn arc_easy_file(name: &str) -> String {
    let data = default_data_dir().join("arc_easy");
    format!(
        r#"task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    train: {}
    test: {}
output_type: multiple_choice
training_split: train
test_split: test
doc_to_text: "Question: {{{{question.stem}}}}\nAnswer:"
doc_to_target: "{{{{(question.choices | map(attribute='label') | list).index(answerKey)}}}}"
doc_to_choice: "{{{{question.choices | map(attribute='text') | list}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"#,
        data.join("ARC-Easy-Train.jsonl.gz").display(),
        data.join("ARC-Easy-Test.jsonl.gz").display()
    )
}

#[test]
fn a_multiple_choice_task_is_one_file_plus_data() {
    let dir = temp_dir("user-arc");
    std::fs::write(dir.join("my_arc.yaml"), arc_easy_file("my_arc_easy")).unwrap();
    let reg = Registry::new(&[dir.to_path_buf()]).unwrap();
    for (shots, seed) in [(0, 1234), (5, 1234), (3, 42)] {
        let options = LoadOptions {
            shots: Some(shots),
            seed,
            limit: None,
        };
        let mine = reg.load("my_arc_easy", &options).unwrap();
        let builtin = reg.load("arc_easy", &options).unwrap();
        assert_eq!(mine.items.len(), 2376);
        assert_eq!(mine.items, builtin.items, "{shots} shots, seed {seed}");
        assert_eq!(mine.choice_metrics(), builtin.choice_metrics());
    }
}

#[test]
fn task_configs_are_shown_as_lm_eval_shows_them() {
    let exp = expected();
    let reg = registry();
    for name in ["capitals", "capitals_gen"] {
        let mut ours = reg.load(name, &LoadOptions::default()).unwrap().config;
        let mut theirs = exp["configs"][name].clone();
        // The file's absolute path, which differs between machines.
        for config in [&mut ours, &mut theirs] {
            config["metadata"].as_object_mut().unwrap().remove("config_source");
        }
        assert_eq!(ours, theirs, "{name}");
    }
}
