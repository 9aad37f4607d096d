//! The run's folder on the host, where there is no private root (with one, the folder is a tmpfs
//! inside the run's mount namespace; see [`crate::rootfs`]): cwd and `HOME` of the program, the
//! only place it may write.
//!
//! Why: a fresh folder per run keeps runs from seeing each other's files and leaves nothing behind.
//! It is created `0700`; with a private uid it is handed to that uid, so no other run can enter it.
//! The program file in it belongs to the harness and is read-only for the program.

use std::ffi::{CStr, CString};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use tempfile::TempDir;

/// The file name the program is written to, relative to the workdir.
pub(crate) const PROGRAM_FILE: &str = "program.py";

pub(crate) struct Workdir {
    dir: TempDir,
}

impl Workdir {
    /// A new folder under the system temporary directory holding `program`, owned by `owner` if set.
    pub(crate) fn create(program: &str, owner: Option<u32>) -> io::Result<Workdir> {
        let dir = tempfile::Builder::new().prefix("sandbox-").tempdir()?;
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))?;
        let mut file = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(dir.path().join(PROGRAM_FILE))?;
        file.write_all(program.as_bytes())?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(uid))?;
        }
        Ok(Workdir { dir })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Deletes the folder and everything in it; see [`remove_tree`].
    pub(crate) fn remove(self) -> io::Result<()> {
        remove_tree(&self.dir.keep())
    }
}

/// Deletes a folder the program controlled, without recursion and without following symlinks.
///
/// Why not `fs::remove_dir_all`: it recurses once per nesting level, and a program can nest a
/// hundred thousand folders in a second, enough to overflow the harness thread's stack. Here every
/// operation is relative to a descriptor opened with `O_NOFOLLOW`, and nested folders are flattened:
/// each pass moves the children of the top-level folders up to the top, then deletes what is empty
/// or not a folder. Folders without permissions (possible when the program ran as the harness's own
/// uid) are opened up first.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let root = open_dir(libc::AT_FDCWD, &cstring(path.as_os_str().as_bytes())?)?;
    let mut fresh = 0u64;
    loop {
        let entries = list(&root)?;
        if entries.is_empty() {
            break;
        }
        let mut progress = false;
        for (name, is_dir) in entries {
            // SAFETY: plain syscalls on an open descriptor and a NUL-terminated name.
            if !is_dir {
                progress |= unsafe { libc::unlinkat(root.as_raw_fd(), name.as_ptr(), 0) } == 0;
                continue;
            }
            if unsafe { libc::unlinkat(root.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) } == 0 {
                progress = true;
                continue;
            }
            unsafe { libc::fchmodat(root.as_raw_fd(), name.as_ptr(), 0o700, 0) };
            let Ok(sub) = open_dir(root.as_raw_fd(), &name) else {
                continue;
            };
            for (child, _) in list(&sub).unwrap_or_default() {
                fresh += 1;
                let target = cstring(format!(".flattened-{fresh}").as_bytes())?;
                let moved =
                    unsafe { libc::renameat(sub.as_raw_fd(), child.as_ptr(), root.as_raw_fd(), target.as_ptr()) };
                progress |= moved == 0;
            }
        }
        if !progress {
            return Err(io::Error::other(format!("could not empty {}", path.display())));
        }
    }
    drop(root);
    fs::remove_dir(path)
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn open_dir(at: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: plain syscall; the returned descriptor is new and owned here.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// The entries of a folder, with whether each is a folder (symlinks are not).
fn list(dir: &OwnedFd) -> io::Result<Vec<(CString, bool)>> {
    // The stream takes ownership of its descriptor: give it a duplicate.
    let fd = dir.try_clone()?.into_raw_fd();
    // SAFETY: `fd` is a valid directory descriptor whose ownership passes to the stream.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let err = io::Error::last_os_error();
        unsafe { libc::close(fd) };
        return Err(err);
    }
    // SAFETY: the duplicate shares the offset with `dir`; start from the beginning.
    unsafe { libc::rewinddir(stream) };
    let mut entries = Vec::new();
    loop {
        // SAFETY: `stream` is open; the returned entry is valid until the next readdir call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let is_dir = match unsafe { (*entry).d_type } {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN => is_dir_at(fd, name),
            _ => false,
        };
        entries.push((name.to_owned(), is_dir));
    }
    // SAFETY: closes the stream and its descriptor once.
    unsafe { libc::closedir(stream) };
    Ok(entries)
}

fn is_dir_at(dir: RawFd, name: &CStr) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is written by the kernel on success only, and read only then.
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), stat.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    rc == 0 && unsafe { stat.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_deep_nesting_without_recursion_and_keeps_symlink_targets() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("keep"), b"x").unwrap();
        let work = Workdir::create("pass", None).unwrap();
        let mut deep = work.path().to_path_buf();
        for _ in 0..300 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f"), b"y").unwrap();
        std::os::unix::fs::symlink(outside.path(), work.path().join("link")).unwrap();
        let locked = work.path().join("locked");
        fs::create_dir_all(locked.join("inner")).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let path = work.path().to_path_buf();
        work.remove().unwrap();
        assert!(!path.exists());
        assert!(outside.path().join("keep").exists());
    }
}
