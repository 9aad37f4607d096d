//! The sandbox escapes of issue 12, one hostile program each: SysV IPC, host unix sockets,
//! processes outliving a killed harness, keyrings, per-process (not per-run) memory and disk,
//! unbounded cleanup, CPU-burning siblings, user namespaces and other kernel interfaces.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::{self, ErrorKind};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{PROCESS_TABLE, live_processes_named, run, sandbox, wait_for};
use sandbox::{Limits, Status};

/// Python prelude: `libc` through ctypes, and `nr`, the numbers of the system calls used here.
const SYSCALLS: &str = "\
import ctypes, errno, os, platform
libc = ctypes.CDLL(None, use_errno=True)
nr = {'x86_64': dict(add_key=248, keyctl=250, unshare=272, io_uring_setup=425, bpf=321, userfaultfd=323,
                     perf_event_open=298),
      'aarch64': dict(add_key=217, keyctl=219, unshare=97, io_uring_setup=425, bpf=280, userfaultfd=282,
                      perf_event_open=241)}[platform.machine()]
def call(name, *args):
    result = libc.syscall(nr[name], *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    return result if result >= 0 else errno.errorcode[ctypes.get_errno()]
";

#[test]
fn sysv_ipc_is_private_to_the_run_and_gone_after_it() {
    let host_key = 0x5a00_0000 | (std::process::id() as i32 & 0xffff);
    let run_key = host_key ^ 0x0100_0000;
    // A segment any user may read and write, as a host service might have one.
    // SAFETY: plain SysV calls; the segment is removed below.
    let host_segment = unsafe { libc::shmget(host_key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o666) };
    assert!(host_segment >= 0, "shmget: {}", io::Error::last_os_error());
    let address = unsafe { libc::shmat(host_segment, std::ptr::null(), 0) };
    assert_ne!(address as isize, -1, "shmat: {}", io::Error::last_os_error());
    unsafe { std::ptr::copy_nonoverlapping(b"host-secret".as_ptr(), address.cast(), 11) };
    let program = format!(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\n\
         host = libc.shmget({host_key}, 0, 0)\nprint('host segment', host)\nif host >= 0:\n\
         \x20   address = libc.shmat(host, None, 0)\n    print('read', ctypes.string_at(address, 11))\n\
         \x20   ctypes.memmove(address, b'overwritten', 11)\nIPC_CREAT = 0o1000\n\
         print('own', libc.shmget({run_key}, 1 << 20, IPC_CREAT | 0o666) >= 0, \
         libc.msgget({run_key}, IPC_CREAT | 0o666) >= 0, libc.semget({run_key}, 1, IPC_CREAT | 0o666) >= 0)\n"
    );
    let run = run(Limits::default(), &program);

    let mut seen = [0u8; 11];
    // SAFETY: reads back and removes the host segment; then looks up (and removes) what the run
    // may have left, so that a failing run leaves nothing behind either.
    let left = unsafe {
        std::ptr::copy_nonoverlapping(address.cast(), seen.as_mut_ptr(), 11);
        libc::shmdt(address);
        libc::shmctl(host_segment, libc::IPC_RMID, std::ptr::null_mut());
        let left = [
            libc::shmget(run_key, 0, 0),
            libc::msgget(run_key, 0),
            libc::semget(run_key, 0, 0),
        ];
        libc::shmctl(left[0], libc::IPC_RMID, std::ptr::null_mut());
        libc::msgctl(left[1], libc::IPC_RMID, std::ptr::null_mut());
        libc::semctl(left[2], 0, libc::IPC_RMID);
        left
    };
    assert!(run.passed(), "{run:#?}");
    assert!(
        run.stdout.contains("host segment -1"),
        "the host's segment was visible: {run:#?}"
    );
    assert_eq!(&seen, b"host-secret");
    assert!(run.stdout.contains("own True True True"), "{run:#?}");
    assert_eq!(left, [-1, -1, -1], "the run's segment, queue or semaphore outlived it");
}

/// A socket anyone may connect to, at a path removed when it is dropped.
struct Service {
    listener: UnixListener,
    path: PathBuf,
}

impl Service {
    fn open(path: PathBuf) -> Service {
        let _ = fs::remove_file(&path);
        let service = Service {
            listener: UnixListener::bind(&path).unwrap(),
            path,
        };
        fs::set_permissions(&service.path, fs::Permissions::from_mode(0o777)).unwrap();
        service.listener.set_nonblocking(true).unwrap();
        service
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[test]
fn unix_sockets_of_host_services_are_unreachable() {
    let pid = std::process::id();
    let in_tmp = PathBuf::from(format!("/tmp/sandbox-service-{pid}.sock"));
    let elsewhere = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sandbox-service-{pid}.sock"));
    let abstract_name = format!("sandbox-service-{pid}");
    let services = [Service::open(in_tmp.clone()), Service::open(elsewhere.clone())];
    let abstract_address = SocketAddr::from_abstract_name(abstract_name.as_bytes()).unwrap();
    let abstract_listener = UnixListener::bind_addr(&abstract_address).unwrap();
    abstract_listener.set_nonblocking(true).unwrap();
    let targets = [
        format!("{:?}", in_tmp.display().to_string()),
        format!("{:?}", elsewhere.display().to_string()),
        format!("'\\0{abstract_name}'"),
    ];
    let program = format!(
        "import socket\nfor target in [{}]:\n    s = socket.socket(socket.AF_UNIX)\n    try:\n\
         \x20       s.connect(target)\n        s.sendall(b'leak')\n        print('CONNECTED', repr(target))\n\
         \x20   except OSError as e:\n        print('refused', repr(target), e)\n",
        targets.join(", ")
    );
    let run = run(Limits::default(), &program);
    let reached: Vec<bool> = services
        .iter()
        .map(|service| &service.listener)
        .chain([&abstract_listener])
        .map(|listener| listener.accept().map(|_| ()).map_err(|e| e.kind()) != Err(ErrorKind::WouldBlock))
        .collect();
    assert!(run.passed(), "{run:#?}");
    assert!(!run.stdout.contains("CONNECTED"), "{}", run.stdout);
    assert_eq!(reached, [false, false, false], "(in /tmp, elsewhere, abstract)");
}

/// Set to a process name by [`no_process_survives_a_killed_harness`] for [`kill_nine_helper`].
const HELPER_NAME: &str = "SANDBOX_TEST_KILL_NINE_NAME";

/// The harness that gets killed: runs a program whose main process and a detached (`setsid`,
/// double fork) grandchild name themselves `HELPER_NAME` and sleep.
#[test]
#[ignore = "run by no_process_survives_a_killed_harness, in a process of its own"]
fn kill_nine_helper() {
    let Ok(name) = std::env::var(HELPER_NAME) else {
        return;
    };
    let limits = Limits {
        wall: Duration::from_secs(60),
        cpu: Duration::from_secs(60),
        ..Limits::default()
    };
    let program = format!(
        "import ctypes, os, time\nlibc = ctypes.CDLL(None)\nif os.fork() == 0:\n    os.setsid()\n\
         \x20   if os.fork() == 0:\n        libc.prctl(15, b'{name}', 0, 0, 0)\n        time.sleep(60)\n\
         \x20   os._exit(0)\nlibc.prctl(15, b'{name}', 0, 0, 0)\ntime.sleep(60)\n"
    );
    let _ = sandbox(limits).run_python(&program);
}

#[test]
fn no_process_survives_a_killed_harness() {
    let exclusive = PROCESS_TABLE.write().unwrap_or_else(|e| e.into_inner());
    let name = format!("k9-{}", std::process::id() % 1_000_000);
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_nine_helper", "--ignored", "--test-threads=1"])
        .env(HELPER_NAME, &name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for(Duration::from_secs(30), || live_processes_named(&name).len() >= 2);
    let run_processes = live_processes_named(&name);
    helper.kill().unwrap(); // SIGKILL
    helper.wait().unwrap();
    assert!(started, "the helper's program did not start: {run_processes:?}");

    let gone = wait_for(Duration::from_secs(5), || live_processes_named(&name).is_empty());
    // What a failing sandbox left is removed before the assertions: survivors (which would linger
    // for a minute) and host folders of the run (which belong to its uid).
    let survivors = live_processes_named(&name);
    for &(pid, _) in &survivors {
        // SAFETY: signals processes of the killed run only.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let run_uids: Vec<u32> = run_processes.iter().filter_map(|&(_, uid)| uid).collect();
    let folders: Vec<PathBuf> = fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|entry| entry.metadata().is_ok_and(|meta| run_uids.contains(&meta.uid())))
        .map(|entry| entry.path())
        .collect();
    for folder in &folders {
        let _ = fs::remove_dir_all(folder);
    }
    assert!(gone, "processes survived the harness's kill -9: {survivors:?}");
    assert!(folders.is_empty(), "the killed run's folders were left: {folders:?}");
    drop(exclusive);
    // The next sandbox removes the killed harness's empty cgroups.
    sandbox(Limits::default());
    let groups = cgroups_named(&format!("sandbox-{}-", helper.id()));
    assert!(groups.is_empty(), "the killed harness's cgroups were left: {groups:?}");
}

/// Folders starting with `prefix` under this process's cgroup v1 groups (standard mount points).
fn cgroups_named(prefix: &str) -> Vec<PathBuf> {
    let membership = fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut found = Vec::new();
    for line in membership.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Some(controller) = controllers
            .split(',')
            .find(|c| ["memory", "pids", "cpuacct"].contains(c))
        else {
            continue;
        };
        let parent = Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/'));
        for entry in fs::read_dir(parent).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            }
        }
    }
    found
}

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;

#[test]
fn keyrings_pass_nothing_between_runs_or_from_the_harness() {
    let sandbox = sandbox(Limits::default());
    // Exclusive, so that both runs get the same (lowest free) private uid.
    let _exclusive = PROCESS_TABLE.write().unwrap_or_else(|e| e.into_inner());
    // A key in this thread's own session keyring, which a child would possess if it shared it.
    // SAFETY: keyctl and add_key on buffers that outlive the calls; the keyring is this thread's.
    unsafe {
        let joined = libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, std::ptr::null::<u8>());
        assert!(joined >= 0, "{}", io::Error::last_os_error());
        let key = libc::syscall(
            libc::SYS_add_key,
            c"user".as_ptr(),
            c"sandbox-harness-key".as_ptr(),
            b"harness-secret".as_ptr(),
            14usize,
            KEY_SPEC_SESSION_KEYRING,
        );
        assert!(key >= 0, "{}", io::Error::last_os_error());
    }
    let plant = format!(
        "{SYSCALLS}for ring in (-4, -3):\n    print('planted in', ring, call('add_key', b'user', b'sandbox-planted-key', \
         b'planted-secret', 14, ring))\n"
    );
    let find = format!(
        "{SYSCALLS}for ring in (-4, -3, -5):\n    for name in (b'sandbox-planted-key', b'sandbox-harness-key'):\n\
         \x20       key = call('keyctl', 10, ring, b'user', name, 0)\n        if isinstance(key, int):\n\
         \x20           buffer = ctypes.create_string_buffer(64)\n            size = call('keyctl', 11, key, buffer, 64)\n\
         \x20           print('found', name, buffer.raw[:size] if isinstance(size, int) else size)\n"
    );
    let planted = sandbox.run_python(&plant).unwrap();
    let found = sandbox.run_python(&find).unwrap();
    assert_eq!(planted.uid, found.uid, "the test needs both runs to share a uid");
    assert!(planted.passed() && found.passed(), "{planted:#?}\n{found:#?}");
    assert!(!found.stdout.contains("secret"), "{planted:#?}\n{found:#?}");
}

