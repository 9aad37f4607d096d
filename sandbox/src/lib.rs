//! Runs untrusted, model-generated Python programs (HumanEval/MBPP completions) in a contained child
//! process, and reports how each one ended.
//!
//! A generated program is hostile until proven otherwise: it may loop, fork without end, eat memory,
//! fill the disk, delete files, read the harness's secrets, talk to the network or to local
//! services, leave processes or kernel objects behind for the next run. Nothing here runs it in the
//! harness's own process; every run gets fresh processes with these layers, each set up before
//! `execve` of `python3` (`src/init.rs` and `src/child.rs` have the order):
//!
//! | layer | what it stops | where it is unavailable |
//! |---|---|---|
//! | private root: a pid namespace whose init is the harness's child, and a mount namespace whose `/` holds only read-only system folders, a minimal `/dev`, the run's `/proc`, and the run's folder as a tmpfs | processes outliving the run or a `kill -9` of the harness (the kernel kills the namespace with its init); unix sockets of host services reached by path; the run's files meeting another run's or filling the host's disk (the tmpfs is `folder_bytes`, `folder_files`, and vanishes with the run, so deleting it takes the kernel milliseconds) | kernel or privileges refuse the namespaces or the mounts: a host temporary folder instead, process-group kill and uid sweep, [`Isolation::warnings`] says so |
//! | a new IPC namespace | SysV shared memory, message queues and semaphores shared with the host or left behind | kernel refuses it: reported |
//! | a new network namespace | any network traffic (TCP, UDP, raw, abstract unix sockets): only a down loopback inside | kernel refuses it: reported, with Landlock's TCP rule as the partial fallback |
//! | a cgroup per run (v1 memory, pids, cpuacct; or v2) | one memory, process and CPU-time budget for all of a run's processes, so a run forking CPU burners is stopped once they used its budget together, and takes no more from concurrent runs | no writable cgroup hierarchy: the per-process limits below only, reported |
//! | resource limits: `RLIMIT_CPU`, `RLIMIT_AS`, `RLIMIT_FSIZE`, `RLIMIT_NPROC`, `RLIMIT_CORE` | a single process's loops, allocations and files failing inside the child | always available |
//! | CPU-time limit, and a wall-clock backstop killing the whole run | loops (CPU time: the verdict does not depend on load); sleeping or blocked programs (wall clock) | always available |
//! | a private uid per concurrent run (root only), no capabilities, `no_new_privs` | file permissions apply again (root ignores them); `RLIMIT_NPROC` counts this run alone; no setuid binary regains root | not root: the harness's uid, reported |
//! | Landlock | writing, creating, renaming or deleting anything outside the run's folder, even where file permissions would allow it; ABI ≥ 4 refuses TCP connect/bind, ABI ≥ 6 keeps signals and abstract sockets inside the run | kernel without Landlock: reported |
//! | seccomp filter | keyrings (not namespaced: keys would pass between runs of a uid), new user namespaces and `chroot`, mounts, `bpf`, `userfaultfd`, `perf_event_open`, `io_uring` | not x86_64/aarch64, or no seccomp: reported |
//! | fresh session keyring, scrubbed environment (`PATH`, `LANG`, `HOME`, `TMPDIR`, `PYTHONDONTWRITEBYTECODE`, `PYTHONHASHSEED`) | the harness's keys and variables (tokens) reaching the program; hashing is reproducible | always available |
//!
//! [`Sandbox::new`] probes which layers the kernel allows once, runs a self-test program through
//! them, and every [`Execution`] carries the [`Isolation`] it ran under with its warnings, so a
//! weaker setup is never silent.
//!
//! Not covered: reading stays allowed wherever file permissions allow it in the system folders
//! shown (Python needs its standard library), and the machine's CPU and memory are shared with the
//! harness (the budgets bound each run, not the sum of concurrent runs).
//!
//! ```no_run
//! use sandbox::{Limits, Sandbox};
//! let sandbox = Sandbox::new(Limits::human_eval())?;
//! let run = sandbox.run_python("assert sum([1, 2]) == 3")?;
//! assert!(run.passed());
//! # Ok::<(), sandbox::SandboxError>(())
//! ```
//!
//! Linux only. Safe to call from many threads at once.

#![cfg(target_os = "linux")]

mod capabilities;
mod cgroup;
mod child;
mod cleanup;
mod error;
mod execution;
mod init;
mod landlock;
mod limits;
mod monitor;
mod report;
mod rootfs;
mod sandbox;
mod seccomp;
mod spawn;
mod uid_pool;
mod workdir;

pub use capabilities::Isolation;
pub use cgroup::CgroupVersion;
pub use error::SandboxError;
pub use execution::{Execution, Status};
pub use limits::Limits;
pub use sandbox::Sandbox;
