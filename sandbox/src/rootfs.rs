//! The run's private root: what the program sees as `/` inside its mount namespace.
//!
//! Why a new root and not the host's with write protection: a unix socket is reached by its path,
//! and `connect` needs only write permission on the socket file, which neither a read-only mount
//! nor Landlock (up to ABI 7) takes away, so a world-writable socket of a host service (under
//! `/tmp`, `/run`, a home folder) stays reachable from any view of the host's tree. The new root is
//! an allow list instead: an empty read-only tmpfs holding
//! - the system folders Python needs (`/usr`, `/etc`, `/lib*`, `/bin`, `/sbin`) and the
//!   interpreter's own prefixes, bound read-only (symlinks such as `/bin -> usr/bin` copied);
//! - `/dev` with `null`, `zero`, `full`, `random`, `urandom` and the usual `/proc/self/fd` links;
//!   `/dev/shm` points to `/tmp`, so POSIX shared memory and semaphores stay in the run's folder;
//! - a new `/proc` of the run's pid namespace (`hidepid=2`: the run's init, owned by root, is
//!   invisible to the program's private uid);
//! - `/tmp`: the run's folder, its working directory and `HOME`, a tmpfs of `folder_bytes` and
//!   `folder_files`, gone with the namespace.
//!
//! Everything else of the host (`/tmp`, `/run`, `/var`, `/home`, `/root`, `/sys`, other mounts) does
//! not exist there. The plan is prepared in the harness as C strings; the run's init applies it
//! with one system call per step (`mount`, `mkdir`, `symlink`, `pivot_root`), so it may run between
//! `clone` and `execve`. A failing step is reported by its index, and [`Step::describe`] names it.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::workdir::PROGRAM_FILE;
use crate::{Limits, SandboxError};

/// Where the new root is assembled in the init's own mount namespace (it hides the host's `/tmp`
/// there only, which the program must not see anyway) before `pivot_root` makes it `/`.
const STAGING: &str = "/tmp";
/// Top-level system entries shown read-only when they exist (folders bound, symlinks copied).
const SYSTEM_ENTRIES: [&str; 8] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"];
/// Device files shown in `/dev`, bound from the host's.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];
/// Paths the sandbox replaces; an interpreter living there cannot be shown.
const REPLACED: [&str; 3] = ["/tmp", "/dev", "/proc"];
/// The run's folder inside the root: its tmpfs, the program's cwd, `HOME` and `TMPDIR`.
const RUN_FOLDER: &str = "/tmp";

/// One system call of the plan.
enum Step {
    MakeDir(CString),
    MakeFile(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Mount(MountCall),
    /// `chdir` to the folder, `pivot_root(".", ".")`, then detach the old root from it.
    PivotRoot(CString),
    ChangeDir(CString),
}

struct MountCall {
    source: CString,
    target: CString,
    fs_type: Option<CString>,
    flags: libc::c_ulong,
    data: Option<CString>,
}

/// The steps, in order, and where the run's folder and program file are once they are done.
pub(crate) struct RootPlan {
    steps: Steps,
    folder: CString,
    program: CString,
}

impl RootPlan {
    /// The plan for runs of `python` under `limits`: the system folders plus the interpreter's own
    /// prefixes, which it is asked for.
    pub(crate) fn for_interpreter(python: &Path, limits: &Limits) -> Result<RootPlan, SandboxError> {
        let folders = interpreter_folders(python)?;
        let extra = extra_folders(&folders)
            .map_err(|problem| SandboxError::NoPython(format!("{}: {problem}", python.display())))?;
        RootPlan::new(&extra, limits.folder_bytes, limits.folder_files)
            .map_err(|e| SandboxError::io("preparing the private root", e))
    }

