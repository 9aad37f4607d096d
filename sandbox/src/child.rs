//! The setup the program's process performs on itself between `clone` and `execve` of `python3`.
//!
//! Why here and not in a helper binary: everything is a handful of syscalls on values prepared in
//! the harness (limits as integers, descriptors, C strings, the seccomp filter), so the child needs
//! no allocation and no lock, which is what makes cloning the multi-threaded harness sound. With a
//! private root, the run's init ([`crate::init`]) starts this child inside the namespaces it set
//! up; without one, the harness forks it directly. Order matters:
//! 1. standard streams from the prepared descriptors; every other descriptor close-on-exec, so
//!    nothing the harness opened leaks in; a process group of its own; default signal handling;
//! 2. resource limits, while still privileged enough to set any value;
//! 3. into the run's cgroup (writing `0` to its `cgroup.procs`), while still root;
//! 4. without a private root: new network and IPC namespaces (and a user namespace when not root);
//! 5. `PR_SET_NO_NEW_PRIVS` (no setuid binary can regain root), then Landlock;
//! 6. private uid: supplementary groups cleared, gid and uid set (this also drops all capabilities);
//! 7. a fresh session keyring, so the harness's keys are not the program's by possession;
//! 8. without a private root, a parent-death signal (after the uid change, which clears it), so a
//!    crashed harness takes the program down with it (with one, the run's init does this);
//! 9. the seccomp filter, last, as it forbids some calls made above; then `execve`.
//!
//! A failing step writes a record naming it to the report pipe and the child exits with 127.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

use libc::{c_char, c_int, sock_fprog};

use crate::report::{self, Stage};

/// Names of the setup steps, indexed by the number the child reports.
pub(crate) const STEPS: [&str; 13] = [
    "standard streams and close-on-exec",
    "new process group (setpgid)",
    "default signal handling",
    "resource limits (setrlimit)",
    "joining the run's cgroup",
    "new namespaces (unshare)",
    "user namespace id maps",
    "no-new-privileges and Landlock",
    "private uid (setgroups/setgid/setuid)",
    "fresh session keyring",
    "parent-death signal",
    "working directory and seccomp filter",
    "execve of the interpreter",
];

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_ulong = 1;

/// The interpreter's path, arguments and environment as `execve` takes them.
pub(crate) struct Exec {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}

impl Exec {
    /// `path` run with `args`, in a scrubbed environment of exactly `env`.
    pub(crate) fn new(path: CString, args: Vec<CString>, env: Vec<CString>) -> Exec {
        let pointers = |strings: &[CString]| -> Vec<*const c_char> {
            strings.iter().map(|s| s.as_ptr()).chain([std::ptr::null()]).collect()
        };
        let (argv, envp) = (pointers(&args), pointers(&env));
        Exec {
            path,
            _strings: args.into_iter().chain(env).collect(),
            argv,
            envp,
        }
    }
}

/// `/proc/self/{setgroups,uid_map,gid_map}` paths and contents, prepared before `clone`.
pub(crate) struct IdMaps {
    setgroups: CString,
    uid_map_path: CString,
    gid_map_path: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl IdMaps {
    /// Maps the harness's own uid and gid onto themselves inside a new user namespace.
    pub(crate) fn identity() -> IdMaps {
        // SAFETY: geteuid/getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        IdMaps {
            setgroups: c"/proc/self/setgroups".to_owned(),
            uid_map_path: c"/proc/self/uid_map".to_owned(),
            gid_map_path: c"/proc/self/gid_map".to_owned(),
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }

    /// Writes the maps for the calling process, the first in its user namespace. Async-signal-safe.
    pub(crate) fn write(&self) -> bool {
        // SAFETY: plain writes of prepared buffers.
        unsafe {
            write_file(&self.setgroups, b"deny")
                && write_file(&self.uid_map_path, &self.uid_map)
                && write_file(&self.gid_map_path, &self.gid_map)
        }
    }
}

/// Resource limits as `setrlimit` takes them.
#[derive(Clone, Copy)]
pub(crate) struct ProcessLimits {
    pub(crate) cpu_seconds: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) file_size_bytes: u64,
    pub(crate) max_processes: u64,
}

/// Everything the child does to itself, as plain values.
pub(crate) struct ChildPlan<'a> {
    pub(crate) exec: &'a Exec,
    pub(crate) cwd: CString,
    /// Descriptors to become stdin, stdout and stderr.
    pub(crate) stdio: [RawFd; 3],
    pub(crate) limits: ProcessLimits,
    /// `cgroup.procs` of each of the run's cgroup folders.
    pub(crate) cgroup_procs: &'a [RawFd],
    /// Namespaces to create (without a private root, whose init already made them); 0 for none.
    pub(crate) unshare: c_int,
    /// Maps to write after `unshare` created a user namespace.
    pub(crate) id_maps: Option<&'a IdMaps>,
    pub(crate) landlock_fd: Option<RawFd>,
    pub(crate) private_uid: Option<u32>,
    /// The harness's pid, when the harness is the parent: the child dies with it.
    pub(crate) harness_parent: Option<libc::pid_t>,
    pub(crate) seccomp: Option<&'a sock_fprog>,
    pub(crate) report_fd: RawFd,
}

