//! Helpers shared by the sandbox's integration tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use sandbox::{Execution, Limits, Sandbox};

/// Every run takes this shared; tests that inspect every process on the machine, or need runs to
/// reuse one uid, take it exclusively, so that no other test's run is mistaken for a leftover or
/// takes that uid. Such tests create their sandbox (which runs a self-test) before.
pub static PROCESS_TABLE: RwLock<()> = RwLock::new(());

pub fn sandbox(limits: Limits) -> Sandbox {
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    Sandbox::new(limits).unwrap_or_else(|e| panic!("sandbox unavailable: {e}"))
}

pub fn run(limits: Limits, program: &str) -> Execution {
    let sandbox = sandbox(limits);
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    sandbox
        .run_python(program)
        .unwrap_or_else(|e| panic!("sandbox error: {e}"))
}

pub fn assert_failed(run: &Execution) {
    assert!(!run.passed(), "a hostile program passed: {run:#?}");
    assert!(run.warnings.is_empty(), "{run:#?}");
}

/// Live (non-zombie) processes whose process group is `pgid` or whose real uid is `uid`.
pub fn live_processes_of(pgid: u32, uid: Option<u32>) -> Vec<u32> {
    live_processes(|process| process.pgid == pgid || (uid.is_some() && process.uid == uid))
}

/// Live processes whose name (`/proc/PID/comm`, which `prctl(PR_SET_NAME)` sets) is `name`, with
/// their real uids.
pub fn live_processes_named(name: &str) -> Vec<(u32, Option<u32>)> {
    let mut found = Vec::new();
    live_processes(|process| {
        if process.name == name {
            found.push((process.pid, process.uid));
        }
        false
    });
    found
}

/// Waits up to `patience` for `done`; whether it came true.
pub fn wait_for(patience: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line of the process table.
pub struct ProcessInfo {
    pub pid: u32,
    pub pgid: u32,
    pub uid: Option<u32>,
    pub name: String,
}

/// Pids of the live (non-zombie) processes for which `pick` is true.
pub fn live_processes(mut pick: impl FnMut(&ProcessInfo) -> bool) -> Vec<u32> {
    let mut picked = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name_part, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
            continue;
        }
        let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let info = ProcessInfo {
            pid,
            pgid: fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0),
            uid: status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok()),
            name: name_part.split_once('(').map_or("", |(_, name)| name).to_string(),
        };
        if pick(&info) {
            picked.push(pid);
        }
    }
    picked
}
