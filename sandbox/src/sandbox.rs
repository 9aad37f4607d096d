//! The public entry point: one [`Sandbox`] per set of limits, shared by any number of threads.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::capabilities::{self, Isolation};
use crate::cgroup::{Cgroups, RunCgroup};
use crate::child::{ChildPlan, Exec, IdMaps, ProcessLimits};
use crate::init::InitPlan;
use crate::landlock::Ruleset;
use crate::monitor::{self, End, Outcome, Watched};
use crate::report::{self, Report, Stage};
use crate::rootfs::RootPlan;
use crate::seccomp::Filter;
use crate::workdir::{PROGRAM_FILE, Workdir};
use crate::{Execution, Limits, SandboxError, Status, cleanup, init, spawn, uid_pool};

/// `PATH` inside the sandbox, also searched first for `python3`.
const SANDBOX_PATH: &str = "/usr/bin:/bin";
/// Stack of the program's process while it shares the init's memory (before `execve`).
const CHILD_STACK_BYTES: usize = 256 << 10;

/// Runs Python programs under [`Limits`] with every isolation layer the machine allows.
/// `Send + Sync`: call [`Sandbox::run_python`] from as many threads as you like.
#[derive(Clone)]
pub struct Sandbox {
    limits: Limits,
    python: PathBuf,
    isolation: Isolation,
    shared: Arc<Shared>,
}

/// What every run of a sandbox uses, prepared once.
struct Shared {
    root: Option<RootPlan>,
    seccomp: Option<Filter>,
    cgroups: Option<Cgroups>,
    /// Why there is no cgroup, when there is none.
    cgroup_problem: Option<String>,
}

/// What a run prepares in the harness before its first process is cloned.
struct Prepared {
    pipes: Pipes,
    exec: Exec,
    ruleset: Option<Ruleset>,
    cgroup_procs: Vec<RawFd>,
    seccomp: Option<libc::sock_fprog>,
}

/// The harness's ends of a run's pipes, and the ends it hands to the run.
struct Pipes {
    stdout: (OwnedFd, OwnedFd),
    stderr: (OwnedFd, OwnedFd),
    report: (OwnedFd, OwnedFd),
    stdin: OwnedFd,
}

impl Pipes {
    fn new() -> Result<Pipes, SandboxError> {
        let pipe = || report::pipe().map_err(|e| SandboxError::io("creating a pipe", e));
        let stdin = File::open("/dev/null").map_err(|e| SandboxError::io("opening /dev/null", e))?;
        Ok(Pipes {
            stdout: pipe()?,
            stderr: pipe()?,
            report: pipe()?,
            stdin: stdin.into(),
        })
    }

    /// stdin, stdout and stderr as the run's main process gets them.
    fn child_stdio(&self) -> [RawFd; 3] {
        [
            self.stdin.as_raw_fd(),
            self.stdout.1.as_raw_fd(),
            self.stderr.1.as_raw_fd(),
        ]
    }

    /// The read ends of stdout, stderr and the report; the run's ends are closed here, once the
    /// run holds its own copies, so that the reads see end-of-file when the run is over.
    fn into_read_ends(self) -> (OwnedFd, OwnedFd, OwnedFd) {
        (self.stdout.0, self.stderr.0, self.report.0)
    }
}

impl Sandbox {
    /// A sandbox running `python3`, looked up in `/usr/bin:/bin`, then in the harness's `PATH`.
    /// Probes the isolation layers (once per process) and runs a self-test program through them.
    pub fn new(limits: Limits) -> Result<Sandbox, SandboxError> {
        Sandbox::with_interpreter(limits, find_python3()?)
    }

    /// As [`Sandbox::new`] with an explicit interpreter (absolute path). It must be readable and
    /// executable by the private uid, so not inside `/root` (pyenv shims there fail the self-test),
    /// and with a private root it may not live under `/tmp`, `/dev` or `/proc`, which are replaced.
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
        let probed = capabilities::probe();
        let isolation = probed.isolation;
        let root = if isolation.private_root {
            Some(RootPlan::for_interpreter(&python, &limits)?)
        } else {
            None
        };
        let (cgroups, cgroup_problem) = match &probed.cgroups {
            Ok(cgroups) => {
                cgroups.remove_stale();
                (Some(cgroups.clone()), None)
            }
            Err(problem) => (None, Some(problem.clone())),
        };
        let shared = Shared {
            root,
            seccomp: if isolation.seccomp { Filter::new() } else { None },
            cgroups,
            cgroup_problem,
        };
        let sandbox = Sandbox {
            limits,
            python,
            isolation,
            shared: Arc::new(shared),
        };
        sandbox.self_test()?;
        Ok(sandbox)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The isolation layers every run gets; see [`Sandbox::warnings`] for what is missing.
    pub fn capabilities(&self) -> Isolation {
        self.isolation
    }