    /// The plan for runs of the interpreter whose prefixes outside the system folders are
    /// `extra_folders`, with a run folder of `folder_bytes` and `folder_files`.
    fn new(extra_folders: &[PathBuf], folder_bytes: u64, folder_files: u64) -> io::Result<RootPlan> {
        let mut plan = Builder::default();
        let (no_suid_dev, staging) = (libc::MS_NOSUID | libc::MS_NODEV, Path::new(STAGING));
        plan.mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        let root_options = "mode=0755,size=1m,nr_inodes=4096";
        plan.mount("tmpfs", staging, Some("tmpfs"), no_suid_dev, Some(root_options))?;
        for entry in SYSTEM_ENTRIES.iter().map(Path::new) {
            match entry.symlink_metadata() {
                Ok(meta) if meta.file_type().is_symlink() => plan.symlink(&entry.read_link()?, entry)?,
                Ok(meta) if meta.is_dir() => plan.bind_read_only(entry, entry)?,
                _ => {}
            }
        }
        for folder in extra_folders {
            plan.bind_read_only(&folder.canonicalize()?, folder)?;
        }
        plan.populate_dev()?;
        plan.make_dir(Path::new("/proc"))?;
        let proc_flags = no_suid_dev | libc::MS_NOEXEC;
        plan.mount(
            "proc",
            &Builder::staged(Path::new("/proc")),
            Some("proc"),
            proc_flags,
            Some("hidepid=2"),
        )?;
        let folder = Path::new(RUN_FOLDER);
        plan.make_dir(folder)?;
        let options = format!("mode=0700,size={folder_bytes},nr_inodes={folder_files}");
        plan.mount(
            "tmpfs",
            &Builder::staged(folder),
            Some("tmpfs"),
            no_suid_dev,
            Some(&options),
        )?;
        let read_only = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | no_suid_dev;
        plan.mount("none", staging, None, read_only, None)?;
        plan.steps.push(Step::PivotRoot(cstring(STAGING)?));
        plan.steps.push(Step::ChangeDir(path_cstring(folder)?));
        Ok(RootPlan {
            steps: Steps(plan.steps),
            folder: path_cstring(folder)?,
            program: path_cstring(&folder.join(PROGRAM_FILE))?,
        })
    }

    /// The run's folder as the program sees it.
    pub(crate) fn folder(&self) -> &CStr {
        &self.folder
    }

    /// The program file in the run's folder.
    pub(crate) fn program_path(&self) -> &CStr {
        &self.program
    }

    /// The namespace-dependent part of every plan, for probing: a private tmpfs and a `/proc`.
    pub(crate) fn probe() -> io::Result<Steps> {
        let mut plan = Builder::default();
        plan.mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
        let no_suid_dev = libc::MS_NOSUID | libc::MS_NODEV;
        plan.mount("tmpfs", Path::new(STAGING), Some("tmpfs"), no_suid_dev, Some("size=1m"))?;
        plan.make_dir(Path::new("/proc"))?;
        let proc_flags = no_suid_dev | libc::MS_NOEXEC;
        plan.mount(
            "proc",
            &Builder::staged(Path::new("/proc")),
            Some("proc"),
            proc_flags,
            Some("hidepid=2"),
        )?;
        Ok(Steps(plan.steps))
    }

    /// Applies every step; see [`Steps::apply`].
    pub(crate) fn apply(&self) -> Result<(), (usize, i32)> {
        self.steps.apply()
    }

    /// What step `index` does, for error messages.
    pub(crate) fn describe(&self, index: usize) -> String {
        self.steps.describe(index)
    }
}

/// System calls to make in order.
pub(crate) struct Steps(Vec<Step>);

impl Steps {
    /// Applies every step; on failure, the failing step's index and errno. Async-signal-safe.
    pub(crate) fn apply(&self) -> Result<(), (usize, i32)> {
        for (index, step) in self.0.iter().enumerate() {
            if !step.apply() {
                return Err((index, io::Error::last_os_error().raw_os_error().unwrap_or(0)));
            }
        }
        Ok(())
    }

    /// What step `index` does, for error messages.
    pub(crate) fn describe(&self, index: usize) -> String {
        self.0
            .get(index)
            .map_or_else(|| format!("root step {index}"), Step::describe)
    }
}

impl Step {
    /// One system call (two or three for `PivotRoot`); whether it worked.
    fn apply(&self) -> bool {
        // SAFETY (whole function): each call takes NUL-terminated strings prepared before `clone`.
        unsafe {
            match self {
                Step::MakeDir(path) => {
                    libc::mkdir(path.as_ptr(), 0o755) == 0
                        || io::Error::last_os_error().raw_os_error() == Some(libc::EEXIST)
                }
                Step::MakeFile(path) => {
                    let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                    fd >= 0 && libc::close(fd) == 0
                }
                Step::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()) == 0,
                Step::Mount(call) => {
                    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
                    libc::mount(
                        call.source.as_ptr(),
                        call.target.as_ptr(),
                        ptr(&call.fs_type),
                        call.flags,
                        ptr(&call.data).cast(),
                    ) == 0
                }
                Step::PivotRoot(folder) => {
                    let here = c".".as_ptr();
                    libc::chdir(folder.as_ptr()) == 0
                        && libc::syscall(libc::SYS_pivot_root, here, here) == 0
                        && libc::umount2(here, libc::MNT_DETACH) == 0
                }
                Step::ChangeDir(folder) => libc::chdir(folder.as_ptr()) == 0,
            }
        }
    }

