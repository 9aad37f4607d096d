//! The result of one run: how it ended and what it printed.

use std::time::Duration;

use crate::Isolation;

/// How a program run ended. Only [`Status::Passed`] counts as a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// The program exited with code 0.
    Passed,
    /// The program exited with a non-zero code (an exception, `assert`, `sys.exit(1)`, a syntax error).
    Failed { exit_code: i32 },
    /// The program was ended by a signal other than the sandbox's limits (e.g. `SIGSEGV`, `SIGXFSZ`
    /// where a file grew past the limit and the signal was not ignored, or a `kill` of its own).
    Killed { signal: i32 },
    /// The wall-clock limit passed; every process of the run was killed.
    TimedOut,
    /// The run used up its CPU time (its cgroup's counter, or `RLIMIT_CPU` of the main process);
    /// every process of the run was killed.
    CpuLimit,
    /// The run went over its memory budget: the kernel killed one of its processes for it (the
    /// `MemoryError` of one too large allocation is a [`Status::Failed`] instead); every process
    /// of the run was killed.
    MemoryLimit,
    /// The program wrote more than `max_output_bytes` to stdout or stderr; the run was killed.
    OutputLimit,
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct Execution {
    pub status: Status,
    /// Standard output, at most `max_output_bytes`, invalid UTF-8 replaced.
    pub stdout: String,
    /// Standard error, at most `max_output_bytes`, invalid UTF-8 replaced.
    pub stderr: String,
    /// Wall-clock time from spawn until the main process ended or was killed.
    pub wall: Duration,
    /// Process id (in the harness's pid namespace) of the run's first process, gone by now: the
    /// run's init with a private root, else the main process, which led the run's process group.
    pub pid: u32,
    /// The private uid the program ran as, when the harness is root.
    pub uid: Option<u32>,
    /// The isolation the run had.
    pub isolation: Isolation,
    /// [`crate::Sandbox::warnings`], then problems met while cleaning up. Empty when the run had
    /// every layer and left nothing behind.
    pub warnings: Vec<String>,
}

impl Execution {
    /// Whether the program exited with code 0 within every limit.
    pub fn passed(&self) -> bool {
        self.status == Status::Passed
    }
}
