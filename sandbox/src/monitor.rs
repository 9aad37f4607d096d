//! Watching a running program: its output, its exit, its budgets and the wall-clock deadline, in
//! one thread.
//!
//! Why one `poll` loop: output must be drained while the program runs (a full pipe would block it),
//! capped (a program printing forever must not fill the harness's memory), and the deadline must be
//! kept even when the program prints nothing. A pidfd (Linux ≥ 5.3) wakes the loop on exit; without
//! one, the loop checks every 10 ms. With a cgroup, the run's CPU time and out-of-memory kills are
//! read every 50 ms. The exit is observed with `WNOWAIT`, so the watched process stays an unreaped
//! zombie, keeping its pid (the process group id without a private root) reserved until the
//! cleanup is done.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::Limits;
use crate::cgroup::RunCgroup;
use crate::spawn::Process;

/// How the watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Exited,
    WallLimit,
    CpuLimit,
    MemoryLimit,
    OutputLimit,
}

pub(crate) struct Outcome {
    pub(crate) end: End,
    /// Raw wait status of the watched process.
    pub(crate) wait_status: i32,
    pub(crate) wall: Duration,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// How long to keep reading output the killed processes left in the pipes.
const DRAIN_GRACE: Duration = Duration::from_millis(200);
/// Poll interval when the kernel has no pidfd.
const TICK: Duration = Duration::from_millis(10);
/// Interval between reads of the run's cgroup counters.
const BUDGET_TICK: Duration = Duration::from_millis(50);

/// What the watch reads and enforces besides the process itself.
pub(crate) struct Watched<'a> {
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    pub(crate) started: Instant,
    pub(crate) limits: &'a Limits,
    pub(crate) cgroup: Option<&'a RunCgroup>,
}

/// Watches `process` until it exits or a limit is reached; then calls `terminate` (kill
/// everything of the run) and reaps the process. `terminate` runs on every path, errors included,
/// so no run outlives this call.
pub(crate) fn watch(process: &mut Process, watched: Watched, terminate: impl FnOnce()) -> io::Result<Outcome> {
    let streams = Stream::new(watched.stdout, watched.limits.max_output_bytes)
        .and_then(|stdout| Ok((stdout, Stream::new(watched.stderr, watched.limits.max_output_bytes)?)));
    let (mut stdout, mut stderr) = match streams {
        Ok(streams) => streams,
        Err(e) => {
            terminate();
            let _ = process.wait();
            return Err(e);
        }
    };
    let budget = Budget {
        cgroup: watched.cgroup,
        cpu: watched.limits.cpu,
    };
    let deadline = watched.started + watched.limits.wall;
    let ended = watch_until_end(process, deadline, &budget, &mut stdout, &mut stderr);
    let wall = watched.started.elapsed();
    terminate();
    let wait_status = process.wait()?;
    let mut end = ended?;

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
    // Output that overflowed only after the exit, while draining, still breaks the limit, and a
    // process of the run killed for memory fails the run even if the main one then exited.
    if end == End::Exited && (stdout.overflowed || stderr.overflowed) {
        end = End::OutputLimit;
    }
    if end == End::Exited && budget.out_of_memory()? {
        end = End::MemoryLimit;
    }
    Ok(Outcome {
        end,
        wait_status,
        wall,
        stdout: stdout.captured,
        stderr: stderr.captured,
    })
}

fn watch_until_end(
    process: &Process,
    deadline: Instant,
    budget: &Budget,
    stdout: &mut Stream,
    stderr: &mut Stream,
) -> io::Result<End> {
    let mut next_budget_check = Instant::now() + BUDGET_TICK;
    loop {
        if process.has_exited()? {
            return Ok(End::Exited);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(End::WallLimit);
        }
        if now >= next_budget_check {
            if let Some(end) = budget.exceeded()? {
                return Ok(end);
            }
            next_budget_check = now + BUDGET_TICK;
        }
        let mut wait = deadline - now;
        if process.pidfd().is_none() {
            wait = wait.min(TICK);
        }
        if budget.cgroup.is_some() {
            wait = wait.min(next_budget_check.saturating_duration_since(now));
        }
        wait_readable(&[stdout.fd(), stderr.fd(), process.pidfd()], wait)?;
        stdout.read_available()?;
        stderr.read_available()?;
        if stdout.overflowed || stderr.overflowed {
            return Ok(End::OutputLimit);
        }
    }
}

/// The run's CPU-time and memory budgets, read from its cgroup.
struct Budget<'a> {
    cgroup: Option<&'a RunCgroup>,
    cpu: Duration,
}

impl Budget<'_> {
    fn exceeded(&self) -> io::Result<Option<End>> {
        let Some(cgroup) = self.cgroup else {
            return Ok(None);
        };
        if cgroup.out_of_memory()? {
            return Ok(Some(End::MemoryLimit));
        }
        let over = cgroup.cpu_used()?.is_some_and(|used| used >= self.cpu);
        Ok(over.then_some(End::CpuLimit))
    }

    fn out_of_memory(&self) -> io::Result<bool> {
        self.cgroup.map_or(Ok(false), RunCgroup::out_of_memory)
    }
}

/// One output pipe, non-blocking, keeping at most `limit` bytes.
struct Stream {
    source: Option<File>,
    captured: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl Stream {
    fn new(pipe: OwnedFd, limit: usize) -> io::Result<Self> {
        set_nonblocking(pipe.as_raw_fd())?;
        Ok(Stream {
            source: Some(File::from(pipe)),
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
