//! The run's init: the harness's child, process 1 of the run's new pid, mount, IPC and network
//! namespaces. It builds the private root, starts the program's process and waits for it.
//!
//! Why an init of our own: the kernel kills every process of a pid namespace when its init ends,
//! atomically, whatever they did (`setsid`, double forks). So a run ends exactly when its init does:
//! - the program's main process exits: the init reports its status and exits;
//! - a limit is reached: the harness kills the init;
//! - the harness dies, even by `kill -9`: the init's parent-death signal (`SIGKILL`) kills it.
//!
//! With it the namespaces, the tmpfs folder and everything in them vanish. Nothing of a run can
//! outlive it, so a later run of the same uid never meets a survivor.
//!
//! Why not make the program itself process 1: the kernel protects a namespace's init from signals
//! it has no handler for, so `os.kill(os.getpid(), SIGKILL)`, `SIGXCPU` at the CPU limit or an
//! unhandled `SIGALRM` would not end the program as they do under lm-eval.
//!
//! The init is a copy of the harness made by `clone`, so, like the child, it only makes system
//! calls on values prepared before. It starts the program's process with `CLONE_VM | CLONE_VFORK`
//! on a stack of its own (as `posix_spawn` does), so the harness's page tables are not copied a
//! second time; the init is suspended until that process calls `execve`.

use std::ffi::{CStr, c_void};
use std::io;
use std::os::fd::RawFd;

use crate::child::{ChildPlan, IdMaps};
use crate::report::{self, Stage};
use crate::rootfs::RootPlan;

/// Names of the init's own steps, indexed by the number it reports.
pub(crate) const STEPS: [&str; 8] = [
    "closing the harness's descriptors",
    "default signal handling",
    "parent-death signal (the harness is gone)",
    "user namespace id maps",
    "writing the program file",
    "handing the run's folder to its uid",
    "allowing the run's folder in Landlock",
    "starting the program (clone)",
];

/// Everything the init does, as plain values.
pub(crate) struct InitPlan<'a> {
    pub(crate) child: &'a ChildPlan<'a>,
    pub(crate) root: &'a RootPlan,
    pub(crate) program: &'a [u8],
    pub(crate) id_maps: Option<&'a IdMaps>,
    /// Descriptors the init and the child need, ascending; all others are closed.
    pub(crate) keep_fds: &'a [RawFd],
    /// Descriptors only the child needs (its standard streams); closed once it started.
    pub(crate) child_only_fds: [RawFd; 3],
    /// A pidfd of the harness process, readable once it has exited.
    pub(crate) harness_pidfd: Option<RawFd>,
    /// Landlock ruleset descriptor and the rights to grant beneath the run's folder.
    pub(crate) landlock: Option<(RawFd, u64)>,
    pub(crate) private_uid: Option<u32>,
    /// Stack for the child while it shares the init's memory; prepared before `clone`.
    pub(crate) child_stack: &'a mut [u8],
    pub(crate) report_fd: RawFd,
}

