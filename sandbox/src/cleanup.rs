//! Ending every process of a run without a private root (with one, the kernel ends the run's pid
//! namespace with its init; see [`crate::init`]).
//!
//! Why: the main process exiting (or being killed at the time limit) does not end its children: a
//! program may leave a sleeper or a fork bomb behind. Two sweeps run after every program:
//! - `SIGKILL` to the process group, which the child leads (`setpgid(0, 0)`), reaching every
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
//!
//! `kill` only queues the signal: a killed process is gone once the scheduler has run its exit,
//! which on a busy machine can take a while (a big Python process unmapping its memory). So the uid
//! sweep repeats until `/proc` shows no live process of the uid, and only then may the uid serve
//! another run; a bounded wait that runs out is reported as a failed sweep.

use std::fs;
use std::io;
use std::time::{Duration, Instant};

/// How long the killed processes of a uid get to finish dying before the sweep counts as failed.
const DEATH_PATIENCE: Duration = Duration::from_secs(10);
/// Pause between looks at `/proc` while waiting.
const DEATH_POLL: Duration = Duration::from_millis(2);

/// `SIGKILL` to the process group `pgid`; a group already gone is fine.
pub(crate) fn kill_group(pgid: libc::pid_t) {
    // SAFETY: plain syscall; a negative pid addresses the group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// Kills every process running as `uid` and waits until none is left alive (zombies, which hold
/// no memory or CPU, do not count).
pub(crate) fn sweep_uid(uid: u32) -> io::Result<()> {
    let deadline = Instant::now() + DEATH_PATIENCE;
    loop {
        kill_uid(uid)?;
        let alive = live_processes_of_uid(uid)?;
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "{} process(es) of uid {uid} still alive {DEATH_PATIENCE:?} after SIGKILL: {alive:?}",
                alive.len()
            )));
        }
        std::thread::sleep(DEATH_POLL);
    }
}

/// Pids of processes whose real uid is `uid` and that are not zombies, from `/proc`.
fn live_processes_of_uid(uid: u32) -> io::Result<Vec<u32>> {
    let mut alive = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        // A process may vanish between listing and reading: that is the outcome we wait for.
        let Ok(status) = fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if status_is_live_for(&status, uid) {
            alive.push(pid);
        }
    }
    Ok(alive)
}

/// Whether a `/proc/PID/status` text describes a live (not zombie or dead) process of real uid `uid`.
fn status_is_live_for(status: &str, uid: u32) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
    };
    let real_uid = field("Uid:").and_then(|value| value.parse::<u32>().ok());
    let dead = matches!(field("State:"), Some("Z" | "X"));
    real_uid == Some(uid) && !dead
}

/// Sends `SIGKILL` to every process running as `uid`, from a forked helper that takes that uid.
fn kill_uid(uid: u32) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "Name:\tpython3\nState:\tR (running)\nUid:\t1879048257\t1879048257\t1879048257\t1879048257\n";

    #[test]
    fn only_live_processes_of_the_uid_count() {
        assert!(status_is_live_for(LIVE, 1_879_048_257));
        assert!(!status_is_live_for(LIVE, 1_879_048_258));
        let zombie = LIVE.replace("R (running)", "Z (zombie)");
        assert!(!status_is_live_for(&zombie, 1_879_048_257));
        let dying = LIVE.replace("R (running)", "D (disk sleep)");
        assert!(status_is_live_for(&dying, 1_879_048_257));
    }

    #[test]
    fn this_process_is_found_by_its_uid() {
        // SAFETY: plain syscall.
        let uid = unsafe { libc::getuid() };
        let alive = live_processes_of_uid(uid).unwrap();
        assert!(alive.contains(&std::process::id()), "{alive:?}");
    }
}
