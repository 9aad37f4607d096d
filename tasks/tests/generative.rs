//! Generative tasks: names, groups, counts, limits, few-shot availability, code programs,
//! scoring helpers and data errors.

mod common;

use common::{temp_dir, write_gz};

use common::legacy::{
    GenOptions, TaskOptions, default_shots, expand_task_names, group_members, is_generative, known_tasks,
    load_gen_task, load_task, score_code, score_responses,
};
use tasks::{GenMetric, TaskError, canonical_solution, default_data_dir};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn load(name: &str, shots: Option<usize>, limit: Option<usize>) -> common::legacy::GenTaskInstance {
    let options = GenOptions {
        shots,
        limit,
        ..GenOptions::default()
    };
    load_gen_task(name, &default_data_dir(), &options).unwrap()
}

#[test]
fn names_groups_and_aliases() {
    let known = known_tasks();
    for t in [
        "gsm8k",
        "gsm8k_cot",
        "humaneval",
        "mbpp",
        "nq_open",
        "triviaqa",
        "minerva_math_precalc",
    ] {
        assert!(known.contains(&t.to_string()), "{t}");
        assert!(is_generative(t), "{t}");
    }
    assert!(!is_generative("arc_easy") && !is_generative("math") && !is_generative("bbh"));
    let math = expand_task_names(&names(&["math"])).unwrap();
    assert_eq!(math.len(), 7);
    assert!(math.iter().all(|t| t.starts_with("minerva_math_")));
    assert_eq!(expand_task_names(&names(&["minerva_math"])).unwrap(), math);
    let bbh = expand_task_names(&names(&["bbh", "bbh_cot_fewshot_navigate", "gsm8k"])).unwrap();
    assert_eq!(bbh.len(), 28);
    assert_eq!(bbh[27], "gsm8k");
    assert_eq!(expand_task_names(&names(&["bbh_cot_fewshot"])).unwrap().len(), 27);
    assert_eq!(group_members("math").unwrap(), math);
    assert_eq!(group_members("bbh").unwrap().len(), 27);
    assert_eq!(group_members("minerva_math").unwrap(), math);
    assert_eq!(group_members("gsm8k"), None);
    let err = expand_task_names(&names(&["gsm8kk"])).unwrap_err().to_string();
    for k in [
        "gsm8k_cot",
        "humaneval",
        "minerva_math_<…> (algebra",
        "word_sorting",
        "math",
        "bbh",
    ] {
        assert!(err.contains(k), "{err}");
    }
    assert_eq!(default_shots("gsm8k"), Some(5));
    assert_eq!(default_shots("gsm8k_cot"), Some(8));
    assert_eq!(default_shots("minerva_math_algebra"), Some(4));
    assert_eq!(default_shots("mbpp"), Some(3));
    assert_eq!(default_shots("bbh_cot_fewshot_snarks"), Some(3));
    assert_eq!(default_shots("humaneval"), Some(0));
    assert_eq!(default_shots("nq_open"), Some(0));
    assert_eq!(default_shots("arc_easy"), None);
}

#[test]
fn item_counts_are_the_official_ones() {
    let count = |t: &str| load(t, Some(0), None).items.len();
    assert_eq!(count("gsm8k"), 1319);
    assert_eq!(count("gsm8k_cot"), 1319);
    assert_eq!(count("humaneval"), 164);
    assert_eq!(count("mbpp"), 500);
    assert_eq!(count("nq_open"), 3610);
    let math: usize = group_members("math").unwrap().iter().map(|t| count(t)).sum();
    assert_eq!(math, 5000);
    assert_eq!(count("minerva_math_algebra"), 1187);
    let bbh: usize = group_members("bbh").unwrap().iter().map(|t| count(t)).sum();
    assert_eq!(bbh, 6511);
    assert_eq!(count("bbh_cot_fewshot_penguins_in_a_table"), 146);
}

