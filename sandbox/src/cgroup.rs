//! One control group per run: a memory budget, a process budget and a CPU-time budget for all of
//! the run's processes together.
//!
//! Why: resource limits (`setrlimit`) are per process, so a program forking 32 children had 32
//! times the memory and CPU it was given. A cgroup counts the run as one: the kernel's
//! out-of-memory killer acts when the run's total (page cache and its tmpfs folder included) passes
//! `memory_bytes`, `pids.max` caps its processes, and its CPU time is read from one counter, so a
//! run burning CPU in many processes is stopped once they used its budget together, and can take
//! no more than that from the samples running beside it.
//!
//! Not the CPU scheduler's weights (v1 `cpu`, v2 `cpu.weight`): a group per run made each Python
//! start 6 to 8 ms slower on a busy 2-core machine, and the budget above already bounds what a
//! sibling can take; the verdict depends on CPU time, not on the share.
//!
//! Where: below the harness's own cgroup, so the budgets nest inside whatever the harness itself
//! is given. cgroup v1 (memory, pids and cpuacct hierarchies, as on CI) is used when its memory
//! controller is mounted; otherwise cgroup v2 when the harness can create child groups with the
//! memory and pids controllers enabled (v2 counts CPU time in every group): v2 allows that only in a
//! group without processes of its own, so a harness alone in its group (`systemd-run --scope -p
//! Delegate=yes ...`) first moves itself into a leaf `sandbox-harness-PID` beside the runs.
//! Neither (not root, no delegation): no cgroup, and [`crate::Isolation::warnings`] says the limits
//! are per process.
//!
//! Each run's group is `sandbox-PID-N` (PID of the harness); it is removed when the run ends, and
//! groups left by a harness that was killed are removed by the next one.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::Limits;

/// The cgroup version a [`crate::Sandbox`] uses for its runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// Where runs' groups are created: one parent folder per hierarchy (v1), or one (v2).
#[derive(Clone, Debug)]
pub(crate) struct Cgroups {
    pub(crate) version: CgroupVersion,
    hierarchies: Vec<Hierarchy>,
}

/// A parent folder and the controllers of its hierarchy that a run uses.
#[derive(Clone, Debug)]
struct Hierarchy {
    parent: PathBuf,
    memory: bool,
    pids: bool,
    /// A CPU-time counter (v1 `cpuacct.usage`, v2 `cpu.stat`).
    cpu_usage: bool,
}

const PREFIX: &str = "sandbox-";
/// How long removing a run's group may wait for its last processes to leave it.
const REMOVAL_PATIENCE: Duration = Duration::from_millis(500);