#[test]
fn one_memory_budget_covers_every_process_of_a_run() {
    // Each process stays well below 256 MiB; together they need about 450 MiB.
    let limits = Limits {
        memory_bytes: 256 << 20,
        wall: Duration::from_secs(20),
        ..Limits::default()
    };
    let program = "import os, time\nr, w = os.pipe()\nfor _ in range(4):\n    if os.fork() == 0:\n\
                   \x20       block = bytearray(b'x') * (100 << 20)\n        os.write(w, b'+')\n        time.sleep(30)\n\
                   \x20       os._exit(0)\nos.close(w)\nready = b''\nwhile len(ready) < 4:\n    ready += os.read(r, 4)\n\
                   print('all four hold 100 MiB')\n";
    let run = run(limits, program);
    assert_eq!(run.status, Status::MemoryLimit, "{run:#?}");
}

#[test]
fn the_run_folder_is_bounded_in_total_size() {
    let limits = Limits {
        folder_bytes: 16 << 20,
        ..Limits::default()
    };
    // Eight files of 4 MiB, each well below the 16 MiB file-size limit.
    let program = "for i in range(8):\n    with open(f'f{i}', 'wb') as f:\n        f.write(b'x' * (4 << 20))\nprint('wrote 32 MiB')\n";
    let run = run(limits, program);
    assert!(!run.passed(), "{run:#?}");
    assert!(run.stderr.contains("No space left on device"), "{run:#?}");
}