    /// [`Isolation::warnings`], with the reason the cgroup layer is missing if it is.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = self.isolation.warnings();
        if let Some(problem) = &self.shared.cgroup_problem {
            warnings.push(format!("why there is no cgroup: {problem}"));
        }
        warnings
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
        let cgroup = match &self.shared.cgroups {
            Some(cgroups) => Some(
                cgroups
                    .create_run(&self.limits)
                    .map_err(|e| SandboxError::io("creating the run's cgroup", e))?,
            ),
            None => None,
        };
        let result = match &self.shared.root {
            Some(root) => self.run_in_private_root(root, program, uid, cgroup.as_ref()),
            None => self.run_in_host_folder(program, uid, cgroup.as_ref()),
        };
        let removal = cgroup.map(RunCgroup::remove);
        // The uid may go to another run only once every process of this one is gone; if that is
        // not certain (a failed sweep), the uid is retired for the life of the harness instead.
        match &result {
            Ok((_, false)) => std::mem::forget(lease),
            _ => drop(lease),
        }
        let (mut execution, _) = result?;
        if let Some(Err(e)) = removal {
            execution
                .warnings
                .push(format!("could not remove the run's cgroup: {e}"));
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

    /// A run whose first process is an init in new namespaces (see [`crate::init`]); everything
    /// of the run is gone once it has been reaped. Returns the run and `true` (nothing to sweep).
    fn run_in_private_root(
        &self,
        root: &RootPlan,
        program: &str,
        uid: Option<u32>,
        cgroup: Option<&RunCgroup>,
    ) -> Result<(Execution, bool), SandboxError> {
        let folder = Path::new(OsStr::from_bytes(root.folder().to_bytes()));
        let prepared = self.prepare(folder, None, cgroup)?;
        let child = self.child_plan(&prepared, root.folder().to_owned(), uid);
        let maps = self.isolation.user_namespace.then(IdMaps::identity);
        let harness_pidfd = spawn::harness_pidfd();
        let mut keep: Vec<RawFd> = child.stdio.into_iter().chain([child.report_fd]).collect();
        keep.extend(child.landlock_fd.iter().chain(&harness_pidfd).chain(child.cgroup_procs));
        keep.sort_unstable();
        keep.dedup();
        let mut stack = vec![0u8; CHILD_STACK_BYTES];
        let mut init = InitPlan {
            child: &child,
            root,
            program: program.as_bytes(),
            id_maps: maps.as_ref(),
            keep_fds: &keep,
            child_only_fds: child.stdio,
            harness_pidfd,
            landlock: prepared.ruleset.as_ref().map(|r| (r.raw_fd(), r.folder_rights())),
            private_uid: uid,
            child_stack: &mut stack,
            report_fd: child.report_fd,
        };
        let namespaces = capabilities::private_root_namespaces(self.isolation.user_namespace);
        let started = Instant::now();
        let spawned = spawn::clone_into(namespaces, || init.run());
        let mut process = spawned.map_err(|e| SandboxError::io("starting the run's init (clone3)", e))?;
        let init_pid = process.pid;
        // Killing the init kills every process of its pid namespace.
        let (outcome, reports) = self.watch(&mut process, prepared, started, cgroup, Some(root), || {
            spawn::kill(init_pid)
        })?;
        let program_status = reports.iter().find_map(|r| match r {
            Report::ProgramEnded { wait_status } => Some(*wait_status),
            Report::SetupFailed { .. } => None,
        });
        let mut execution = self.execution(&outcome, program_status, init_pid, uid);
        if program_status.is_none() && outcome.end == End::Exited {
            execution.warnings.push(format!(
                "the run's init ended (wait status {:#x}) before the program did",
                outcome.wait_status
            ));
        }
        Ok((execution, true))
    }

    /// A run in a host folder, forked directly (no private root on this machine): the process
    /// group, and with a private uid every process of that uid, is killed at the end. Returns the
    /// run and whether that sweep succeeded.
    fn run_in_host_folder(
        &self,
        program: &str,
        uid: Option<u32>,
        cgroup: Option<&RunCgroup>,
    ) -> Result<(Execution, bool), SandboxError> {
        let workdir =
            Workdir::create(program, uid).map_err(|e| SandboxError::io("creating the run's temporary folder", e))?;
        let result = self.run_forked(&workdir, uid, cgroup);
        let removal = workdir.remove();
        let (mut execution, swept) = result?;
        if let Err(e) = removal {
            execution
                .warnings
                .push(format!("could not delete the run's temporary folder: {e}"));
        }
        Ok((execution, swept))
    }

    fn run_forked(
        &self,
        workdir: &Workdir,
        uid: Option<u32>,
        cgroup: Option<&RunCgroup>,
    ) -> Result<(Execution, bool), SandboxError> {
        let prepared = self.prepare(workdir.path(), Some(workdir.path()), cgroup)?;
        let maps = self.isolation.user_namespace.then(IdMaps::identity);
        let namespaces = [
            (self.isolation.user_namespace, libc::CLONE_NEWUSER),
            (self.isolation.network_namespace, libc::CLONE_NEWNET),
            (self.isolation.ipc_namespace, libc::CLONE_NEWIPC),
        ];
        let child = ChildPlan {
            unshare: namespaces
                .iter()
                .filter(|(on, _)| *on)
                .fold(0, |flags, (_, flag)| flags | flag),
            id_maps: maps.as_ref(),
            harness_parent: Some(std::process::id() as libc::pid_t),
            ..self.child_plan(&prepared, path_cstring(workdir.path())?, uid)
        };
        let started = Instant::now();
        let spawned = spawn::fork(|| child.exec());
        let mut process = spawned.map_err(|e| SandboxError::io(format!("starting {}", self.python.display()), e))?;
        let pgid = process.pid;
        let mut sweep_error = None;
        let (outcome, _) = self.watch(&mut process, prepared, started, cgroup, None, || {
            cleanup::kill_group(pgid);
            if let Some(uid) = uid {
                sweep_error = cleanup::sweep_uid(uid).err();
            }
        })?;
        let mut execution = self.execution(&outcome, Some(outcome.wait_status), pgid, uid);
        let swept = sweep_error.is_none();
        if let Some(e) = sweep_error {
            execution
                .warnings
                .push(format!("sweeping the run's processes by uid failed: {e}"));
        }
        Ok((execution, swept))
    }

    /// What a run prepares in the harness before its first process is cloned: pipes, the
    /// interpreter's command, the Landlock ruleset (with `host_folder` writable), the cgroup's
    /// join descriptors and the seccomp program.
    fn prepare(
        &self,
        folder: &Path,
        host_folder: Option<&Path>,
        cgroup: Option<&RunCgroup>,
    ) -> Result<Prepared, SandboxError> {
        Ok(Prepared {
            pipes: Pipes::new()?,
            exec: self.exec(folder)?,
            ruleset: self.ruleset(host_folder)?,
            cgroup_procs: cgroup.map(RunCgroup::procs_fds).unwrap_or_default(),
            seccomp: self.shared.seccomp.as_ref().map(Filter::program),
        })
    }

    /// The program process's plan in `cwd`, without namespaces of its own to create.
    fn child_plan<'a>(&self, prepared: &'a Prepared, cwd: CString, uid: Option<u32>) -> ChildPlan<'a> {
        ChildPlan {
            exec: &prepared.exec,
            cwd,
            stdio: prepared.pipes.child_stdio(),
            limits: self.process_limits(),
            cgroup_procs: &prepared.cgroup_procs,
            unshare: 0,
            id_maps: None,
            landlock_fd: prepared.ruleset.as_ref().map(Ruleset::raw_fd),
            private_uid: uid,
            harness_parent: None,
            seccomp: prepared.seccomp.as_ref(),
            report_fd: prepared.pipes.report.1.as_raw_fd(),
        }
    }

    /// Closes the harness's copies of what the run got, watches the run to its end (see
    /// [`monitor::watch`]) and reads its report; a failed setup step is the error.
    fn watch(
        &self,
        process: &mut spawn::Process,
        prepared: Prepared,
        started: Instant,
        cgroup: Option<&RunCgroup>,
        root: Option<&RootPlan>,
        terminate: impl FnOnce(),
    ) -> Result<(Outcome, Vec<Report>), SandboxError> {
        let (stdout, stderr, report) = prepared.pipes.into_read_ends();
        let watched = Watched {
            stdout,
            stderr,
            started,
            limits: &self.limits,
            cgroup,
        };
        let outcome =
            monitor::watch(process, watched, terminate).map_err(|e| SandboxError::io("watching the program", e))?;
        let reports = report::read_all(report).map_err(|e| SandboxError::io("reading the run's report", e))?;
        match self.setup_error(&reports, root) {
            Some(error) => Err(error),
            None => Ok((outcome, reports)),
        }
    }

    /// The interpreter running `program.py` in `folder`, in a scrubbed environment.
    fn exec(&self, folder: &Path) -> Result<Exec, SandboxError> {
        let folder_var = |name: &str| [name.as_bytes(), b"=", folder.as_os_str().as_bytes()].concat();
        let env: Vec<Vec<u8>> = vec![
            format!("PATH={SANDBOX_PATH}").into_bytes(),
            b"LANG=C.UTF-8".to_vec(),
            folder_var("HOME"),
            folder_var("TMPDIR"),
            b"PYTHONDONTWRITEBYTECODE=1".to_vec(),
            b"PYTHONHASHSEED=0".to_vec(),
        ];
        let args = [self.python.as_os_str().as_bytes(), b"-s", PROGRAM_FILE.as_bytes()]; // -s: no user site-packages
        let strings = |items: &mut dyn Iterator<Item = &[u8]>| -> Result<Vec<CString>, SandboxError> {
            items.map(bytes_cstring).collect()
        };
        Ok(Exec::new(
            path_cstring(&self.python)?,
            strings(&mut args.into_iter())?,
            strings(&mut env.iter().map(Vec::as_slice))?,
        ))
    }

    /// The Landlock ruleset, with `host_folder` writable (a private root's folder is added by the
    /// run's init); `None` without Landlock.
    fn ruleset(&self, host_folder: Option<&Path>) -> Result<Option<Ruleset>, SandboxError> {
        if !self.isolation.filesystem_contained() {
            return Ok(None);
        }
        let ruleset = Ruleset::new(self.isolation.landlock_abi)
            .and_then(|ruleset| {
                host_folder.map_or(Ok(()), |folder| ruleset.allow_writes_beneath(folder))?;
                Ok(ruleset)
            })
            .map_err(|e| SandboxError::io("building the Landlock ruleset", e))?;
        Ok(Some(ruleset))
    }

    fn process_limits(&self) -> ProcessLimits {
        ProcessLimits {
            cpu_seconds: self.limits.cpu_rlimit_seconds(),
            memory_bytes: self.limits.memory_bytes,
            file_size_bytes: self.limits.file_size_bytes,
            max_processes: self.limits.max_processes,
        }
    }

    /// The error for a failed setup step, if one was reported.
    fn setup_error(&self, reports: &[Report], root: Option<&RootPlan>) -> Option<SandboxError> {
        reports.iter().find_map(|report| match *report {
            Report::SetupFailed { stage, step, errno } => {
                let step = step as usize;
                let name = match stage {
                    Stage::Init => init::STEPS
                        .get(step)
                        .map_or_else(|| format!("init step {step}"), |s| s.to_string()),
                    Stage::Root => root.map_or_else(|| format!("root step {step}"), |r| r.describe(step)),
                    Stage::Child => {
                        let name = crate::child::STEPS.get(step).copied().unwrap_or("?");
                        format!("{name} (starting {})", self.python.display())
                    }
                };
                Some(SandboxError::ChildSetup {
                    step: name,
                    source: std::io::Error::from_raw_os_error(errno),
                })
            }
            Report::ProgramEnded { .. } => None,
        })
    }

    fn execution(
        &self,
        outcome: &Outcome,
        program_status: Option<i32>,
        pid: libc::pid_t,
        uid: Option<u32>,
    ) -> Execution {
        Execution {
            status: status_of(outcome.end, program_status),
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            wall: outcome.wall,
            pid: pid as u32,
            uid,
            isolation: self.isolation,
            warnings: self.warnings(),
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("limits", &self.limits)
            .field("python", &self.python)
            .field("isolation", &self.isolation)
            .finish_non_exhaustive()
    }
}