impl Cgroups {
    /// The harness's cgroups if it may create runs' groups with the memory and pids controllers
    /// (tried out with one group); `Err` says why not.
    pub(crate) fn probe() -> Result<Cgroups, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
        let membership = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
        let cgroups = match v1_hierarchies(&mountinfo, &membership) {
            Some(hierarchies) => Cgroups {
                version: CgroupVersion::V1,
                hierarchies,
            },
            None => v2_hierarchy(&mountinfo, &membership)?,
        };
        cgroups.remove_stale();
        let trial = cgroups
            .create_run(&Limits::default())
            .map_err(|e| format!("cannot create a run's cgroup: {e}"))?;
        trial
            .remove()
            .map_err(|e| format!("cannot remove a run's cgroup: {e}"))?;
        Ok(cgroups)
    }

    /// A new, empty group for one run, with `limits` applied.
    pub(crate) fn create_run(&self, limits: &Limits) -> io::Result<RunCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut run = RunCgroup {
            version: self.version,
            dirs: Vec::new(),
            procs: Vec::new(),
            cpu_usage: None,
            memory_events: None,
        };
        for hierarchy in &self.hierarchies {
            let dir = hierarchy.parent.join(&name);
            fs::create_dir(&dir).map_err(|e| with_path(e, &dir))?;
            run.dirs.push(dir.clone());
            if hierarchy.memory {
                run.memory_events = Some(dir.join(self.memory_events_file()));
            }
            if hierarchy.cpu_usage {
                run.cpu_usage = Some(dir.join(self.cpu_usage_file()));
            }
            self.apply_limits(hierarchy, &dir, limits)?;
            let join = dir.join(self.join_file());
            let file = fs::File::options().write(true).open(&join);
            run.procs.push(file.map_err(|e| with_path(e, &join))?.into());
        }
        Ok(run)
    }

    fn apply_limits(&self, hierarchy: &Hierarchy, dir: &Path, limits: &Limits) -> io::Result<()> {
        let memory = limits.memory_bytes.to_string();
        let mut settings: Vec<(&str, &str, bool)> = Vec::new(); // (file, value, required)
        if hierarchy.memory {
            match self.version {
                // memsw (memory + swap) must come after the memory limit, which it may not undercut.
                CgroupVersion::V1 => settings.extend([
                    ("memory.limit_in_bytes", memory.as_str(), true),
                    ("memory.memsw.limit_in_bytes", memory.as_str(), false),
                ]),
                CgroupVersion::V2 => settings.extend([
                    ("memory.max", memory.as_str(), true),
                    ("memory.swap.max", "0", false),
                    ("memory.oom.group", "1", false),
                ]),
            }
        }
        let pids = limits.max_processes.to_string();
        if hierarchy.pids {
            settings.push(("pids.max", pids.as_str(), true));
        }
        for (file, value, required) in settings {
            let path = dir.join(file);
            match fs::write(&path, value) {
                Ok(()) => {}
                // Swap accounting and the group OOM kill are optional kernel features.
                Err(e) if !required && e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, &path)),
            }
        }
        Ok(())
    }

    /// The file a process writes `0` to to move itself into a group. In v1, `tasks` moves only the
    /// calling thread (the child is single-threaded then, so it is the whole process), and since
    /// Linux 5.17 a thread moving itself skips the global lock that `cgroup.procs` takes, which
    /// waits for an RCU grace period: 2 to 10 ms per run on a busy 2-core machine.
    fn join_file(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 => "tasks",
            CgroupVersion::V2 => "cgroup.procs",
        }
    }

    fn cpu_usage_file(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 => "cpuacct.usage",
            CgroupVersion::V2 => "cpu.stat",
        }
    }

    fn memory_events_file(&self) -> &'static str {
        match self.version {
            CgroupVersion::V1 => "memory.oom_control",
            CgroupVersion::V2 => "memory.events",
        }
    }

    /// Removes empty groups of harnesses that are gone (killed before they could remove them).
    pub(crate) fn remove_stale(&self) {
        for hierarchy in &self.hierarchies {
            let Ok(entries) = fs::read_dir(&hierarchy.parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(pid) = stale_owner(&name.to_string_lossy()) else {
                    continue;
                };
                // SAFETY: signal 0 only checks whether the process exists.
                let gone = unsafe { libc::kill(pid, 0) } != 0
                    && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
                if gone {
                    // A group still holding processes refuses; it is left for later.
                    let _ = fs::remove_dir(entry.path());
                }
            }
        }
    }
}

/// The harness pid in a run group's name `sandbox-PID-N` (or `sandbox-harness-PID`), if it is
/// not this process.
fn stale_owner(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(PREFIX)?;
    let pid = rest
        .strip_prefix("harness-")
        .unwrap_or(rest)
        .split('-')
        .next()?
        .parse()
        .ok()?;
    (pid != std::process::id() as libc::pid_t).then_some(pid)
}

/// One run's group: its folders, and descriptors of the files the child writes to to join it.
pub(crate) struct RunCgroup {
    version: CgroupVersion,
    dirs: Vec<PathBuf>,
    procs: Vec<OwnedFd>,
    cpu_usage: Option<PathBuf>,
    memory_events: Option<PathBuf>,
}

impl RunCgroup {
    /// Descriptors the child writes `0` to, which moves it into the group (see `join_file`).
    pub(crate) fn procs_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// CPU time used by every process of the run so far; `None` without a CPU counter.
    pub(crate) fn cpu_used(&self) -> io::Result<Option<Duration>> {
        let Some(path) = &self.cpu_usage else {
            return Ok(None);
        };
        let text = read_small(path)?;
        let used = match self.version {
            CgroupVersion::V1 => text.trim().parse::<u64>().ok().map(Duration::from_nanos),
            CgroupVersion::V2 => keyed_value(&text, "usage_usec").map(Duration::from_micros),
        };
        used.map(Some)
            .ok_or_else(|| io::Error::other(format!("{}: unexpected contents {text:?}", path.display())))
    }