impl InitPlan<'_> {
    /// Runs in the new init; never returns. Only async-signal-safe syscalls; no allocation.
    pub(crate) fn run(&mut self) -> ! {
        let child = match self.set_up() {
            Ok(child) => child,
            Err((stage, step)) => {
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                report::write_failure(self.report_fd, stage, step, errno);
                // SAFETY: leaves without destructors; the namespaces die with the init.
                unsafe { libc::_exit(1) }
            }
        };
        for fd in self.child_only_fds {
            // SAFETY: closes the init's copies; the child has its own.
            unsafe { libc::close(fd) };
        }
        let wait_status = reap_until(child);
        report::write_program_ended(self.report_fd, wait_status);
        // SAFETY: as above; the kernel now kills whatever else runs in the namespace.
        unsafe { libc::_exit(0) }
    }

    /// Everything up to starting the child; returns its pid or the failed (stage, step).
    fn set_up(&mut self) -> Result<libc::pid_t, (Stage, u32)> {
        // SAFETY (whole function): raw syscalls on integers and on memory prepared before clone.
        unsafe {
            close_all_but(self.keep_fds);
            if !crate::child::reset_signals() {
                return Err((Stage::Init, 1));
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
                || self.harness_pidfd.is_some_and(has_exited)
            {
                return Err((Stage::Init, 2));
            }
            if self.id_maps.is_some_and(|maps| !maps.write()) {
                return Err((Stage::Init, 3));
            }
            // Not dumpable: the program may not read the init's memory (a copy of the harness's).
            // After the id maps: it makes /proc/self root's, which a user namespace cannot write.
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            self.root.apply().map_err(|(step, errno)| {
                set_errno(errno);
                (Stage::Root, step as u32)
            })?;
            if !write_program(self.root.program_path(), self.program) {
                return Err((Stage::Init, 4));
            }
            if let Some(uid) = self.private_uid
                && libc::chown(self.root.folder().as_ptr(), uid, uid) != 0
            {
                return Err((Stage::Init, 5));
            }
            if let Some((ruleset, rights)) = self.landlock
                && !allow_folder(self.root.folder(), ruleset, rights)
            {
                return Err((Stage::Init, 6));
            }
            let child = self.start_child();
            if child < 0 {
                return Err((Stage::Init, 7));
            }
            Ok(child)
        }
    }

    /// Starts the child on its own stack, sharing the init's memory until it calls `execve`.
    unsafe fn start_child(&mut self) -> libc::pid_t {
        extern "C" fn entry(plan: *mut c_void) -> libc::c_int {
            // SAFETY: `plan` is the `ChildPlan` passed below, alive while the init is suspended.
            unsafe { (*plan.cast::<ChildPlan>()).exec() }
        }
        let top = self.child_stack.as_mut_ptr_range().end;
        // The stack grows down on every architecture Linux runs this on; align its top to 16.
        let top = top.wrapping_sub(top as usize % 16);
        let plan = (self.child as *const ChildPlan).cast_mut().cast::<c_void>();
        // SAFETY: the child runs `entry` on `child_stack`, which outlives it (the init is
        // suspended by CLONE_VFORK until the child calls execve or exits).
        unsafe {
            libc::clone(
                entry,
                top.cast(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                plan,
            )
        }
    }
}

/// Reaps every process handed to the init until `child` ends; returns its wait status.
fn reap_until(child: libc::pid_t) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waits for any child of the init (orphans of the run are re-parented to it).
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == child {
            return status;
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No child left (cannot happen while `child` is unreaped): report a crash-like end.
            return libc::SIGKILL;
        }
    }
}

/// Closes every descriptor not in `keep` (ascending).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut from = 0u32;
    for &fd in keep {
        let fd = fd as u32;
        if fd > from {
            // SAFETY: closes descriptors of this process only.
            unsafe { libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32) };
        }
        from = fd + 1;
    }
    unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) };
}

/// Whether the process behind `pidfd` has exited.
fn has_exited(pidfd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one descriptor without waiting.
    unsafe { libc::poll(&mut poll, 1, 0) == 1 && poll.revents & libc::POLLIN != 0 }
}

/// Writes the program to `path` in the run's folder, read-only.
unsafe fn write_program(path: &CStr, mut bytes: &[u8]) -> bool {
    // SAFETY: plain file syscalls on a buffer prepared before clone.
    unsafe {
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC;
        let fd = libc::open(path.as_ptr(), flags, 0o444);
        if fd < 0 {
            return false;
        }
        while !bytes.is_empty() {
            let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            if written <= 0 {
                libc::close(fd);
                return false;
            }
            bytes = &bytes[written as usize..];
        }
        libc::close(fd) == 0
    }
}

/// Grants `rights` beneath the run's `folder` in the Landlock ruleset.
unsafe fn allow_folder(folder: &CStr, ruleset: RawFd, rights: u64) -> bool {
    // SAFETY: open/close of the folder; the rule is added by one syscall.
    unsafe {
        let fd = libc::open(folder.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
        if fd < 0 {
            return false;
        }
        let allowed = crate::landlock::allow_beneath_fd(ruleset, fd, rights);
        libc::close(fd);
        allowed
    }
}

fn set_errno(errno: i32) {
    // SAFETY: errno is this thread's own variable.
    unsafe { *libc::__errno_location() = errno };
}