#[test]
fn a_program_nesting_folders_does_not_hold_the_harness_past_its_limit() {
    let sandbox = sandbox(Limits::human_eval());
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    let program = "import os\nwhile True:\n    try:\n        os.mkdir('d')\n        os.chdir('d')\n    except OSError:\n        pass\n";
    let started = Instant::now();
    let run = sandbox.run_python(program).unwrap();
    let cleanup = started.elapsed().saturating_sub(run.wall);
    assert!(!run.passed(), "{run:#?}");
    // Deleting what such a program made in a host folder took 28 to 53 s after a 3 s limit. Done
    // right it takes well under a second on an idle machine, and 1.4 s was measured beside a job
    // busy on both cores: the bound is the regression's order of magnitude, not a timing.
    assert!(cleanup < Duration::from_secs(5), "cleanup took {cleanup:?}: {run:#?}");
}

#[test]
fn a_cpu_burning_sibling_cannot_make_a_correct_program_time_out() {
    let sandbox = sandbox(Limits::human_eval());
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    let burner = "import os\nfor _ in range(15):\n    if os.fork() == 0:\n        break\nwhile True:\n    pass\n";
    // About 0.4 s of CPU.
    let correct = "total = 0\nfor i in range(3_000_000):\n    total += i * i\nassert total > 0\nprint('done')\n";
    for trial in 0..3 {
        std::thread::scope(|scope| {
            let burning = scope.spawn(|| sandbox.run_python(burner).unwrap());
            std::thread::sleep(Duration::from_millis(300));
            let run = sandbox.run_python(correct).unwrap();
            assert!(run.passed(), "trial {trial}: {run:#?}");
            let burnt = burning.join().unwrap();
            assert_eq!(burnt.status, Status::CpuLimit, "trial {trial}: {burnt:#?}");
        });
    }
}