    fn describe(&self) -> String {
        let show = |s: &CString| s.to_string_lossy().into_owned();
        match self {
            Step::MakeDir(path) => format!("creating the folder {}", show(path)),
            Step::MakeFile(path) => format!("creating the mount point {}", show(path)),
            Step::Symlink { target, link } => format!("linking {} to {}", show(link), show(target)),
            Step::Mount(call) => {
                let fs_type = call.fs_type.as_ref().map_or("bind".into(), show);
                format!(
                    "mounting {} ({fs_type}, flags {:#x}) on {}",
                    show(&call.source),
                    call.flags,
                    show(&call.target)
                )
            }
            Step::PivotRoot(folder) => format!("making {} the root (pivot_root)", show(folder)),
            Step::ChangeDir(folder) => format!("entering {}", show(folder)),
        }
    }
}

/// Collects steps; paths given to it are as seen from the finished root, and land under `STAGING`.
#[derive(Default)]
struct Builder {
    steps: Vec<Step>,
    made: Vec<PathBuf>,
}

impl Builder {
    fn staged(inside: &Path) -> PathBuf {
        Path::new(STAGING).join(inside.strip_prefix("/").unwrap_or(inside))
    }

    /// A `mount` call on `target` as the init sees it (staged paths, `/`, or `STAGING` itself).
    fn mount(
        &mut self,
        source: impl AsRef<OsStr>,
        target: &Path,
        fs_type: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.steps.push(Step::Mount(MountCall {
            source: bytes_cstring(source.as_ref().as_bytes())?,
            target: path_cstring(target)?,
            fs_type: fs_type.map(cstring).transpose()?,
            flags,
            data: data.map(cstring).transpose()?,
        }));
        Ok(())
    }

    /// `mkdir` of `inside` and of its missing parents.
    fn make_dir(&mut self, inside: &Path) -> io::Result<()> {
        let mut path = PathBuf::from("/");
        for component in inside.components() {
            let Component::Normal(name) = component else { continue };
            path.push(name);
            if !self.made.contains(&path) {
                self.steps.push(Step::MakeDir(path_cstring(&Self::staged(&path))?));
                self.made.push(path.clone());
            }
        }
        Ok(())
    }

    fn symlink(&mut self, target: &Path, inside: &Path) -> io::Result<()> {
        self.steps.push(Step::Symlink {
            target: path_cstring(target)?,
            link: path_cstring(&Self::staged(inside))?,
        });
        Ok(())
    }

    /// Binds host folder `source` at `inside`, then makes that mount read-only, keeping the
    /// flags the host mount has (a user namespace may not clear them) and adding nosuid, nodev.
    fn bind_read_only(&mut self, source: &Path, inside: &Path) -> io::Result<()> {
        self.make_dir(inside)?;
        let target = Self::staged(inside);
        let kept = kept_mount_flags(source)?;
        self.mount(source, &target, None, libc::MS_BIND | libc::MS_REC, None)?;
        let read_only = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
        self.mount("none", &target, None, read_only | kept, None)
    }

    fn populate_dev(&mut self) -> io::Result<()> {
        self.make_dir(Path::new("/dev"))?;
        for device in DEVICES {
            let inside = Path::new("/dev").join(device);
            self.steps.push(Step::MakeFile(path_cstring(&Self::staged(&inside))?));
            self.mount(&inside, &Self::staged(&inside), None, libc::MS_BIND, None)?;
        }
        let links = [
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
            ("/tmp", "shm"),
        ];
        for (target, name) in links {
            self.symlink(Path::new(target), &Path::new("/dev").join(name))?;
        }
        Ok(())
    }
}