    /// Whether the kernel's out-of-memory killer has killed a process of the run.
    pub(crate) fn out_of_memory(&self) -> io::Result<bool> {
        let Some(path) = &self.memory_events else {
            return Ok(false);
        };
        Ok(keyed_value(&read_small(path)?, "oom_kill").is_some_and(|kills| kills > 0))
    }

    /// Removes the group's folders; the run's processes must be dead. Waits briefly for exiting
    /// processes to leave.
    pub(crate) fn remove(self) -> io::Result<()> {
        drop(self.procs);
        let deadline = Instant::now() + REMOVAL_PATIENCE;
        for dir in &self.dirs {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(with_path(e, dir)),
                }
            }
        }
        Ok(())
    }
}

/// The parent folder in each v1 hierarchy holding memory, pids or cpuacct, if all three are
/// mounted.
fn v1_hierarchies(mountinfo: &str, membership: &str) -> Option<Vec<Hierarchy>> {
    let mut hierarchies: Vec<Hierarchy> = Vec::new();
    for mount in mountinfo
        .lines()
        .filter_map(Mount::parse)
        .filter(|m| m.fs_type == "cgroup")
    {
        let has = |controller: &str| mount.super_options.split(',').any(|option| option == controller);
        let (memory, pids, cpuacct) = (has("memory"), has("pids"), has("cpuacct"));
        if !(memory || pids || cpuacct) {
            continue;
        }
        let Some(own) = membership.lines().find_map(|line| {
            let mut fields = line.splitn(3, ':');
            let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
            controllers.split(',').any(&has).then_some(path)
        }) else {
            continue;
        };
        let Some(parent) = mount.folder_of(own) else {
            continue;
        };
        hierarchies.push(Hierarchy {
            parent,
            memory,
            pids,
            cpu_usage: cpuacct,
        });
    }
    let covers = |pick: fn(&Hierarchy) -> bool| hierarchies.iter().any(pick);
    let complete = covers(|h| h.memory) && covers(|h| h.pids) && covers(|h| h.cpu_usage);
    complete.then_some(hierarchies)
}

/// The harness's v2 group as the parent of runs' groups, with memory and pids enabled for its
/// children; moves the harness into a leaf group first if needed.
fn v2_hierarchy(mountinfo: &str, membership: &str) -> Result<Cgroups, String> {
    let mount = mountinfo
        .lines()
        .filter_map(Mount::parse)
        .find(|m| m.fs_type == "cgroup2")
        .ok_or("neither the cgroup v1 memory and pids controllers nor cgroup v2 are mounted")?;
    let own = membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("/proc/self/cgroup names no cgroup v2 group")?;
    let parent = mount
        .folder_of(own)
        .ok_or("the harness's cgroup v2 group is not visible")?;
    let offered = fs::read_to_string(parent.join("cgroup.controllers")).map_err(|e| format!("cgroup v2: {e}"))?;
    let offers = |controller: &str| offered.split_whitespace().any(|c| c == controller);
    if !(offers("memory") && offers("pids")) {
        return Err(format!(
            "cgroup v2 group {} does not offer the memory and pids controllers",
            parent.display()
        ));
    }
    let wanted = "+memory +pids";
    let control = parent.join("cgroup.subtree_control");
    if let Err(first) = fs::write(&control, wanted) {
        // v2 lets a group hand controllers to its children only when it holds no process itself.
        if first.raw_os_error() != Some(libc::EBUSY) {
            return Err(format!("cannot enable controllers in {}: {first}", control.display()));
        }
        move_into_leaf(&parent)?;
        fs::write(&control, wanted).map_err(|e| format!("cannot enable controllers in {}: {e}", control.display()))?;
    }
    Ok(Cgroups {
        version: CgroupVersion::V2,
        hierarchies: vec![Hierarchy {
            parent,
            memory: true,
            pids: true,
            cpu_usage: true,
        }],
    })
}

