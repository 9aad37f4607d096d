//! Ending every process of a run.
//!
//! Why: the main process exiting (or being killed at the time limit) does not end its children: a
//! program may leave a sleeper or a fork bomb behind. Two sweeps run after every program:
//! - `SIGKILL` to the process group, which the child leads (`process_group(0)`), reaching every
//!   descendant that did not call `setsid`/`setpgid`;
//! - with a private uid, a short-lived helper that becomes that uid and calls `kill(-1, SIGKILL)`
//!   until no process is left: this reaches escapees too, and nothing outside the run (only that
//!   uid's processes can be signalled by it).
//!
//! Both are single `kill` calls that the kernel performs atomically over the process table (under
//! the task-list lock; a concurrent `fork` whose parent was just killed is aborted), so a fork bomb
//! cannot outrun them.
//!
//! Both run while the main process is still an unreaped zombie, so its pid (the group id) cannot
//! have been reused by an unrelated process.

use std::io;

/// `SIGKILL` to the process group `pgid`; a group already gone is fine.
pub(crate) fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain syscall; a negative pid addresses the group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Kills every process running as `uid`, from a forked helper that takes that uid.
pub(crate) fn kill_uid(uid: u32) -> io::Result<()> {
    // SAFETY: the child only makes async-signal-safe syscalls and leaves with `_exit`, so forking
    // from a multi-threaded process is sound.
    let helper = unsafe { libc::fork() };
    if helper < 0 {
        return Err(io::Error::last_os_error());
    }
    if helper == 0 {
        // SAFETY: see above; the helper never returns into Rust code.
        unsafe {
            if libc::setgid(uid) != 0 || libc::setuid(uid) != 0 {
                libc::_exit(2);
            }
            // One pass is atomic: the kernel signals every process under the task-list lock, and a
            // fork still in progress aborts when its parent has a fatal signal pending, so no new
            // process of the uid can appear after it. The second pass is belt and braces. The
            // return value cannot tell "none left" (zombies, including the main process we have
            // not reaped yet, still count as signalled), so it is not looked at.
            libc::kill(-1, libc::SIGKILL);
            libc::kill(-1, libc::SIGKILL);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the helper forked above.
        let rc = unsafe { libc::waitpid(helper, &raw mut status, 0) };
        if rc == helper {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the sweep helper could not become uid {uid} (wait status {status})"
        )))
    }
}
