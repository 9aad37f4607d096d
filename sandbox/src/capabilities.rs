//! Which isolation layers this kernel and this harness's privileges allow, probed once per process.
//!
//! Why: the sandbox must never be weaker than it says. Each layer is tried in a throw-away child
//! at first use; what fails is left out of every run and named in [`Isolation::warnings`], which
//! every [`crate::Execution`] carries.

use std::sync::OnceLock;

use crate::cgroup::{CgroupVersion, Cgroups};
use crate::child::IdMaps;
use crate::rootfs::RootPlan;
use crate::{landlock, seccomp, spawn, uid_pool};

/// The isolation layers a [`crate::Sandbox`] applies to each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// Each run has its own pid namespace, whose init dies with the run and with the harness, and
    /// mount namespace, whose root shows only read-only system folders and the run's own
    /// size-limited tmpfs folder (see `src/rootfs.rs`).
    pub private_root: bool,
    /// Each run has its own IPC namespace: SysV shared memory, message queues and semaphores are
    /// not the host's and vanish with the run.
    pub ipc_namespace: bool,
    /// Each run gets a new network namespace (only a down loopback inside).
    pub network_namespace: bool,
    /// The namespaces are made inside a new user namespace (the harness is not root).
    pub user_namespace: bool,
    /// Landlock ABI version; 0 when the kernel has no Landlock.
    pub landlock_abi: u32,
    /// Each run gets its own unprivileged uid (the harness is root): file permissions and the
    /// process limit apply, and the run cannot signal or trace anything outside it.
    pub private_uid: bool,
    /// A seccomp filter refuses keyrings, new namespaces, mounts and a few exploit-prone interfaces
    /// (see `src/seccomp.rs`).
    pub seccomp: bool,
    /// Each run has a cgroup of this version: one memory, process and CPU-time budget for all its
    /// processes.
    pub cgroup: Option<CgroupVersion>,
}

impl Isolation {
    /// Writing and deleting outside the run's folder is refused by Landlock.
    pub fn filesystem_contained(&self) -> bool {
        self.landlock_abi >= 1
    }

    /// No network traffic at all can leave the run.
    pub fn network_isolated(&self) -> bool {
        self.network_namespace
    }

    /// Outgoing and listening TCP is refused by Landlock (ABI ≥ 4), a second layer under the netns.
    pub fn tcp_refused_by_landlock(&self) -> bool {
        self.landlock_abi >= 4
    }

    /// Every layer is in place; the same as [`Isolation::warnings`] being empty.
    pub fn is_complete(&self) -> bool {
        self.warnings().is_empty()
    }

    /// One sentence per missing layer, naming what the program can then do. Empty when complete.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.private_root {
            warnings.push(
                "no private root (no pid and mount namespaces): processes that leave the process group can \
                 outlive a killed harness, unix sockets of host services are reachable by path, the run's \
                 folder is a host folder bounded only per file, and deleting it takes as long as the program \
                 made it"
                    .to_string(),
            );
        }
        if !self.ipc_namespace {
            warnings.push(
                "no IPC namespace: SysV shared memory, message queues and semaphores are shared with the host \
                 and can outlive the run"
                    .to_string(),
            );
        }
        if !self.network_namespace {
            warnings.push(if self.tcp_refused_by_landlock() {
                "no network namespace: TCP is refused by Landlock, but UDP and other sockets can reach the network"
                    .to_string()
            } else {
                "NETWORK NOT ISOLATED: no network namespace and no Landlock TCP rule; programs can open connections"
                    .to_string()
            });
        }
        warnings.extend(self.filesystem_warning());
        if !self.private_uid {
            warnings.push(
                "no private uid (harness not root): programs run as the harness's user, and RLIMIT_NPROC counts \
                 all of that user's processes unless a user namespace is used"
                    .to_string(),
            );
        }
        if !self.private_root && !self.private_uid && self.landlock_abi < 6 {
            warnings.push(format!(
                "Landlock ABI {} cannot scope signals: programs may signal the harness's other processes",
                self.landlock_abi
            ));
        }
        if !self.seccomp {
            warnings.push(
                "no seccomp filter: programs can use keyrings (a uid's user keyring passes data between runs), \
                 create user namespaces, and use io_uring, bpf and userfaultfd"
                    .to_string(),
            );
        }
        if self.cgroup.is_none() {
            warnings.push(
                "no cgroup: memory, processes and CPU time are limited per process (RLIMIT_AS, RLIMIT_NPROC, \
                 RLIMIT_CPU), not per run, so a run forking CPU burners can slow its siblings"
                    .to_string(),
            );
        }
        warnings
    }

    fn filesystem_warning(&self) -> Option<String> {
        if self.filesystem_contained() {
            return None;
        }
        Some(if self.private_root {
            "no Landlock: the private root's read-only mounts and file permissions protect the filesystem".to_string()
        } else if self.private_uid {
            "no Landlock: only file permissions of the private uid protect the filesystem; world-writable \
             places such as /tmp can be written"
                .to_string()
        } else {
            "FILESYSTEM NOT CONTAINED: no Landlock and no private uid; programs can write and delete \
             whatever the harness can"
                .to_string()
        })
    }
}