#[test]
fn settings_follow_the_yamls() {
    let g = load("gsm8k", None, Some(1));
    assert_eq!(g.shots, 5);
    assert_eq!(g.metrics, vec![GenMetric::ExactMatch, GenMetric::ExactMatchFlexible]);
    let it = &g.items[0];
    assert_eq!(it.until, names(&["Question:", "</s>", "<|im_end|>"]));
    assert_eq!(it.max_gen_toks, 256);
    assert_eq!(it.context.matches("Question: ").count(), 6);
    assert!(it.context.ends_with("\nAnswer:"));
    assert!(it.target.ends_with("#### 18"));
    let h = load("humaneval", None, Some(1));
    assert_eq!(
        (h.items[0].max_gen_toks, h.metrics[0].name()),
        (1024, "pass@1".to_string())
    );
    let b = load("bbh_cot_fewshot_boolean_expressions", None, Some(1));
    assert!(
        b.items[0]
            .context
            .starts_with("Evaluate the result of a random Boolean expression.\n\nQ: ")
    );
    assert!(b.items[0].context.ends_with("\nA: Let's think step by step.\n"));
    assert_eq!(b.items[0].until, names(&["</s>", "Q", "\n\n"]));
    let nq = load("nq_open", None, Some(1));
    assert_eq!(
        nq.items[0].context,
        "Answer these questions:\n\nQ: when was the last time anyone was on the moon?\nA:"
    );
    assert_eq!(
        nq.items[0].references,
        names(&["14 December 1972 UTC", "December 1972"])
    );
    assert_eq!(nq.items[0].target, "['14 December 1972 UTC', 'December 1972']");
    let m = load("minerva_math_algebra", None, Some(1));
    assert_eq!(m.items[0].context.matches("Problem:\n").count(), 5);
    assert_eq!(m.items[0].target, "2");
}

#[test]
fn limit_is_a_prefix_and_random_shots_do_not_depend_on_it() {
    let full = load("gsm8k", None, None);
    let first = load("gsm8k", None, Some(30));
    assert_eq!(first.items.len(), 30);
    assert_eq!(&full.items[..30], &first.items[..]);
    // Different seeds draw different shots.
    let other = load_gen_task(
        "gsm8k",
        &default_data_dir(),
        &GenOptions {
            seed: 42,
            limit: Some(1),
            ..GenOptions::default()
        },
    )
    .unwrap();
    assert_ne!(other.items[0].context, full.items[0].context);
    // From the MC options: an explicit shot count.
    let from_mc = GenOptions::from(&TaskOptions {
        shots: 0,
        seed: 1234,
        limit: Some(2),
    });
    assert_eq!(load_gen_task("gsm8k", &default_data_dir(), &from_mc).unwrap().shots, 0);
}

#[test]
fn unavailable_shots_and_data_are_clear_errors() {
    let dir = default_data_dir();
    let with_shots = |s| GenOptions {
        shots: Some(s),
        ..GenOptions::default()
    };
    for (task, shots) in [
        ("nq_open", 1),
        ("humaneval", 1),
        ("gsm8k_cot", 9),
        ("minerva_math_geometry", 5),
        ("mbpp", 4),
    ] {
        let err = load_gen_task(task, &dir, &with_shots(shots)).unwrap_err();
        assert!(matches!(err, TaskError::Fewshot { .. }), "{task}: {err}");
    }
    assert!(load_gen_task("bbh_cot_fewshot_navigate", &dir, &with_shots(2)).is_ok());
    let err = load_gen_task("triviaqa", &dir, &GenOptions::default()).unwrap_err();
    assert!(matches!(err, TaskError::NotBundled { .. }));
    assert!(err.to_string().contains("trivia_qa"), "{err}");
    // The MC loader: triviaqa's own error; other generative tasks are pointed to load_gen_task.
    assert!(matches!(
        load_task("triviaqa", &dir, &TaskOptions::default()),
        Err(TaskError::NotBundled { .. })
    ));
    let err = load_task("gsm8k", &dir, &TaskOptions::default()).unwrap_err();
    assert!(matches!(err, TaskError::Generative { .. }), "{err}");
    assert!(load_gen_task("math", &dir, &GenOptions::default()).is_err());
}

#[test]
fn code_programs_contain_the_tests() {
    let h = load("humaneval", None, None);
    for it in &h.items {
        let code = it.code.as_ref().unwrap();
        let sol = canonical_solution(it).unwrap();
        let program = code.program(sol);
        assert_eq!(program, code.canonical_program());
        assert!(program.starts_with(&it.context), "{}", code.task_id);
        assert!(program.contains(&format!("{}{sol}\n", it.context)));
        assert!(program.contains("def check(candidate):"));
        let entry = it.target.rsplit("check(").next().unwrap().trim_end_matches(')');
        assert!(program.ends_with(&format!("\ncheck({entry})")), "{}", code.task_id);
        assert_eq!(code.timeout_s, 3.0);
    }
    assert_eq!(h.items[0].code.as_ref().unwrap().task_id, "HumanEval/0");
    let m = load("mbpp", None, None);
    assert_eq!(m.items[0].code.as_ref().unwrap().task_id, "11");
    for it in &m.items {
        let code = it.code.as_ref().unwrap();
        let program = code.canonical_program();
        assert!(program.starts_with(canonical_solution(it).unwrap()));
        assert!(program.ends_with(&format!("\n{}", it.target)));
        assert!(
            it.target.starts_with("assert") && it.target.lines().count() >= 3,
            "{}",
            code.task_id
        );
        assert!(it.context.ends_with("[BEGIN]\n"));
    }
    assert!(load("gsm8k", Some(0), Some(1)).items[0].code.is_none());
}

