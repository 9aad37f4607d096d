//! Runs untrusted, model-generated Python programs (HumanEval/MBPP completions) in a contained child
//! process, and reports how each one ended.
//!
//! A generated program is hostile until proven otherwise: it may loop, fork without end, eat memory,
//! fill the disk, delete files, read the harness's secrets or talk to the network. Nothing here runs
//! it in the harness's own process; every run gets a fresh child with these layers, each set up
//! before `execve` of `python3` (`src/child.rs` has the order):
//!
//! | layer | why | where it is unavailable |
//! |---|---|---|
//! | fresh temporary folder as cwd and `HOME`, deleted afterwards | the program's files never outlive it or meet another run's | always available |
//! | scrubbed environment (`env_clear`, then `PATH`, `LANG`, `HOME`, `PYTHONDONTWRITEBYTECODE`, `PYTHONHASHSEED`) | the harness's variables (tokens, keys) never reach the program; hashing is reproducible | always available |
//! | resource limits: `RLIMIT_CPU`, `RLIMIT_AS`, `RLIMIT_FSIZE`, `RLIMIT_NPROC`, `RLIMIT_CORE` | loops, memory and disk bombs fail inside the child instead of hurting the machine | always available; `RLIMIT_NPROC` needs the private uid or a user namespace to count only this run's processes |
//! | wall-clock limit, then `SIGKILL` to the whole process group | a sleeping or blocked program cannot stall the harness | always available |
//! | a private uid per concurrent run (root only) | file permissions apply again (root ignores them), `RLIMIT_NPROC` is enforced (root is exempt) and counts this run alone, and every process of the uid is swept at the end, even ones that left the process group | not root, or no `CAP_SETUID`: the run keeps the harness's uid and [`Isolation::warnings`] says so |
//! | a new network namespace | no interface but a down loopback: no TCP, UDP, raw or abstract-socket traffic leaves the run | kernel refuses (no netns, or no user namespaces when not root): reported, with Landlock's TCP rule as the partial fallback |
//! | Landlock | writing, creating, renaming or deleting anything outside the temporary folder fails, even where file permissions would allow it (`/tmp`); ABI ≥ 4 also refuses TCP connect/bind, ABI ≥ 6 keeps signals and abstract sockets inside the run | kernel without Landlock: reported; the filesystem is then protected only by the private uid's file permissions, or not at all |
//!
//! [`Sandbox::new`] probes which layers the kernel allows once, runs a self-test program through
//! them, and every [`Execution`] carries the [`Isolation`] it ran under with its warnings, so a weaker
//! setup is never silent.
//!
//! Not covered: reading stays allowed wherever file permissions allow it (Python needs its
//! standard library), other processes stay visible in `/proc`, and the temporary folder's total
//! size is bounded only per file (`RLIMIT_FSIZE`), not in sum. Without root, processes that leave
//! the process group (`setsid`) survive the run (see [`Isolation::warnings`]).
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
mod child;
mod cleanup;
mod error;
mod execution;
mod landlock;
mod limits;
mod monitor;
mod sandbox;
mod uid_pool;
mod workdir;

pub use capabilities::Isolation;
pub use error::SandboxError;
pub use execution::{Execution, Status};
pub use limits::Limits;
pub use sandbox::Sandbox;
