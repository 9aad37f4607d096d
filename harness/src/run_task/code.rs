//! Running the programs of code tasks (humaneval, mbpp): in the sandbox crate's contained child
//! processes, which need Linux (namespaces, cgroups, Landlock, seccomp). Elsewhere a code task is
//! refused with that reason before anything is generated; every other task runs.

use serde::{Deserialize, Serialize};
use tasks::{CodeCheck, Task};

/// One program's outcome, as the samples journal keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExecutionRecord {
    pub passed: bool,
    pub status: String,
    pub wall_ms: f64,
    /// The end of stderr (the assertion or error), for reading failures.
    pub stderr_tail: String,
}

pub use imp::CodeRunner;

#[cfg(target_os = "linux")]
mod imp {
    use anyhow::Context as _;
    use rayon::prelude::*;
    use sandbox::{Limits, Sandbox};
    use tasks::{Request, code_eval};

    use super::{CodeCheck, ExecutionRecord, Task};

    /// The sandbox of a code task, built once per run (its set-up runs a test program).
    pub struct CodeRunner(Sandbox);

    impl CodeRunner {
        /// The task's timeout (code_eval's 3 s) is each run's CPU time; see
        /// `sandbox::Limits::for_timeout` for why.
        pub fn new(task: &Task) -> anyhow::Result<Self> {
            let timeout = task
                .items
                .iter()
                .filter_map(|i| match &i.request {
                    Request::Generate(g) => g.code.as_ref().map(|c| c.timeout_s),
                    Request::Choice(_) => None,
                })
                .fold(0.0f64, f64::max)
                .max(1.0);
            let limits = Limits::for_timeout(std::time::Duration::from_secs_f64(timeout));
            let sandbox = Sandbox::new(limits).context("setting up the code sandbox")?;
            for warning in sandbox.warnings() {
                eprintln!("sandbox warning: {warning}");
            }
            Ok(Self(sandbox))
        }

        /// Runs each sample's program (in parallel: each run is its own process).
        pub fn run(&self, code: &CodeCheck, responses: &[String]) -> anyhow::Result<Vec<ExecutionRecord>> {
            responses
                .par_iter()
                .map(|response| {
                    let run = self
                        .0
                        .run_python(&code_eval::script(&code.program(response)))
                        .with_context(|| format!("running {} in the sandbox", code.task_id))?;
                    let chars: Vec<char> = run.stderr.chars().collect();
                    let passed = code_eval::passed(run.passed(), &run.stdout);
                    // Exit code 0 without reaching the end: `os._exit(0)` midway.
                    let status = if run.passed() && !passed {
                        "ExitedBeforeTheEnd".to_string()
                    } else {
                        format!("{:?}", run.status)
                    };
                    Ok(ExecutionRecord {
                        passed,
                        status,
                        wall_ms: run.wall.as_secs_f64() * 1000.0,
                        stderr_tail: chars[chars.len().saturating_sub(400)..].iter().collect(),
                    })
                })
                .collect()
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::{CodeCheck, ExecutionRecord, Task};

    pub struct CodeRunner;

    impl CodeRunner {
        pub fn new(task: &Task) -> anyhow::Result<Self> {
            anyhow::bail!(
                "{}: code execution needs Linux (the sandbox uses Linux namespaces, cgroups, Landlock and seccomp); \
                 run code tasks on a Linux machine or container",
                task.name
            )
        }

        pub fn run(&self, _code: &CodeCheck, _responses: &[String]) -> anyhow::Result<Vec<ExecutionRecord>> {
            unreachable!("CodeRunner::new fails off Linux")
        }
    }
}
