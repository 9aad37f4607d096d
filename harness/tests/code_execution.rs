//! The code runner end to end: every canonical HumanEval and MBPP solution, built into the
//! program lm-eval builds, passes in the sandbox (which checks the runner), deliberately wrong
//! and hostile completions fail, and the harness goes on.
#![cfg(target_os = "linux")]

use rayon::prelude::*;
use sandbox::{Limits, Sandbox};
use tasks::{CodeCheck, LoadOptions, Registry, Request};

/// A code task's checks, one per item.
fn task(name: &str) -> Vec<CodeCheck> {
    let task = Registry::new(&[]).unwrap().load(name, &LoadOptions::default()).unwrap();
    task.items
        .into_iter()
        .map(|item| match item.request {
            Request::Generate(g) => g.code.expect("a code task"),
            Request::Choice(_) => panic!("{name} is not a generative task"),
        })
        .collect()
}

/// lm-eval's 3 s limit, raised: these tests check how programs are built and contained, and
/// a slow machine must not fail a correct but slow solution (mbpp 123 needs ~2 CPU s).
fn sandbox() -> Sandbox {
    Sandbox::new(Limits::for_timeout(std::time::Duration::from_secs(30))).unwrap()
}

/// (task_id, passed) for each item's program built from `completion(item)`.
fn run_all(checks: &[CodeCheck], completion: impl Fn(&CodeCheck) -> String + Sync) -> Vec<(String, bool)> {
    let sandbox = sandbox();
    checks
        .par_iter()
        .map(|code| {
            let run = sandbox.run_python(&code.program(&completion(code))).unwrap();
            (code.task_id.clone(), run.passed())
        })
        .collect()
}

#[test]
fn canonical_humaneval_solutions_all_pass() {
    let humaneval = task("humaneval");
    assert_eq!(humaneval.len(), 164);
    let failed: Vec<String> = run_all(&humaneval, |c| c.canonical_solution.clone())
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(id, _)| id)
        .collect();
    assert!(failed.is_empty(), "canonical solutions failed: {failed:?}");
}

#[test]
fn canonical_mbpp_solutions_pass_but_the_one_lm_eval_also_fails() {
    let mbpp = task("mbpp");
    assert_eq!(mbpp.len(), 500);
    let failed: Vec<String> = run_all(&mbpp, |c| c.canonical_solution.clone())
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(id, _)| id)
        .collect();
    // Task 367 needs its test_setup_code, which lm-eval's mbpp program leaves out too.
    assert_eq!(failed, vec!["367".to_string()]);
}

#[test]
fn wrong_and_hostile_completions_fail_and_change_nothing_outside() {
    let humaneval = task("humaneval");
    let code = &humaneval[0];
    // lm-eval's own limits here: the infinite loop is cut at 3 s.
    let sandbox = Sandbox::new(Limits::human_eval()).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let sentinel = outside.path().join("keep.txt");
    std::fs::write(&sentinel, "untouched").unwrap();
    let wrong = [
        "    return None\n".to_string(),
        "    return not True\n".to_string(),
        "    while True:\n        pass\n".to_string(),
        format!(
            "    import os\n    os.remove({:?})\n    return True\n",
            sentinel.display().to_string()
        ),
        format!(
            "    open({:?}, 'w').write('pwned')\n    return True\n",
            outside.path().join("new.txt").display().to_string()
        ),
    ];
    for completion in &wrong {
        let run = sandbox.run_python(&code.program(completion)).unwrap();
        assert!(!run.passed(), "passed: {completion}");
    }
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert!(!outside.path().join("new.txt").exists());
    let canonical = sandbox.run_python(&code.canonical_program()).unwrap();
    assert!(canonical.passed(), "{}", canonical.stderr);
}
