//! Landlock rulesets, built in the harness and applied in the child.
//!
//! Why: file permissions alone do not contain a program. Root ignores them, and even an unprivileged
//! uid may write to world-writable places (`/tmp`, `/dev/shm`) or delete files there. Landlock is an
//! unprivileged Linux security module (kernel ≥ 5.13) that lets a process give up rights for itself
//! and its descendants for good. The ruleset handles every write-like filesystem right and grants
//! them beneath the run's temporary folder only (and writing to `/dev/null`); reading and executing
//! stay allowed everywhere, as Python needs its standard library. ABI ≥ 4 also handles TCP
//! connect/bind with no rule, so both are refused; ABI ≥ 6 scopes signals and abstract unix
//! sockets to the run, so it cannot signal the harness.
//!
//! The ruleset is created in the parent (that allocates and opens files). The run's folder is
//! added there too when it is a host folder; a private root's folder exists only inside the run's
//! mount namespace, so its init adds that rule with [`allow_beneath_fd`]. The child then calls
//! `landlock_restrict_self` on the ready descriptor. Both are single, async-signal-safe calls.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

const CREATE_RULESET_VERSION: u32 = 1 << 0;
const RULE_PATH_BENEATH: libc::c_int = 1;

const FS_WRITE_FILE: u64 = 1 << 1;
const FS_REMOVE_DIR: u64 = 1 << 4;
const FS_REMOVE_FILE: u64 = 1 << 5;
const FS_MAKE_CHAR: u64 = 1 << 6;
const FS_MAKE_DIR: u64 = 1 << 7;
const FS_MAKE_REG: u64 = 1 << 8;
const FS_MAKE_SOCK: u64 = 1 << 9;
const FS_MAKE_FIFO: u64 = 1 << 10;
const FS_MAKE_BLOCK: u64 = 1 << 11;
const FS_MAKE_SYM: u64 = 1 << 12;
const FS_REFER: u64 = 1 << 13; // ABI 2
const FS_TRUNCATE: u64 = 1 << 14; // ABI 3

const NET_BIND_TCP: u64 = 1 << 0; // ABI 4
const NET_CONNECT_TCP: u64 = 1 << 1;

const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0; // ABI 6
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The Landlock ABI version of the running kernel; 0 when Landlock is missing or disabled.
pub(crate) fn abi_version() -> u32 {
    // SAFETY: with the VERSION flag the kernel reads no attribute and returns the ABI number.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(abi).unwrap_or(0)
}

/// The write-like filesystem rights this ABI knows: all are handled, so all are denied by default.
fn write_rights(abi: u32) -> u64 {
    let mut rights = FS_WRITE_FILE
        | FS_REMOVE_DIR
        | FS_REMOVE_FILE
        | FS_MAKE_CHAR
        | FS_MAKE_DIR
        | FS_MAKE_REG
        | FS_MAKE_SOCK
        | FS_MAKE_FIFO
        | FS_MAKE_BLOCK
        | FS_MAKE_SYM;
    if abi >= 2 {
        rights |= FS_REFER;
    }
    if abi >= 3 {
        rights |= FS_TRUNCATE;
    }
    rights
}

/// A ruleset, ready for [`restrict_self`] in the child once the run's folder is allowed.
pub(crate) struct Ruleset {
    fd: OwnedFd,
    folder_rights: u64,
}

impl Ruleset {
    /// Every write right handled (denied), except writing to `/dev/null`; TCP refused where the
    /// ABI can; signals and abstract sockets scoped where it can.
    pub(crate) fn new(abi: u32) -> io::Result<Ruleset> {
        let handled_fs = write_rights(abi);
        let attr = RulesetAttr {
            handled_access_fs: handled_fs,
            handled_access_net: if abi >= 4 { NET_BIND_TCP | NET_CONNECT_TCP } else { 0 },
            scoped: if abi >= 6 {
                SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
            } else {
                0
            },
        };
        // SAFETY: `attr` is a valid, fully initialised struct of the size passed; older kernels
        // accept the larger struct because the fields they do not know are zero.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &raw const attr,
                size_of::<RulesetAttr>(),
                0u32,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this new descriptor (close-on-exec) and nothing else owns it.
        let ruleset = Ruleset {
            fd: unsafe { OwnedFd::from_raw_fd(fd as RawFd) },
            folder_rights: handled_fs,
        };
        let file_rights = FS_WRITE_FILE | if abi >= 3 { FS_TRUNCATE } else { 0 };
        ruleset.allow(Path::new("/dev/null"), file_rights)?;
        Ok(ruleset)
    }

    /// Allows every write right beneath the host folder `path`.
    pub(crate) fn allow_writes_beneath(&self, path: &Path) -> io::Result<()> {
        self.allow(path, self.folder_rights)
    }

    /// The rights to pass to [`allow_beneath_fd`] for the run's folder.
    pub(crate) fn folder_rights(&self) -> u64 {
        self.folder_rights
    }

    fn allow(&self, path: &Path, rights: u64) -> io::Result<()> {
        let target = File::options()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)?;
        if allow_beneath_fd(self.fd.as_raw_fd(), target.as_raw_fd(), rights) {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Adds a rule to `ruleset_fd` allowing `rights` beneath the open folder `dir_fd`. Async-signal-safe
/// (one system call); whether it worked.
pub(crate) fn allow_beneath_fd(ruleset_fd: RawFd, dir_fd: RawFd, rights: u64) -> bool {
    let rule = PathBeneathAttr {
        allowed_access: rights,
        parent_fd: dir_fd,
    };
    // SAFETY: `rule` is a valid packed struct and both descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset_fd,
            RULE_PATH_BENEATH,
            &raw const rule,
            0u32,
        )
    };
    rc == 0
}

/// Applies a ruleset to the calling thread and its future children. Async-signal-safe (one
/// syscall); needs `PR_SET_NO_NEW_PRIVS` first. Returns the raw syscall result.
pub(crate) fn restrict_self(ruleset_fd: RawFd) -> libc::c_long {
    // SAFETY: a plain syscall on an integer descriptor; no memory is passed.
    unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset_fd, 0u32) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_listing_and_executing_are_never_handled() {
        const EXECUTE_READ_FILE_READ_DIR: u64 = 0b1101;
        for abi in 1..=7 {
            assert_eq!(write_rights(abi) & EXECUTE_READ_FILE_READ_DIR, 0);
        }
    }
}