#[test]
fn user_namespaces_chroot_and_exploit_prone_interfaces_are_refused() {
    let program = format!(
        "{SYSCALLS}print('unshare', call('unshare', 0x10000000))\n\
         print('io_uring_setup', call('io_uring_setup', 1, ctypes.create_string_buffer(120)))\n\
         print('userfaultfd', call('userfaultfd', 0))\nprint('bpf', call('bpf', 0, None, 0))\n\
         print('keyctl', call('keyctl', 0, -3, 0))\n\
         print('perf_event_open', call('perf_event_open', ctypes.create_string_buffer(128), 0, -1, -1, 0))\n\
         try:\n    os.chroot('/tmp')\n    print('chroot', 0)\nexcept OSError as e:\n    print('chroot', errno.errorcode[e.errno])\n"
    );
    let run = run(Limits::default(), &program);
    assert!(run.passed(), "{run:#?}");
    for call in [
        "unshare",
        "io_uring_setup",
        "userfaultfd",
        "bpf",
        "keyctl",
        "perf_event_open",
        "chroot",
    ] {
        assert!(
            run.stdout.contains(&format!("{call} EPERM\n")),
            "{call}: {}",
            run.stdout
        );
    }
}

#[test]
fn threads_subprocesses_multiprocessing_and_signals_work_as_usual() {
    let program = "\
import multiprocessing, os, signal, subprocess, sys, tempfile, threading, time
done = []
thread = threading.Thread(target=lambda: done.append(1))
thread.start()
thread.join()
assert done == [1]
assert subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout == '42\\n'
with multiprocessing.Pool(2) as pool:
    assert pool.map(abs, [-1, -2]) == [1, 2]
with tempfile.TemporaryDirectory() as folder:
    open(os.path.join(folder, 'f'), 'w').write('x')
assert os.cpu_count() >= 1
fired = []
signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.01)
time.sleep(0.5)
assert fired == [1]
print('ok')
";
    let run = run(Limits::default(), program);
    assert!(run.passed(), "{run:#?}");
    assert_eq!(run.stdout, "ok\n");
    // The program's main process is no namespace init: its own signals end it, as under lm-eval.
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let run = common::run(
            Limits::default(),
            &format!("import os\nos.kill(os.getpid(), {signal})\nprint('survived')\n"),
        );
        assert_eq!(run.status, Status::Killed { signal }, "{run:#?}");
    }
}