/// Moves the harness into `parent/sandbox-harness-PID`, if it is the only process of `parent`.
fn move_into_leaf(parent: &Path) -> Result<(), String> {
    let procs = fs::read_to_string(parent.join("cgroup.procs")).map_err(|e| format!("cgroup v2: {e}"))?;
    let me = std::process::id().to_string();
    if procs.lines().any(|pid| pid != me) {
        return Err(format!(
            "cgroup v2 group {} holds other processes, so it cannot have child groups with controllers; \
             run the harness in a group of its own (systemd-run --scope -p Delegate=yes ...)",
            parent.display()
        ));
    }
    let leaf = parent.join(format!("{PREFIX}harness-{me}"));
    fs::create_dir(&leaf)
        .and_then(|()| fs::write(leaf.join("cgroup.procs"), &me))
        .map_err(|e| format!("cannot move the harness into {}: {e}", leaf.display()))
}

/// One line of `/proc/self/mountinfo`, the fields used here.
struct Mount<'a> {
    root: &'a str,
    mount_point: &'a str,
    fs_type: &'a str,
    super_options: &'a str,
}

impl<'a> Mount<'a> {
    fn parse(line: &'a str) -> Option<Mount<'a>> {
        let fields: Vec<&str> = line.split(' ').collect();
        let separator = fields.iter().position(|&f| f == "-")?;
        Some(Mount {
            root: fields.get(3)?,
            mount_point: fields.get(4)?,
            fs_type: fields.get(separator + 1)?,
            super_options: fields.get(separator + 3)?,
        })
    }

    /// The folder of group `path` (as `/proc/self/cgroup` names it) under this mount, if visible.
    fn folder_of(&self, path: &str) -> Option<PathBuf> {
        let relative = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root)?
        };
        let relative = relative.trim_start_matches('/');
        let folder = Path::new(self.mount_point);
        Some(if relative.is_empty() {
            folder.to_path_buf()
        } else {
            folder.join(relative)
        })
    }
}

/// The number after `key` in a `key value` per line file (`cpu.stat`, `memory.events`, ...).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok())?
    })
}

fn read_small(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)
        .and_then(|mut file| file.read_to_string(&mut text))
        .map_err(|e| with_path(e, path))?;
    Ok(text)
}

fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const MEMBERSHIP: &str = "8:pids:/docker/abc\n4:memory:/jobs/7\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn v1_parents_follow_membership_and_mount_roots() {
        let hierarchies = v1_hierarchies(MOUNTINFO, MEMBERSHIP).unwrap();
        let parents: Vec<_> = hierarchies.iter().map(|h| h.parent.to_str().unwrap()).collect();
        assert_eq!(
            parents,
            [
                "/sys/fs/cgroup/cpuacct",
                "/sys/fs/cgroup/memory/jobs/7",
                "/sys/fs/cgroup/pids"
            ]
        );
        assert!(hierarchies[0].cpu_usage && hierarchies[1].memory && hierarchies[2].pids);
        let without_pids = MOUNTINFO.replace("rw,pids", "rw,devices");
        assert!(v1_hierarchies(&without_pids, MEMBERSHIP).is_none());
        let without_cpuacct = MOUNTINFO.replace("rw,cpuacct", "rw,devices");
        assert!(v1_hierarchies(&without_cpuacct, MEMBERSHIP).is_none());
    }

    #[test]
    fn counters_and_stale_names_are_read() {
        assert_eq!(
            keyed_value("usage_usec 1500\nuser_usec 1000\n", "usage_usec"),
            Some(1500)
        );
        assert_eq!(
            keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", "oom_kill"),
            Some(2)
        );
        assert_eq!(stale_owner("sandbox-12345-7"), Some(12345));
        assert_eq!(stale_owner("sandbox-harness-999"), Some(999));
        assert_eq!(stale_owner(&format!("sandbox-{}-0", std::process::id())), None);
        assert_eq!(stale_owner("other"), None);
    }
}
