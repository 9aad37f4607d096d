//! A seccomp filter: the few system calls a test program never needs and that reach kernel state
//! the other layers do not isolate, refused with `EPERM`.
//!
//! Why a deny list and not an allow list: an allow list must track every call Python, libc and
//! the programs' own modules make on every architecture and kernel, and a miss fails correct
//! programs (the numbers are the product). The other layers already contain files, network,
//! processes and memory; the filter closes what they leave open:
//! - keyrings (`add_key`, `request_key`, `keyctl`): keys are not namespaced, and the user keyring
//!   of a uid outlives the process, so one run could leave data for the next run of that uid;
//! - new namespaces (`unshare`, `setns`, `clone` with a `CLONE_NEW*` flag): an unprivileged user
//!   namespace hands the program a full set of capabilities over it, the usual first step of a
//!   kernel exploit, and with them `chroot` and mounts; `clone3` gets `ENOSYS`, as seccomp cannot
//!   read its flags, and libc then falls back to `clone`;
//! - mounts and root changes (`mount`, `umount2`, `pivot_root`, `chroot` and the new mount API):
//!   refused anyway without capabilities, refused here too;
//! - interfaces that are rarely needed and often exploited: `bpf`, `userfaultfd`,
//!   `perf_event_open` and `io_uring` (whose operations bypass seccomp entirely).
//!
//! System calls of another ABI (32-bit x86 on x86_64) kill the process: they would bypass the
//! numbers below. The filter is built in the harness; the child only calls `prctl`.

use libc::{c_long, sock_filter, sock_fprog};

/// `AUDIT_ARCH_*` of this build; the filter exists for these two architectures only.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7;
/// x32 system calls on x86_64 are the native numbers with this bit set.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The namespace flags of `clone`: any of them is refused.
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80/* CLONE_NEWTIME */) as u32;

/// Refused with `EPERM`; see the module documentation for why each.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const DENIED: &[c_long] = &[
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_bpf,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

// Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
const LOAD_WORD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JUMP_EQUAL: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JUMP_GREATER_EQUAL: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JUMP_ANY_BIT: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RETURN: u16 = 0x06; // BPF_RET | BPF_K
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// Offsets in `struct seccomp_data`; the low half of a 64-bit argument comes first (little endian).
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0_LOW: u32 = 16;

/// Where a jump goes, resolved when the program is finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Next,
    Deny,
    NoSys,
    Kill,
    CloneFlags,
}

/// The compiled filter. Keep it alive while a child may install it.
pub(crate) struct Filter {
    code: Vec<sock_filter>,
}

impl Filter {
    /// The filter for this architecture; `None` where it is not written (not x86_64 or aarch64).
    pub(crate) fn new() -> Option<Filter> {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        return Some(Filter::build());
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        None
    }

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn build() -> Filter {
        let mut program = Program::default();
        program.load(OFFSET_ARCH);
        program.jump(JUMP_EQUAL, NATIVE_ARCH, Target::Next, Target::Kill);
        program.load(OFFSET_NR);
        #[cfg(target_arch = "x86_64")]
        program.jump(JUMP_GREATER_EQUAL, X32_SYSCALL_BIT, Target::NoSys, Target::Next);
        for &nr in DENIED {
            program.jump(JUMP_EQUAL, nr as u32, Target::Deny, Target::Next);
        }
        program.jump(JUMP_EQUAL, libc::SYS_clone as u32, Target::CloneFlags, Target::Next);
        program.jump(JUMP_EQUAL, libc::SYS_clone3 as u32, Target::NoSys, Target::Next);
        program.ret(RET_ALLOW);
        program.place(Target::CloneFlags);
        program.load(OFFSET_ARG0_LOW);
        program.jump(JUMP_ANY_BIT, NAMESPACE_FLAGS, Target::Deny, Target::Next);
        program.ret(RET_ALLOW);
        program.place(Target::Deny);
        program.ret(RET_ERRNO | libc::EPERM as u32);
        program.place(Target::NoSys);
        program.ret(RET_ERRNO | libc::ENOSYS as u32);
        program.place(Target::Kill);
        program.ret(RET_KILL_PROCESS);
        Filter { code: program.finish() }
    }

