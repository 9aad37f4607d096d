//! The resource limits of one run, with defaults sized for HumanEval/MBPP test programs.

use std::time::Duration;

use crate::SandboxError;

/// Limits for one program run. Every field is a hard ceiling; crossing one ends the run with a
/// non-passing [`crate::Status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from start until the main process exits; then the whole run is killed
    /// ([`crate::Status::TimedOut`]).
    pub wall: Duration,
    /// CPU seconds per process (`RLIMIT_CPU`; [`crate::Status::CpuLimit`]).
    pub cpu_seconds: u64,
    /// Address space per process in bytes (`RLIMIT_AS`): allocation beyond it fails (`MemoryError`).
    pub memory_bytes: u64,
    /// Largest file the program may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Processes the run may have at once, the main one included (`RLIMIT_NPROC`).
    pub max_processes: u64,
    /// Bytes kept of each of stdout and stderr; more ends the run ([`crate::Status::OutputLimit`]).
    pub max_output_bytes: usize,
}

impl Limits {
    /// The per-problem timeout of OpenAI's human-eval `check_correctness` and lm-eval's `code_eval`.
    pub const HUMAN_EVAL_TIMEOUT: Duration = Duration::from_secs(3);

    /// [`Limits::default`] with the reference HumanEval timeout of 3 s (wall and CPU).
    pub fn human_eval() -> Self {
        Limits {
            wall: Self::HUMAN_EVAL_TIMEOUT,
            cpu_seconds: 3,
            ..Self::default()
        }
    }

    /// Checks that every limit can be enforced; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |what: &str| Err(SandboxError::InvalidLimits(what.to_string()));
        if self.wall.is_zero() || self.wall > Duration::from_secs(24 * 3600) {
            return bad("wall must be between 1 ns and 24 h");
        }
        if self.cpu_seconds == 0 {
            return bad("cpu_seconds must be at least 1");
        }
        if self.memory_bytes < 16 << 20 {
            return bad("memory_bytes must be at least 16 MiB (Python cannot start below that)");
        }
        if self.file_size_bytes == 0 {
            return bad("file_size_bytes must be at least 1");
        }
        if self.max_processes == 0 {
            return bad("max_processes must be at least 1 (the program itself)");
        }
        if self.max_output_bytes == 0 {
            return bad("max_output_bytes must be at least 1");
        }
        Ok(())
    }
}

impl Default for Limits {
    /// 10 s wall, 10 CPU s, 2 GiB address space, 16 MiB files, 32 processes, 1 MiB per stream.
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_bytes: 2 << 30,
            file_size_bytes: 16 << 20,
            max_processes: 32,
            max_output_bytes: 1 << 20,
        }
    }
}