/// The layers available to this process, probed on first call, and why the cgroup layer is
/// missing (if it is).
pub(crate) fn probe() -> &'static Probed {
    static PROBED: OnceLock<Probed> = OnceLock::new();
    PROBED.get_or_init(|| {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let private_uid = root && in_child(drop_to_probe_uid);
        let private_root = private_root_works(!root);
        let user = if root { 0 } else { libc::CLONE_NEWUSER };
        let network_namespace = private_root || unshare_works(user | libc::CLONE_NEWNET);
        let ipc_namespace = private_root || unshare_works(user | libc::CLONE_NEWIPC);
        let cgroups = Cgroups::probe();
        Probed {
            isolation: Isolation {
                private_root,
                ipc_namespace,
                network_namespace,
                user_namespace: (private_root || network_namespace || ipc_namespace) && !root,
                landlock_abi: landlock::abi_version(),
                private_uid,
                seccomp: seccomp_works(),
                cgroup: cgroups.as_ref().ok().map(|c| c.version),
            },
            cgroups,
        }
    })
}

pub(crate) struct Probed {
    pub(crate) isolation: Isolation,
    /// Where runs' cgroups go, or why there are none.
    pub(crate) cgroups: Result<Cgroups, String>,
}

/// Namespace flags of a run's init (see [`crate::init`]).
pub(crate) fn private_root_namespaces(user_namespace: bool) -> libc::c_int {
    let user = if user_namespace { libc::CLONE_NEWUSER } else { 0 };
    user | libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWNET
}

/// Whether a child can be made the init of new namespaces and mount a tmpfs and a `/proc` there.
fn private_root_works(user_namespace: bool) -> bool {
    let (maps, plan) = (IdMaps::identity(), RootPlan::probe());
    let Ok(plan) = plan else { return false };
    let child = spawn::clone_into(private_root_namespaces(user_namespace), || {
        let ok = (!user_namespace || maps.write()) && plan.apply().is_ok();
        // SAFETY: leaves the probe child.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) }
    });
    child.is_ok_and(|mut child| child.wait().is_ok_and(|status| status == 0))
}

fn unshare_works(flags: libc::c_int) -> bool {
    // SAFETY: async-signal-safe syscall in a forked (hence single-threaded) child.
    in_child(|| unsafe { libc::unshare(flags) == 0 })
}

fn seccomp_works() -> bool {
    let Some(filter) = seccomp::Filter::new() else {
        return false;
    };
    let program = filter.program();
    // SAFETY: async-signal-safe syscalls in a forked child.
    in_child(|| unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && seccomp::install(&program) })
}

fn drop_to_probe_uid() -> bool {
    let uid = uid_pool::probe_uid();
    // SAFETY: async-signal-safe syscalls in a forked child.
    unsafe { libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(uid) == 0 && libc::setuid(uid) == 0 }
}

/// Runs `test` in a forked child and reports whether it returned true. `test` must be
/// async-signal-safe: the harness may be multi-threaded.
fn in_child(test: impl FnOnce() -> bool) -> bool {
    let child = spawn::fork(|| {
        // SAFETY: leaves the probe child.
        unsafe { libc::_exit(if test() { 0 } else { 1 }) }
    });
    child.is_ok_and(|mut child| child.wait().is_ok_and(|status| status == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_setup_has_no_warnings_and_each_missing_layer_is_named() {
        let full = Isolation {
            private_root: true,
            ipc_namespace: true,
            network_namespace: true,
            user_namespace: false,
            landlock_abi: 7,
            private_uid: true,
            seccomp: true,
            cgroup: Some(CgroupVersion::V1),
        };
        assert!(full.is_complete());
        let missing = [
            (
                Isolation {
                    private_root: false,
                    ..full
                },
                "no private root",
            ),
            (
                Isolation {
                    ipc_namespace: false,
                    ..full
                },
                "no IPC namespace",
            ),
            (
                Isolation {
                    network_namespace: false,
                    ..full
                },
                "no network namespace",
            ),
            (
                Isolation {
                    landlock_abi: 0,
                    ..full
                },
                "no Landlock",
            ),
            (
                Isolation {
                    private_uid: false,
                    ..full
                },
                "no private uid",
            ),
            (Isolation { seccomp: false, ..full }, "no seccomp filter"),
            (Isolation { cgroup: None, ..full }, "no cgroup"),
        ];
        for (isolation, warning) in missing {
            let warnings = isolation.warnings();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(warnings[0].starts_with(warning), "{warnings:?}");
        }
        let bare = Isolation {
            private_root: false,
            ipc_namespace: false,
            network_namespace: false,
            user_namespace: false,
            landlock_abi: 0,
            private_uid: false,
            seccomp: false,
            cgroup: None,
        };
        let text = bare.warnings().join("\n");
        assert!(
            text.contains("NETWORK NOT ISOLATED") && text.contains("FILESYSTEM NOT CONTAINED"),
            "{text}"
        );
    }
}
