//! The public entry point: one [`Sandbox`] per set of limits, shared by any number of threads.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::capabilities::{self, Isolation};
use crate::child::{ChildPlan, IdMaps, Network, STEPS};
use crate::landlock::Ruleset;
use crate::monitor::{self, End, Outcome};
use crate::workdir::{PROGRAM_FILE, Workdir};
use crate::{Execution, Limits, SandboxError, Status, cleanup, uid_pool};

/// `PATH` inside the sandbox, also searched first for `python3`.
const SANDBOX_PATH: &str = "/usr/bin:/bin";

/// Runs Python programs under [`Limits`] with every isolation layer the machine allows.
/// `Send + Sync`: call [`Sandbox::run_python`] from as many threads as you like.
#[derive(Clone, Debug)]
pub struct Sandbox {
    limits: Limits,
    python: PathBuf,
    isolation: Isolation,
}

impl Sandbox {
    /// A sandbox running `python3`, looked up in `/usr/bin:/bin`, then in the harness's `PATH`.
    /// Probes the isolation layers (once per process) and runs a self-test program through them.
    pub fn new(limits: Limits) -> Result<Sandbox, SandboxError> {
        Sandbox::with_interpreter(limits, find_python3()?)
    }

    /// As [`Sandbox::new`] with an explicit interpreter (absolute path). It must be readable and
    /// executable by the private uid, so not inside `/root` (pyenv shims there fail the self-test).
    pub fn with_interpreter(limits: Limits, python: impl Into<PathBuf>) -> Result<Sandbox, SandboxError> {
        limits.validate()?;
        let python = python.into();
        if !python.is_absolute() {
            return Err(SandboxError::NoPython(format!(
                "{} is not an absolute path",
                python.display()
            )));
        }
        if !is_executable_file(&python) {
            return Err(SandboxError::NoPython(format!(
                "{} is not an executable file",
                python.display()
            )));
        }
        let sandbox = Sandbox {
            limits,
            python,
            isolation: capabilities::probe(),
        };
        sandbox.self_test()?;
        Ok(sandbox)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The isolation layers every run gets; see [`Isolation::warnings`] for what is missing.
    pub fn capabilities(&self) -> Isolation {
        self.isolation
    }

    pub fn interpreter(&self) -> &Path {
        &self.python
    }

    /// Runs `program` as a Python file in a fresh child process and waits for it. A program that
    /// fails, crashes or overruns a limit is an `Ok` [`Execution`] with a non-passing status; `Err`
    /// means the sandbox itself could not run it.
    pub fn run_python(&self, program: &str) -> Result<Execution, SandboxError> {
        let lease = self.isolation.private_uid.then(uid_pool::acquire);
        let uid = lease.as_ref().map(|lease| lease.uid);
        let workdir =
            Workdir::create(program, uid).map_err(|e| SandboxError::io("creating the run's temporary folder", e))?;
        let result = self.run_in(&workdir, uid);
        let removal = workdir.remove();
        // The uid may go to another run only once every process of this one has been swept; if the
        // sweep failed, the uid is retired for the life of the harness instead.
        match &result {
            Ok((_, false)) => std::mem::forget(lease),
            _ => drop(lease),
        }
        let (mut execution, _) = result?;
        if let Err(e) = removal {
            execution
                .warnings
                .push(format!("could not delete the run's temporary folder: {e}"));
        }
        Ok(execution)
    }

    fn self_test(&self) -> Result<(), SandboxError> {
        let run = self.run_python("import sys\nassert sys.version_info >= (3,)\nprint('sandbox-ok')\n")?;
        if run.passed() && run.stdout == "sandbox-ok\n" {
            return Ok(());
        }
        Err(SandboxError::SelfTest(format!(
            "{} printing one line ended with {:?}, stdout {:?}, stderr {:?}",
            self.python.display(),
            run.status,
            run.stdout,
            run.stderr.trim()
        )))
    }

    /// The run, and whether the final sweep succeeded.
    fn run_in(&self, workdir: &Workdir, uid: Option<u32>) -> Result<(Execution, bool), SandboxError> {
        let isolation = self.isolation;
        let ruleset = if isolation.filesystem_contained() {
            let ruleset = Ruleset::confine_writes_to(isolation.landlock_abi, workdir.path())
                .map_err(|e| SandboxError::io("building the Landlock ruleset", e))?;
            Some(ruleset)
        } else {
            None
        };
        let (report_read, report_write) = report_pipe().map_err(|e| SandboxError::io("creating a pipe", e))?;
        let network = match (isolation.network_namespace, isolation.user_namespace) {
            (false, _) => Network::Shared,
            (true, false) => Network::Namespace,
            (true, true) => Network::UserNamespace(IdMaps::identity()),
        };
        let plan = ChildPlan {
            cpu_seconds: self.limits.cpu_seconds,
            memory_bytes: self.limits.memory_bytes,
            file_size_bytes: self.limits.file_size_bytes,
            max_processes: self.limits.max_processes,
            network,
            landlock_fd: ruleset.as_ref().map(Ruleset::raw_fd),
            private_uid: uid,
            parent_pid: std::process::id() as libc::pid_t,
            report_fd: report_write.as_raw_fd(),
        };

        let mut command = Command::new(&self.python);
        command
            .arg("-s") // no user site-packages
            .arg(PROGRAM_FILE)
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("LANG", "C.UTF-8")
            .env("HOME", workdir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONHASHSEED", "0")
            .current_dir(workdir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: `apply` makes only async-signal-safe syscalls on values prepared above.
        unsafe { command.pre_exec(move || plan.apply()) };

        let started = Instant::now();
        let spawned = command.spawn();
        drop(report_write);
        drop(ruleset);
        let mut child = spawned.map_err(|source| self.spawn_error(report_read, source))?;

        let pgid = child.id() as libc::pid_t;
        let mut sweep_error = None;
        let outcome = monitor::watch(
            &mut child,
            started,
            self.limits.wall,
            self.limits.max_output_bytes,
            || {
                cleanup::kill_group(pgid);
                if let Some(uid) = uid {
                    sweep_error = cleanup::sweep_uid(uid).err();
                }
            },
        )
        .map_err(|e| SandboxError::io("watching the program", e))?;

        let mut warnings = isolation.warnings();
        let swept = sweep_error.is_none();
        if let Some(e) = sweep_error {
            warnings.push(format!("sweeping the run's processes by uid failed: {e}"));
        }
        let execution = Execution {
            status: status_of(&outcome),
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            wall: outcome.wall,
            pid: pgid as u32,
            uid,
            isolation,
            warnings,
        };
        Ok((execution, swept))
    }

    /// Names the child's failed setup step if it reported one.
    fn spawn_error(&self, report: OwnedFd, source: io::Error) -> SandboxError {
        let mut step = [0u8; 1];
        match File::from(report).read(&mut step) {
            Ok(1) => SandboxError::ChildSetup {
                step: STEPS.get(step[0] as usize).copied().unwrap_or("?"),
                source,
            },
            _ => SandboxError::io(format!("starting {}", self.python.display()), source),
        }
    }
}

fn status_of(outcome: &Outcome) -> Status {
    match outcome.end {
        End::WallLimit => Status::TimedOut,
        End::OutputLimit => Status::OutputLimit,
        End::Exited => match (outcome.exit.code(), outcome.exit.signal()) {
            (Some(0), _) => Status::Passed,
            (Some(exit_code), _) => Status::Failed { exit_code },
            (None, Some(libc::SIGXCPU)) => Status::CpuLimit,
            (None, signal) => Status::Killed {
                signal: signal.unwrap_or(0),
            },
        },
    }
}

/// A non-blocking, close-on-exec pipe: the child's failing step is written before `spawn` returns.
fn report_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors, which are new and owned here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn find_python3() -> Result<PathBuf, SandboxError> {
    let harness_path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(SANDBOX_PATH).chain(std::env::split_paths(&harness_path));
    dirs.map(|dir| dir.join("python3"))
        .find(|candidate| candidate.is_absolute() && is_executable_file(candidate))
        .ok_or_else(|| {
            SandboxError::NoPython(format!(
                "python3 found neither in {SANDBOX_PATH} nor in PATH; install Python 3"
            ))
        })
}

fn is_executable_file(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
