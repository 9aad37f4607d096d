//! The report pipe: how the run's init and child tell the harness what happened to them.
//!
//! Why a pipe: between `clone` and `execve` a process can only make system calls, and the harness
//! needs to know which setup step failed (to name it in the error) and, with a private root, how
//! the program ended (the harness's own child is the run's init, not the program). Each record is
//! 16 bytes, below `PIPE_BUF`, so records written by two processes never interleave. The write
//! end is close-on-exec: the program never holds it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Who reports a failed step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The run's init, before its root plan (see [`crate::init::STEPS`]).
    Init,
    /// A step of the private root plan ([`crate::rootfs::RootPlan::describe`]).
    Root,
    /// The program's process (see [`crate::child::STEPS`]).
    Child,
}

/// One record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    SetupFailed {
        stage: Stage,
        step: u32,
        errno: i32,
    },
    /// The program's main process ended with this wait status.
    ProgramEnded {
        wait_status: i32,
    },
}

const SETUP_FAILED: u32 = 1;
const PROGRAM_ENDED: u32 = 2;
const RECORD: usize = 16;

/// A pipe whose read end does not block.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors, which are new and owned here.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fds[0], libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fds[0], libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((read, write))
}

/// Writes a failed step; async-signal-safe. A failed write cannot be reported either.
pub(crate) fn write_failure(fd: RawFd, stage: Stage, step: u32, errno: i32) {
    let stage = match stage {
        Stage::Init => 0u32,
        Stage::Root => 1,
        Stage::Child => 2,
    };
    write_record(fd, [SETUP_FAILED, stage, step, errno as u32]);
}

/// Writes the program's wait status; async-signal-safe.
pub(crate) fn write_program_ended(fd: RawFd, wait_status: i32) {
    write_record(fd, [PROGRAM_ENDED, 0, 0, wait_status as u32]);
}

fn write_record(fd: RawFd, words: [u32; 4]) {
    let mut bytes = [0u8; RECORD];
    for (chunk, word) in bytes.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // SAFETY: a write of a buffer on the stack.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), RECORD) };
}

/// Every record in the pipe, once all writers are gone (or at least done writing).
pub(crate) fn read_all(read_end: OwnedFd) -> io::Result<Vec<Report>> {
    let mut bytes = Vec::new();
    match File::from(read_end).read_to_end(&mut bytes) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(bytes.chunks_exact(RECORD).filter_map(parse).collect())
}

fn parse(record: &[u8]) -> Option<Report> {
    let word = |i: usize| u32::from_ne_bytes(record[i * 4..i * 4 + 4].try_into().unwrap_or_default());
    match word(0) {
        SETUP_FAILED => Some(Report::SetupFailed {
            stage: match word(1) {
                0 => Stage::Init,
                1 => Stage::Root,
                _ => Stage::Child,
            },
            step: word(2),
            errno: word(3) as i32,
        }),
        PROGRAM_ENDED => Some(Report::ProgramEnded {
            wait_status: word(3) as i32,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn records_round_trip_through_the_pipe() {
        let (read, write) = pipe().unwrap();
        write_failure(write.as_raw_fd(), Stage::Root, 7, libc::EPERM);
        write_program_ended(write.as_raw_fd(), 0x0900);
        drop(write);
        let reports = read_all(read).unwrap();
        assert_eq!(
            reports,
            [
                Report::SetupFailed {
                    stage: Stage::Root,
                    step: 7,
                    errno: libc::EPERM
                },
                Report::ProgramEnded { wait_status: 0x0900 }
            ]
        );
    }
}
