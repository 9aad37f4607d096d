//! Which isolation layers this kernel and this harness's privileges allow, probed once per process.
//!
//! Why: the sandbox must never be weaker than it says. Each layer is tried in a throw-away forked
//! child at first use; what fails is left out of every run and named in [`Isolation::warnings`],
//! which every [`crate::Execution`] carries.

use std::sync::OnceLock;

use crate::{landlock, uid_pool};

/// The isolation layers a [`crate::Sandbox`] applies to each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Isolation {
    /// Each run gets a new network namespace (only a down loopback inside).
    pub network_namespace: bool,
    /// The network namespace is made inside a new user namespace (the harness is not root).
    pub user_namespace: bool,
    /// Landlock ABI version; 0 when the kernel has no Landlock.
    pub landlock_abi: u32,
    /// Each run gets its own unprivileged uid (the harness is root): file permissions and the
    /// process limit apply, and the run's escaped processes are swept by uid.
    pub private_uid: bool,
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

    /// Landlock filesystem rules, a network namespace and a private uid (which also keeps signals
    /// away from the harness) are all in place; the same as [`Isolation::warnings`] being empty.
    pub fn is_complete(&self) -> bool {
        self.filesystem_contained() && self.network_isolated() && self.private_uid
    }

    /// One sentence per missing layer, naming what the program can then do. Empty when complete.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if !self.network_namespace {
            warnings.push(if self.tcp_refused_by_landlock() {
                "no network namespace: TCP is refused by Landlock, but UDP and other sockets can reach the network"
                    .to_string()
            } else {
                "NETWORK NOT ISOLATED: no network namespace and no Landlock TCP rule; programs can open connections"
                    .to_string()
            });
        }
        if !self.filesystem_contained() {
            warnings.push(if self.private_uid {
                "no Landlock: only file permissions of the private uid protect the filesystem; world-writable \
                 places such as /tmp can be written"
                    .to_string()
            } else {
                "FILESYSTEM NOT CONTAINED: no Landlock and no private uid; programs can write and delete \
                 whatever the harness can"
                    .to_string()
            });
        }
        if !self.private_uid {
            warnings.push(
                "no private uid (harness not root): programs run as the harness's user, processes that leave \
                 the process group are not swept, and RLIMIT_NPROC counts all of that user's processes unless a \
                 user namespace is used"
                    .to_string(),
            );
        }
        if self.filesystem_contained() && self.landlock_abi < 6 && !self.private_uid {
            warnings.push(format!(
                "Landlock ABI {} cannot scope signals: programs may signal the harness's other processes",
                self.landlock_abi
            ));
        }
        warnings
    }
}

/// The layers available to this process, probed on first call.
pub(crate) fn probe() -> Isolation {
    static PROBED: OnceLock<Isolation> = OnceLock::new();
    *PROBED.get_or_init(|| {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let private_uid = root && in_child(drop_to_probe_uid);
        let network_namespace = in_child(if root { new_netns } else { new_userns_and_netns });
        Isolation {
            network_namespace,
            user_namespace: network_namespace && !root,
            landlock_abi: landlock::abi_version(),
            private_uid,
        }
    })
}

fn drop_to_probe_uid() -> bool {
    let uid = uid_pool::probe_uid();
    // SAFETY: async-signal-safe syscalls in a forked child.
    unsafe { libc::setgroups(0, std::ptr::null()) == 0 && libc::setgid(uid) == 0 && libc::setuid(uid) == 0 }
}

fn new_netns() -> bool {
    // SAFETY: async-signal-safe syscall in a forked child.
    unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 }
}

fn new_userns_and_netns() -> bool {
    // SAFETY: async-signal-safe syscall in a forked (hence single-threaded) child.
    unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) == 0 }
}

/// Runs `test` in a forked child and reports whether it returned true. `test` must be
/// async-signal-safe: the harness may be multi-threaded.
fn in_child(test: fn() -> bool) -> bool {
    // SAFETY: the child runs only `test` (async-signal-safe by contract) and `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return false;
    }
    if pid == 0 {
        // SAFETY: see above.
        unsafe { libc::_exit(if test() { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    while unsafe { libc::waitpid(pid, &raw mut status, 0) } < 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_setup_has_no_warnings_and_a_bare_one_names_every_gap() {
        let full = Isolation {
            network_namespace: true,
            user_namespace: false,
            landlock_abi: 7,
            private_uid: true,
        };
        assert!(full.is_complete());
        assert!(full.warnings().is_empty());
        let bare = Isolation {
            network_namespace: false,
            user_namespace: false,
            landlock_abi: 0,
            private_uid: false,
        };
        let text = bare.warnings().join("\n");
        assert!(
            text.contains("NETWORK NOT ISOLATED") && text.contains("FILESYSTEM NOT CONTAINED"),
            "{text}"
        );
    }
}
