//! Starting a run's first process, and the harness's handle on it.
//!
//! Why not `std::process::Command`: the run's init must be created inside its new pid namespace
//! (`clone3` with `CLONE_NEWPID`; `unshare` would move only its children there), and it runs setup
//! code instead of `execve`. Both ways here copy the calling thread like `fork`. `clone3` does not
//! run the C library's fork handlers, so in its copy glibc still counts the harness's threads and
//! its internal locks may be held: only thin system-call wrappers may be used there (no `setuid`,
//! which glibc passes to every thread under a lock, no allocation, no stdio). The closure given
//! runs in the copy and must only make async-signal-safe calls; it should end the process itself
//! (`execve`, `_exit`), and the copy exits with 127 if it returns.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// A child of the harness: its pid (reserved until reaped) and a pidfd where the kernel has them.
pub(crate) struct Process {
    pub(crate) pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    reaped: bool,
}

impl Process {
    pub(crate) fn pidfd(&self) -> Option<RawFd> {
        self.pidfd.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Whether the process has exited, without reaping it (its pid stays reserved).
    pub(crate) fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: `info` is zeroed and written by the kernel; WNOWAIT leaves the child waitable.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(err)
            };
        }
        // SAFETY: after a successful waitid, si_pid is 0 when no child changed state.
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// Waits for the process to end and reaps it; returns its raw wait status.
    pub(crate) fn wait(&mut self) -> io::Result<i32> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                self.reaped = true;
                return Ok(status);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for Process {
    /// A process the harness lost track of (an error path) is killed and reaped, never left.
    fn drop(&mut self) {
        if !self.reaped {
            kill(self.pid);
            let _ = self.wait();
        }
    }
}

/// `SIGKILL` to child `pid`; safe while it is unreaped (its pid cannot name another process).
pub(crate) fn kill(pid: libc::pid_t) {
    // SAFETY: plain syscall on our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Starts `entry` in a new process created inside the new namespaces `namespaces`
/// (`CLONE_NEW*` flags), with a pidfd. Linux ≥ 5.3.
pub(crate) fn clone_into<F: FnOnce()>(namespaces: libc::c_int, entry: F) -> io::Result<Process> {
    let mut pidfd: RawFd = -1;
    // SAFETY: zeroed clone_args is a valid "no options" value; the fields set below are plain
    // integers and a pointer the kernel writes the pidfd to before returning.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = (namespaces | libc::CLONE_PIDFD) as u64;
    args.pidfd = (&raw mut pidfd) as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: without CLONE_VM the child gets a copy of this thread's memory, like fork.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &raw mut args, size_of::<libc::clone_args>()) };
    match pid {
        0 => in_child(entry),
        pid if pid < 0 => Err(io::Error::last_os_error()),
        pid => Ok(Process {
            pid: pid as libc::pid_t,
            // SAFETY: the kernel just created this descriptor for us.
            pidfd: Some(unsafe { OwnedFd::from_raw_fd(pidfd) }),
            reaped: false,
        }),
    }
}

/// Starts `entry` in a forked process; a pidfd where the kernel has them (Linux ≥ 5.3).
pub(crate) fn fork<F: FnOnce()>(entry: F) -> io::Result<Process> {
    // SAFETY: the child runs only `entry`, which is async-signal-safe by contract.
    let pid = unsafe { libc::fork() };
    match pid {
        0 => in_child(entry),
        pid if pid < 0 => Err(io::Error::last_os_error()),
        pid => {
            // SAFETY: the child is unreaped, so `pid` names it; the descriptor is new and ours.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
            Ok(Process {
                pid,
                pidfd: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
                reaped: false,
            })
        }
    }
}

/// Runs `entry` in the new process, which never returns into the harness's code.
fn in_child(entry: impl FnOnce()) -> ! {
    entry();
    // SAFETY: leaves the copy without running the harness's destructors or atexit handlers.
    unsafe { libc::_exit(127) }
}

/// A pidfd of the harness itself, opened once: the run's init polls it to learn whether the
/// harness died before the init's parent-death signal was armed. `None` before Linux 5.3.
pub(crate) fn harness_pidfd() -> Option<RawFd> {
    static PIDFD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    PIDFD
        .get_or_init(|| {
            // SAFETY: plain syscall; the descriptor (close-on-exec) is owned by the static.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id() as libc::pid_t, 0u32) };
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
        })
        .as_ref()
        .map(AsRawFd::as_raw_fd)
}
