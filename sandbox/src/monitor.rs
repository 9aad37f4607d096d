//! Watching a running program: its output, its exit and the wall-clock deadline, in one thread.
//!
//! Why one `poll` loop: output must be drained while the program runs (a full pipe would block it),
//! capped (a program printing forever must not fill the harness's memory), and the deadline must be
//! kept even when the program prints nothing. A pidfd (Linux ≥ 5.3) wakes the loop on exit; without
//! one, the loop checks every 10 ms. The exit is observed with `WNOWAIT`, so the main process stays
//! an unreaped zombie, keeping its pid (the process group id) reserved until the sweeps are done.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStderr, ChildStdout, ExitStatus};
use std::time::{Duration, Instant};

/// How the watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Exited,
    WallLimit,
    OutputLimit,
}

pub(crate) struct Outcome {
    pub(crate) end: End,
    pub(crate) exit: ExitStatus,
    pub(crate) wall: Duration,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// How long to keep reading output the killed processes left in the pipes.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// Poll interval when the kernel has no pidfd.
const TICK: Duration = Duration::from_millis(10);

/// Watches `child` until it exits, overruns `wall` or writes more than `max_output` bytes to one
/// stream; then calls `terminate` (kill everything of the run) and reaps the child. `terminate`
/// runs on every path, errors included, so no run outlives this call.
pub(crate) fn watch(
    child: &mut Child,
    started: Instant,
    wall: Duration,
    max_output: usize,
    terminate: impl FnOnce(),
) -> io::Result<Outcome> {
    let pid = child.id() as libc::pid_t;
    let streams = Stream::new(child.stdout.take(), max_output)
        .and_then(|stdout| Ok((stdout, Stream::new(child.stderr.take(), max_output)?)));
    let (mut stdout, mut stderr) = match streams {
        Ok(streams) => streams,
        Err(e) => {
            terminate();
            let _ = child.wait();
            return Err(e);
        }
    };
    let pidfd = open_pidfd(pid);
    let deadline = started + wall;

    let watched = watch_until_end(pid, deadline, pidfd.as_ref(), &mut stdout, &mut stderr);
    let wall = started.elapsed();
    terminate();
    let exit = child.wait()?;
    let end = watched?;

    let drain_deadline = Instant::now() + DRAIN_GRACE;
    while !(stdout.closed() && stderr.closed()) {
        let now = Instant::now();
        if now >= drain_deadline {
            break;
        }
        wait_readable(&[stdout.fd(), stderr.fd()], drain_deadline - now)?;
        stdout.read_available()?;
        stderr.read_available()?;
    }
    // Output that overflowed only after the exit, while draining, still breaks the limit.
    let end = if end == End::Exited && (stdout.overflowed || stderr.overflowed) {
        End::OutputLimit
    } else {
        end
    };
    Ok(Outcome {
        end,
        exit,
        wall,
        stdout: stdout.captured,
        stderr: stderr.captured,
    })
}

fn watch_until_end(
    pid: libc::pid_t,
    deadline: Instant,
    pidfd: Option<&OwnedFd>,
    stdout: &mut Stream<ChildStdout>,
    stderr: &mut Stream<ChildStderr>,
) -> io::Result<End> {
    loop {
        if has_exited(pid)? {
            return Ok(End::Exited);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(End::WallLimit);
        }
        let wait = if pidfd.is_some() {
            deadline - now
        } else {
            (deadline - now).min(TICK)
        };
        wait_readable(&[stdout.fd(), stderr.fd(), pidfd.map(AsRawFd::as_raw_fd)], wait)?;
        stdout.read_available()?;
        stderr.read_available()?;
        if stdout.overflowed || stderr.overflowed {
            return Ok(End::OutputLimit);
        }
    }
}

/// One output pipe, non-blocking, keeping at most `limit` bytes.
struct Stream<R> {
    source: Option<R>,
    captured: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl<R: Read + AsRawFd> Stream<R> {
    fn new(source: Option<R>, limit: usize) -> io::Result<Self> {
        if let Some(pipe) = &source {
            set_nonblocking(pipe.as_raw_fd())?;
        }
        Ok(Stream {
            source,
            captured: Vec::new(),
            limit,
            overflowed: false,
        })
    }

    fn fd(&self) -> Option<RawFd> {
        self.source.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn closed(&self) -> bool {
        self.source.is_none()
    }

    /// Reads what the pipe holds now; closes the stream at end of file.
    fn read_available(&mut self) -> io::Result<()> {
        let Some(pipe) = self.source.as_mut() else {
            return Ok(());
        };
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => {
                    self.source = None;
                    return Ok(());
                }
                Ok(n) => {
                    let room = self.limit.saturating_sub(self.captured.len());
                    self.captured.extend_from_slice(&chunk[..n.min(room)]);
                    if n > room {
                        // Stop reading: the run is over, and a writer blocked on the pipe gets EPIPE.
                        self.overflowed = true;
                        self.source = None;
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Blocks until one of `fds` is readable (or hung up) or `timeout` passes.
fn wait_readable(fds: &[Option<RawFd>], timeout: Duration) -> io::Result<()> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .flatten()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so a sub-millisecond remainder does not spin.
    let millis = libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
    // SAFETY: `polled` is a valid array of the length passed.
    let rc = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// Whether `pid` has exited, without reaping it.
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    // SAFETY: `info` is zeroed and written by the kernel; WNOWAIT leaves the child waitable.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
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

/// A descriptor that becomes readable when `pid` exits; `None` before Linux 5.3.
fn open_pidfd(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: plain syscall; the returned descriptor (close-on-exec) is owned here.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
