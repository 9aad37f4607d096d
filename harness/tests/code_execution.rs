//! The code runner end to end: every canonical HumanEval and MBPP solution, built into the
//! program lm-eval builds and run as code_eval runs it, passes in the sandbox (which checks the
//! runner), deliberately wrong and hostile completions fail, the verdicts are code_eval's where
//! running the program as a script would differ, and the harness goes on.
#![cfg(target_os = "linux")]

use rayon::prelude::*;
use sandbox::{Limits, Sandbox};
use tasks::{CodeCheck, LoadOptions, Registry, Request, code_eval};

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

/// Whether `completion` passes `code`'s tests, run as the harness runs it.
fn passes(sandbox: &Sandbox, code: &CodeCheck, completion: &str) -> bool {
    let run = sandbox
        .run_python(&code_eval::script(&code.program(completion)))
        .unwrap();
    code_eval::passed(run.passed(), &run.stdout)
}

/// (task_id, passed) for each item's program built from `completion(item)`.
fn run_all(checks: &[CodeCheck], completion: impl Fn(&CodeCheck) -> String + Sync) -> Vec<(String, bool)> {
    let sandbox = sandbox();
    checks
        .par_iter()
        .map(|code| (code.task_id.clone(), passes(&sandbox, code, &completion(code))))
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
        assert!(!passes(&sandbox, code, completion), "passed: {completion}");
    }
    assert_eq!(std::fs::read_to_string(&sentinel).unwrap(), "untouched");
    assert!(!outside.path().join("new.txt").exists());
    assert!(passes(&sandbox, code, &code.canonical_solution));
}

/// Where a program run as a script and code_eval's `exec` disagree, the verdict is code_eval's
/// (checked against a copy of its `unsafe_execute` on Python 3.11).
#[test]
fn verdicts_are_code_evals_where_a_script_would_differ() {
    let code = CodeCheck {
        task_id: "add".into(),
        prefix: String::new(),
        test: "assert add(2, 3) == 5".into(),
        canonical_solution: "def add(a, b):\n    return a + b".into(),
        timeout_s: 3.0,
    };
    let right = "def add(a, b):\n    return a + b\n";
    let wrong = "def add(a, b):\n    return a * b\n";
    let cases = [
        // A script's exit status 0 before the tests ran: SystemExit and exit() (None under
        // code_eval) fail, os._exit is code_eval's "timed out".
        (format!("{wrong}import sys\nsys.exit(0)"), false),
        (format!("{wrong}exit()"), false),
        (format!("{wrong}import os\nos._exit(0)"), false),
        // `__name__` is "builtins" under exec: a main block does not run.
        (
            format!("{right}if __name__ == '__main__':\n    assert add(1, 1) == 3"),
            true,
        ),
        (
            format!("{right}if __name__ == '__main__':\n    print(add(int(input()), 1))"),
            true,
        ),
        // Output is swallowed, input raises, the guard's functions are None.
        (format!("{right}for i in range(200000):\n    print('x' * 100)"), true),
        (format!("{right}input()"), false),
        (format!("{right}import os\nos.getcwd()"), false),
        // The program reaches exec intact: quotes, backslashes, a line separator, non-ASCII.
        (
            format!("{right}s = '\\\\ \\' \\\"\u{2028} é \\n'\nassert len(s) == 10, len(s)"),
            true,
        ),
        (right.to_string(), true),
    ];
    let sandbox = sandbox();
    for (completion, expected) in cases {
        assert_eq!(passes(&sandbox, &code, &completion), expected, "{completion}");
    }
}