#[test]
fn scoring_helpers() {
    let g = load("gsm8k", Some(0), Some(1));
    let it = &g.items[0];
    let r = |xs: &[&str]| names(xs);
    let s = score_responses(&g, it, &r(&[" #### 18"]));
    assert_eq!(s.get(GenMetric::ExactMatch).unwrap().value, 1.0);
    assert_eq!(
        s.get(GenMetric::ExactMatch).unwrap().lm_eval_key,
        "exact_match,strict-match"
    );
    // maj@3: "17" twice beats "18" once; a tie goes to the first seen.
    let s = score_responses(&g, it, &r(&[" #### 18", " #### 17", " #### 17"]));
    let em = s.get(GenMetric::ExactMatch).unwrap();
    assert_eq!((em.answer.as_str(), em.value), ("17", 0.0));
    assert_eq!(em.per_response, r(&["18", "17", "17"]));
    let s = score_responses(&g, it, &r(&[" #### 18", " #### 17"]));
    assert_eq!(s.get(GenMetric::ExactMatch).unwrap().value, 1.0);
    let flex = score_responses(&g, it, &r(&["It is $18.00 total, or 18"]));
    assert_eq!(flex.get(GenMetric::ExactMatchFlexible).unwrap().answer, "18");
    // Code: pass@1 over 5 samples with 2 passing = 0.4; no text scores.
    let h = load("humaneval", None, Some(1));
    assert!(
        score_responses(&h, &h.items[0], &r(&["    return True"]))
            .scores
            .is_empty()
    );
    let c = score_code(&h, &[true, false, true, false, false]);
    let p = c.get(GenMetric::PassAt(1)).unwrap();
    assert!((p.value - 0.4).abs() < 1e-12);
    assert_eq!(p.lm_eval_key, "pass@1,create_test");
    assert!(score_code(&h, &[]).scores.is_empty());
    let m = load("mbpp", Some(0), Some(1));
    assert_eq!(score_code(&m, &[true]).scores[0].lm_eval_key, "pass_at_1,none");
}

// ---------------------------------------------------------------------------------------------
// Data errors name the file and the line.

fn malformed_at(err: TaskError, file: &str, line: usize) {
    match err {
        TaskError::Malformed { path, line: l, .. } => {
            assert!(path.ends_with(file), "{}", path.display());
            assert_eq!(l, line);
        }
        other => panic!("expected a malformed-data error, got {other}"),
    }
}

#[test]
fn bad_data_names_file_and_line() {
    let dir = temp_dir("bad");
    let opts = GenOptions {
        shots: Some(0),
        ..GenOptions::default()
    };
    // Missing file: an I/O error naming it.
    let err = load_gen_task("gsm8k", &dir.0, &opts).unwrap_err();
    assert!(
        matches!(&err, TaskError::Io { path, .. } if path.ends_with("gsm8k/test.jsonl.gz")),
        "{err}"
    );
    write_gz(
        &dir.0.join("gsm8k/test.jsonl.gz"),
        "{\"question\": \"q\", \"answer\": \"#### 1\"}\n{\"question\": 1}\n",
    );
    malformed_at(
        load_gen_task("gsm8k", &dir.0, &opts).unwrap_err(),
        "gsm8k/test.jsonl.gz",
        2,
    );
    write_gz(
        &dir.0.join("math/test/geometry.jsonl.gz"),
        "{\"problem\": \"p\", \"solution\": \"no box\", \"level\": \"Level 1\", \"type\": \"Geometry\"}\n",
    );
    malformed_at(
        load_gen_task("minerva_math_geometry", &dir.0, &opts).unwrap_err(),
        "math/test/geometry.jsonl.gz",
        1,
    );
    write_gz(
        &dir.0.join("mbpp/mbpp.jsonl.gz"),
        "{\"task_id\": 11, \"text\": \"t\", \"code\": \"c\", \"test_list\": [\"a\"]}",
    );
    malformed_at(
        load_gen_task("mbpp", &dir.0, &opts).unwrap_err(),
        "mbpp/mbpp.jsonl.gz",
        1,
    );
    write_gz(
        &dir.0.join("bbh/bbh/navigate.json.gz"),
        "{\"examples\": [\n{\"input\": 1}]}",
    );
    malformed_at(
        load_gen_task("bbh_cot_fewshot_navigate", &dir.0, &opts).unwrap_err(),
        "bbh/bbh/navigate.json.gz",
        2,
    );
}
