//! Private uids, one per concurrent run.
//!
//! Why: as root, a program could ignore file permissions and `RLIMIT_NPROC` (root is exempt). Running
//! each program as a uid that nothing else uses fixes both: permissions apply, and the process limit
//! counts this run alone. Without a private root, "kill every process of this uid" is also the
//! exact sweep that catches processes which left the process group ([`crate::cleanup`]); with one,
//! the run's pid namespace ends them all, even when the harness is killed, so a uid never meets a
//! survivor of an earlier run.
//!
//! Uids are `BASE + (harness pid) * SLOTS + slot`: distinct between concurrent runs of one harness
//! (the slot) and between harnesses alive at once (the pid, below 2^22 on Linux). They have no
//! passwd entry; the kernel does not need one.

use std::sync::{Condvar, Mutex, PoisonError};

const BASE: u32 = 0x7000_0000;
const SLOTS: u32 = 64;
const PID_LIMIT: u32 = 1 << 22;

static BUSY: Mutex<u64> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A uid reserved for one run; released on drop, which must come after the run's sweep.
pub(crate) struct UidLease {
    slot: u32,
    pub(crate) uid: u32,
}

/// The uid of slot 0, used by the capability probe.
pub(crate) fn probe_uid() -> u32 {
    uid_of(0)
}

fn uid_of(slot: u32) -> u32 {
    BASE + (std::process::id() % PID_LIMIT) * SLOTS + slot
}

/// Reserves a free uid, waiting while all `SLOTS` are running.
pub(crate) fn acquire() -> UidLease {
    let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
    while *busy == u64::MAX {
        busy = FREED.wait(busy).unwrap_or_else(PoisonError::into_inner);
    }
    let slot = busy.trailing_ones();
    *busy |= 1 << slot;
    UidLease {
        slot,
        uid: uid_of(slot),
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(PoisonError::into_inner);
        *busy &= !(1 << self.slot);
        FREED.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_and_reused() {
        let a = acquire();
        let b = acquire();
        assert_ne!(a.uid, b.uid);
        drop(a);
        let c = acquire();
        assert!(c.uid >= BASE && c.uid < BASE + PID_LIMIT * SLOTS);
        assert_ne!(b.uid, c.uid);
    }
}
