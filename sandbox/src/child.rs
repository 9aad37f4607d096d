//! The setup the child performs on itself between `fork` and `execve` of `python3`.
//!
//! Why here and not in a helper binary: everything is a handful of syscalls on values prepared in
//! the harness (limits as integers, the Landlock ruleset as a ready descriptor, uid maps as bytes),
//! so the child needs no allocation and no lock, which is what makes `fork` from the multi-threaded
//! harness sound. Order matters:
//! 1. (done by `std::process::Command`: stdio pipes, `chdir` into the workdir, new process group)
//! 2. mark every inherited descriptor close-on-exec, so nothing the harness opened leaks in;
//! 3. resource limits, while still privileged enough to set any value;
//! 4. new network namespace (and user namespace when not root), needing privileges we drop next;
//! 5. `PR_SET_NO_NEW_PRIVS` (no setuid binary can regain root), then Landlock;
//! 6. private uid: supplementary groups cleared, gid and uid set (this also drops all capabilities);
//! 7. parent-death signal (after the uid change, which clears it), so a crashed harness takes the
//!    program down with it.
//!
//! A failing step writes its number to a report pipe before returning the error, so the harness can
//! name the step (`std` only passes the errno back).

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;

/// Names of the setup steps, indexed by the byte the child reports.
pub(crate) const STEPS: [&str; 7] = [
    "close-on-exec of inherited descriptors",
    "resource limits (setrlimit)",
    "new network namespace (unshare)",
    "user namespace id maps",
    "no-new-privileges and Landlock",
    "private uid (setgroups/setgid/setuid)",
    "parent-death signal",
];

/// How the child gets its network namespace.
pub(crate) enum Network {
    /// No namespace: the kernel refused it (reported in [`crate::Isolation`]).
    Shared,
    /// `unshare(CLONE_NEWNET)`, allowed to root.
    Namespace,
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNET)` for a non-root harness, mapping its own ids.
    UserNamespace(IdMaps),
}

/// `/proc/self/{setgroups,uid_map,gid_map}` paths and contents, prepared before `fork`.
pub(crate) struct IdMaps {
    setgroups: CString,
    uid_map_path: CString,
    gid_map_path: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl IdMaps {
    /// Maps the harness's own uid and gid onto themselves inside the new user namespace.
    pub(crate) fn identity() -> IdMaps {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let path = |name: &str| CString::new(format!("/proc/self/{name}")).unwrap_or_default();
        IdMaps {
            setgroups: path("setgroups"),
            uid_map_path: path("uid_map"),
            gid_map_path: path("gid_map"),
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }
}

/// Everything the child does to itself, as plain values.
pub(crate) struct ChildPlan {
    pub(crate) cpu_seconds: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) file_size_bytes: u64,
    pub(crate) max_processes: u64,
    pub(crate) network: Network,
    pub(crate) landlock_fd: Option<RawFd>,
    pub(crate) private_uid: Option<u32>,
    pub(crate) parent_pid: libc::pid_t,
    pub(crate) report_fd: RawFd,
}

impl ChildPlan {
    /// Runs in the forked child. Only async-signal-safe syscalls; no allocation, no locks.
    pub(crate) fn apply(&self) -> io::Result<()> {
        // SAFETY (whole function): each call is a raw syscall on integers or on memory prepared
        // before the fork and alive for the closure's lifetime.
        unsafe {
            // Step 0. Ignore ENOSYS/EINVAL on kernels before 5.11: then only std's own close-on-exec applies.
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC);

            // Step 1.
            let cpu = self.cpu_seconds;
            let ok = set_limit(libc::RLIMIT_CPU, cpu, cpu.saturating_add(1))
                && set_limit(libc::RLIMIT_AS, self.memory_bytes, self.memory_bytes)
                && set_limit(libc::RLIMIT_FSIZE, self.file_size_bytes, self.file_size_bytes)
                && set_limit(libc::RLIMIT_NPROC, self.max_processes, self.max_processes)
                && set_limit(libc::RLIMIT_CORE, 0, 0);
            if !ok {
                return Err(self.fail(1));
            }

            // Steps 2 and 3.
            match &self.network {
                Network::Shared => {}
                Network::Namespace => {
                    if libc::unshare(libc::CLONE_NEWNET) != 0 {
                        return Err(self.fail(2));
                    }
                }
                Network::UserNamespace(maps) => {
                    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) != 0 {
                        return Err(self.fail(2));
                    }
                    let ok = write_file(&maps.setgroups, b"deny")
                        && write_file(&maps.uid_map_path, &maps.uid_map)
                        && write_file(&maps.gid_map_path, &maps.gid_map);
                    if !ok {
                        return Err(self.fail(3));
                    }
                }
            }

            // Step 4. No-new-privileges always: with it, a setuid-root binary (su, passwd, mount)
            // cannot hand the private uid its privileges back.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(self.fail(4));
            }
            if let Some(fd) = self.landlock_fd
                && crate::landlock::restrict_self(fd) != 0
            {
                return Err(self.fail(4));
            }

            // Step 5.
            if let Some(uid) = self.private_uid
                && (libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(uid) != 0 || libc::setuid(uid) != 0)
            {
                return Err(self.fail(5));
            }

            // Step 6. If the harness already died, getppid no longer names it: give up.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 || libc::getppid() != self.parent_pid {
                return Err(self.fail(6));
            }
        }
        Ok(())
    }

    /// Reports `step` on the pipe and returns the errno of the failed call (read before `write`).
    fn fail(&self, step: u8) -> io::Error {
        let err = io::Error::last_os_error();
        // SAFETY: write of one byte from the stack to an open pipe; the result does not matter.
        unsafe { libc::write(self.report_fd, [step].as_ptr().cast(), 1) };
        err
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
unsafe fn write_file(path: &CString, bytes: &[u8]) -> bool {
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