/// The noexec and access-time flags of the mount holding `path`, as `mount` flags.
fn kept_mount_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let c_path = path_cstring(path)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `stat` is written by the kernel on success and read only then.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = unsafe { stat.assume_init() }.f_flag;
    let mut kept = 0;
    if flags & libc::ST_NOEXEC != 0 {
        kept |= libc::MS_NOEXEC;
    }
    kept |= if flags & libc::ST_NOATIME != 0 {
        libc::MS_NOATIME
    } else if flags & libc::ST_RELATIME != 0 {
        libc::MS_RELATIME
    } else {
        libc::MS_STRICTATIME
    };
    if flags & libc::ST_NODIRATIME != 0 {
        kept |= libc::MS_NODIRATIME;
    }
    Ok(kept)
}

/// The interpreter's folder and its `sys.prefix`, `base_prefix`, `exec_prefix` and
/// `base_exec_prefix`, which the private root must show.
fn interpreter_folders(python: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let code =
        "import sys; print('\\0'.join([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]), end='')";
    let output = Command::new(python)
        .args(["-I", "-c", code])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SandboxError::NoPython(format!("running {}: {e}", python.display())))?;
    if !output.status.success() {
        return Err(SandboxError::NoPython(format!(
            "{} could not report its prefixes ({}): {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let mut folders: Vec<PathBuf> = output
        .stdout
        .split(|&b| b == 0)
        .map(|path| PathBuf::from(OsStr::from_bytes(path)))
        .collect();
    folders.extend(python.parent().map(Path::to_path_buf));
    Ok(folders)
}

/// Of the interpreter's folders (its prefixes and its own folder), those the system entries do not
/// already show, outermost first and without ones inside another; an error names a folder that
/// cannot be shown.
fn extra_folders(folders: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut extra: Vec<PathBuf> = Vec::new();
    let mut sorted: Vec<&PathBuf> = folders.iter().filter(|f| f.as_os_str() != "/").collect();
    sorted.sort_by_key(|f| f.components().count());
    for folder in sorted {
        if !folder.is_absolute() {
            return Err(format!("{} is not an absolute path", folder.display()));
        }
        if let Some(replaced) = REPLACED.iter().find(|r| folder.starts_with(r)) {
            return Err(format!(
                "{} is under {replaced}, which the sandbox replaces inside its private root",
                folder.display()
            ));
        }
        let shown =
            SYSTEM_ENTRIES.iter().any(|entry| folder.starts_with(entry)) || extra.iter().any(|e| folder.starts_with(e));
        if !shown {
            extra.push(folder.clone());
        }
    }
    Ok(extra)
}

fn cstring(text: &str) -> io::Result<CString> {
    bytes_cstring(text.as_bytes())
}

fn path_cstring(path: &Path) -> io::Result<CString> {
    bytes_cstring(OsStr::as_bytes(path.as_os_str()))
}

fn bytes_cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_outside_the_system_entries_are_added() {
        let folders = [
            PathBuf::from("/usr"),
            PathBuf::from("/opt/conda/envs/x"),
            PathBuf::from("/opt/conda"),
            PathBuf::from("/opt/conda/bin"),
            PathBuf::from("/"),
        ];
        assert_eq!(extra_folders(&folders).unwrap(), [PathBuf::from("/opt/conda")]);
        let err = extra_folders(&[PathBuf::from("/tmp/venv")]).unwrap_err();
        assert!(err.contains("/tmp/venv is under /tmp"), "{err}");
    }

    #[test]
    fn the_plan_ends_in_the_run_folder_under_a_read_only_root() {
        let plan = RootPlan::new(&[], 64 << 20, 10_000).unwrap();
        let described: Vec<String> = (0..plan.steps.0.len()).map(|i| plan.describe(i)).collect();
        let text = described.join("\n");
        assert!(text.contains("mounting /usr (bind"), "{text}");
        assert!(text.contains("mounting tmpfs (tmpfs, flags 0x6) on /tmp/tmp"), "{text}");
        assert!(text.contains("mounting proc (proc"), "{text}");
        assert!(text.contains("linking /tmp/dev/shm to /tmp"), "{text}");
        let last = &described[described.len() - 3..];
        assert!(
            last[0].starts_with("mounting none") && last[0].ends_with("on /tmp"),
            "{last:?}"
        );
        assert_eq!(last[1], "making /tmp the root (pivot_root)");
        assert_eq!(last[2], "entering /tmp");
    }
}