/// The status from how the watch ended and, when the program's main process ended by itself,
/// its wait status (`None`: it did not report one).
fn status_of(end: End, program_status: Option<i32>) -> Status {
    match end {
        End::WallLimit => Status::TimedOut,
        End::CpuLimit => Status::CpuLimit,
        End::MemoryLimit => Status::MemoryLimit,
        End::OutputLimit => Status::OutputLimit,
        End::Exited => match program_status {
            None => Status::Killed { signal: libc::SIGKILL },
            Some(status) if libc::WIFEXITED(status) => match libc::WEXITSTATUS(status) {
                0 => Status::Passed,
                exit_code => Status::Failed { exit_code },
            },
            Some(status) if libc::WTERMSIG(status) == libc::SIGXCPU => Status::CpuLimit,
            Some(status) => Status::Killed {
                signal: libc::WTERMSIG(status),
            },
        },
    }
}

fn path_cstring(path: &Path) -> Result<CString, SandboxError> {
    bytes_cstring(path.as_os_str().as_bytes())
}

fn bytes_cstring(bytes: &[u8]) -> Result<CString, SandboxError> {
    CString::new(bytes)
        .map_err(|_| SandboxError::NoPython(format!("{:?} contains a NUL byte", OsStr::from_bytes(bytes))))
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