    /// The `sock_fprog` to pass to [`install`]; valid while `self` lives.
    pub(crate) fn program(&self) -> sock_fprog {
        sock_fprog {
            len: self.code.len() as u16,
            filter: self.code.as_ptr().cast_mut(),
        }
    }
}

/// Installs the filter on the calling thread. Async-signal-safe (one `prctl`); needs
/// `PR_SET_NO_NEW_PRIVS` first. Returns whether it worked.
pub(crate) fn install(program: &sock_fprog) -> bool {
    // SAFETY: `program` points at a valid filter that outlives the call; the kernel copies it.
    unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            program as *const sock_fprog,
            0,
            0,
        ) == 0
    }
}

/// A classic BPF program under construction, with forward jumps to named places.
#[derive(Default)]
struct Program {
    code: Vec<sock_filter>,
    /// (instruction index, true target, false target) of every jump.
    jumps: Vec<(usize, Target, Target)>,
    places: Vec<(Target, usize)>,
}

impl Program {
    fn load(&mut self, offset: u32) {
        self.code.push(instruction(LOAD_WORD, offset));
    }

    fn ret(&mut self, value: u32) {
        self.code.push(instruction(RETURN, value));
    }

    fn jump(&mut self, op: u16, value: u32, if_true: Target, if_false: Target) {
        self.jumps.push((self.code.len(), if_true, if_false));
        self.code.push(instruction(op, value));
    }

    fn place(&mut self, target: Target) {
        self.places.push((target, self.code.len()));
    }

    fn finish(mut self) -> Vec<sock_filter> {
        for &(at, if_true, if_false) in &self.jumps {
            let offset = |target: Target| -> u8 {
                if target == Target::Next {
                    return 0;
                }
                let (_, place) = self
                    .places
                    .iter()
                    .find(|(t, _)| *t == target)
                    .expect("every target is placed");
                u8::try_from(place - at - 1).expect("the filter is short enough for 8-bit jumps")
            };
            self.code[at].jt = offset(if_true);
            self.code[at].jf = offset(if_false);
        }
        self.code
    }
}

fn instruction(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

#[cfg(all(test, any(target_arch = "x86_64", target_arch = "aarch64")))]
mod tests {
    use super::*;

    /// Runs the filter like the kernel would, on one system call.
    fn verdict(filter: &Filter, arch: u32, nr: u32, arg0: u32) -> u32 {
        let data = |offset: u32| match offset {
            OFFSET_NR => nr,
            OFFSET_ARCH => arch,
            OFFSET_ARG0_LOW => arg0,
            _ => panic!("unexpected load at {offset}"),
        };
        let (mut pc, mut accumulator) = (0usize, 0u32);
        loop {
            let insn = filter.code[pc];
            let taken = match insn.code {
                LOAD_WORD => {
                    accumulator = data(insn.k);
                    pc += 1;
                    continue;
                }
                RETURN => return insn.k,
                JUMP_EQUAL => accumulator == insn.k,
                JUMP_GREATER_EQUAL => accumulator >= insn.k,
                JUMP_ANY_BIT => accumulator & insn.k != 0,
                other => panic!("unexpected opcode {other:#x}"),
            };
            pc += 1 + usize::from(if taken { insn.jt } else { insn.jf });
        }
    }

    #[test]
    fn denies_the_listed_calls_and_namespace_clones_and_allows_the_rest() {
        let filter = Filter::new().unwrap();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let check = |nr: c_long, arg0: u32| verdict(&filter, NATIVE_ARCH, nr as u32, arg0);
        for &nr in DENIED {
            assert_eq!(check(nr, 0), eperm, "syscall {nr}");
        }
        for allowed in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_wait4,
        ] {
            assert_eq!(check(allowed, 0), RET_ALLOW, "syscall {allowed}");
        }
        let fork_flags = (libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u32;
        assert_eq!(check(libc::SYS_clone, fork_flags), RET_ALLOW);
        assert_eq!(check(libc::SYS_clone, fork_flags | libc::CLONE_NEWUSER as u32), eperm);
        assert_eq!(check(libc::SYS_clone3, 0), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(verdict(&filter, 0x4000_0003, 1, 0), RET_KILL_PROCESS, "i386 on x86_64");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            check(X32_SYSCALL_BIT as c_long, 0),
            RET_ERRNO | libc::ENOSYS as u32,
            "x32"
        );
    }
}