impl ChildPlan<'_> {
    /// Runs in the new child: sets it up and becomes the interpreter, or reports the failed step
    /// and exits. Only async-signal-safe syscalls; no allocation, no locks.
    pub(crate) fn exec(&self) -> ! {
        let step = self.set_up();
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        report::write_failure(self.report_fd, Stage::Child, step, errno);
        // SAFETY: leaves the child without running any destructor or atexit handler.
        unsafe { libc::_exit(127) }
    }

    /// Returns the index of the step that failed (`execve` returns only on failure).
    fn set_up(&self) -> u32 {
        // SAFETY (whole function): each call is a raw syscall on integers or on memory prepared
        // before the clone and alive for its lifetime.
        unsafe {
            if !redirect_stdio(self.stdio) {
                return 0;
            }
            if libc::setpgid(0, 0) != 0 {
                return 1;
            }
            if !reset_signals() {
                return 2;
            }
            if !self.set_limits() {
                return 3;
            }
            if !self
                .cgroup_procs
                .iter()
                .all(|&fd| libc::write(fd, b"0".as_ptr().cast(), 1) == 1)
            {
                return 4;
            }
            if self.unshare != 0 && libc::unshare(self.unshare) != 0 {
                return 5;
            }
            if self.id_maps.is_some_and(|maps| !maps.write()) {
                return 6;
            }
            // No-new-privileges always: with it, a setuid-root binary (su, passwd, mount) cannot
            // hand the private uid its privileges back. Landlock and seccomp both need it.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || self
                    .landlock_fd
                    .is_some_and(|fd| crate::landlock::restrict_self(fd) != 0)
            {
                return 7;
            }
            if self.private_uid.is_some_and(|uid| !become_user(uid)) {
                return 8;
            }
            let joined = libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<c_char>(),
            );
            // A kernel without keyrings (ENOSYS) has nothing to share either.
            if joined < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return 9;
            }
            // If the harness already died, getppid no longer names it: give up.
            if let Some(harness) = self.harness_parent
                && (libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 || libc::getppid() != harness)
            {
                return 10;
            }
            if libc::chdir(self.cwd.as_ptr()) != 0
                || self.seccomp.is_some_and(|filter| !crate::seccomp::install(filter))
            {
                return 11;
            }
            libc::execve(
                self.exec.path.as_ptr(),
                self.exec.argv.as_ptr(),
                self.exec.envp.as_ptr(),
            );
            12
        }
    }

    unsafe fn set_limits(&self) -> bool {
        let limits = self.limits;
        let cpu = limits.cpu_seconds;
        // SAFETY: plain setrlimit calls.
        unsafe {
            set_limit(libc::RLIMIT_CPU, cpu, cpu.saturating_add(1))
                && set_limit(libc::RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)
                && set_limit(libc::RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes)
                && set_limit(libc::RLIMIT_NPROC, limits.max_processes, limits.max_processes)
                && set_limit(libc::RLIMIT_CORE, 0, 0)
        }
    }
}

/// Clears the supplementary groups and sets every uid and gid to `uid`, which drops all
/// capabilities.
///
/// Raw system calls, not the C library's `setuid`: in a multi-threaded process glibc passes the
/// change to every thread under an internal lock, and a copy made by `clone3` (which skips glibc's
/// fork handlers) still believes in the harness's threads, and may hold that lock: it would hang.
unsafe fn become_user(uid: u32) -> bool {
    // SAFETY: plain system calls on integers.
    unsafe {
        libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, uid, uid, uid) == 0
            && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0
    }
}

/// Makes `sources` descriptors 0, 1 and 2 and marks every other descriptor close-on-exec. The
/// sources are first copied above 2, so none is overwritten before it is used.
unsafe fn redirect_stdio(sources: [RawFd; 3]) -> bool {
    // SAFETY: plain descriptor syscalls.
    unsafe {
        let mut copies = [-1; 3];
        for (copy, source) in copies.iter_mut().zip(sources) {
            *copy = libc::fcntl(source, libc::F_DUPFD_CLOEXEC, 3);
            if *copy < 0 {
                return false;
            }
        }
        for (target, copy) in copies.into_iter().enumerate() {
            if libc::dup2(copy, target as c_int) < 0 {
                return false;
            }
        }
        // Before Linux 5.11 (ENOSYS/EINVAL) only the descriptors' own close-on-exec flags apply.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);
        true
    }
}

/// Every signal handled by default and none blocked: the harness's handlers (and Rust's ignored
/// `SIGPIPE`) must not carry over. Async-signal-safe.
pub(crate) unsafe fn reset_signals() -> bool {
    // SAFETY: sigaction/sigprocmask with structs on the stack.
    unsafe {
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // Signals the C library reserves for itself refuse; they have no handler to reset.
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) == 0
    }
}

/// `setrlimit` with soft and hard values; async-signal-safe.
#[cfg(target_env = "gnu")]
unsafe fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `limit` is a valid struct on the stack.
    unsafe { libc::setrlimit(resource, &limit) == 0 }
}

/// `setrlimit` with soft and hard values; async-signal-safe.
#[cfg(not(target_env = "gnu"))]
unsafe fn set_limit(resource: libc::c_int, soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: `limit` is a valid struct on the stack.
    unsafe { libc::setrlimit(resource, &limit) == 0 }
}

/// open + write + close of a whole small buffer; async-signal-safe.
pub(crate) unsafe fn write_file(path: &CString, bytes: &[u8]) -> bool {
    // SAFETY: `path` is NUL-terminated and `bytes` valid for its length.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        written == bytes.len() as isize
    }
}
