//! Hostile programs must fail (never pass), leave the test process alive, and change nothing
//! outside their own temporary folder.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::{PROCESS_TABLE, assert_failed, live_processes_named, live_processes_of, run, sandbox};
use sandbox::{Limits, Sandbox, Status};

#[test]
fn a_correct_program_passes_and_reports_full_isolation_here() {
    let run = run(
        Limits::default(),
        "def add(a, b):\n    return a + b\n\nassert add(2, 3) == 5\nprint('ok')\n",
    );
    assert!(run.passed(), "{run:#?}");
    assert_eq!(run.stdout, "ok\n");
    // Every layer is expected on the test machines (root, Landlock, network namespaces).
    assert!(run.isolation.is_complete(), "missing layers: {:?}", run.warnings);
}

#[test]
fn failing_programs_fail() {
    let run1 = run(Limits::default(), "assert False\n");
    assert_eq!(run1.status, Status::Failed { exit_code: 1 });
    assert!(run1.stderr.contains("AssertionError"), "{}", run1.stderr);

    let run2 = run(Limits::default(), "def f(:\n    pass\n");
    assert_eq!(run2.status, Status::Failed { exit_code: 1 });
    assert!(run2.stderr.contains("SyntaxError"), "{}", run2.stderr);

    // A NUL byte is not a sandbox error (Python versions differ on whether it is a syntax error).
    let run3 = run(Limits::default(), "print('a')\0\nprint(1 +)\n");
    assert!(run3.warnings.is_empty(), "{run3:#?}");
}

#[test]
fn invalid_limits_are_refused_with_the_field_named() {
    let err = Sandbox::new(Limits {
        max_processes: 0,
        ..Limits::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("max_processes"), "{err}");
    let err = Sandbox::with_interpreter(Limits::default(), "python3").unwrap_err();
    assert!(err.to_string().contains("absolute"), "{err}");
}

#[test]
fn an_infinite_loop_times_out_within_the_wall_limit() {
    let limits = Limits {
        wall: Duration::from_secs(1),
        cpu: Duration::from_secs(60),
        ..Limits::default()
    };
    let sandbox = sandbox(limits);
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let run = sandbox.run_python("while True:\n    pass\n").unwrap();
    assert_eq!(run.status, Status::TimedOut);
    // Slack for a loaded 2-core machine: this checks that nothing waits for the loop, not speed.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_cpu_burner_hits_the_cpu_limit() {
    let limits = Limits {
        wall: Duration::from_secs(30),
        cpu: Duration::from_secs(1),
        ..Limits::default()
    };
    let run = run(limits, "while True:\n    pass\n");
    assert_eq!(run.status, Status::CpuLimit, "{run:#?}");
}

#[test]
fn a_fork_bomb_is_contained_and_leaves_no_process() {
    let limits = Limits {
        wall: Duration::from_secs(2),
        max_processes: 16,
        ..Limits::default()
    };
    let sandbox = sandbox(limits);
    let _exclusive = PROCESS_TABLE.write().unwrap_or_else(|e| e.into_inner());
    // Children also leave the process group: only the pid namespace (without a private root, the
    // per-uid sweep) can find them.
    let program = "import os\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n    except OSError:\n        pass\n";
    let run = sandbox.run_python(program).unwrap();
    assert_failed(&run);
    let left = live_processes_of(run.pid, run.uid);
    assert!(left.is_empty(), "processes left after the fork bomb: {left:?}");
}

#[test]
fn a_sleeping_child_is_killed_when_the_parent_exits() {
    let sandbox = sandbox(Limits::default());
    let _exclusive = PROCESS_TABLE.write().unwrap_or_else(|e| e.into_inner());
    for leave_group in [false, true] {
        let name = format!("sleep-{}-{}", std::process::id() % 100_000, u8::from(leave_group));
        let program = format!(
            "import ctypes, os, time\npid = os.fork()\nif pid == 0:\n    if {}:\n        os.setsid()\n    ctypes.CDLL(None).prctl(15, b'{name}', 0, 0, 0)\n    time.sleep(60)\n    os._exit(0)\ntime.sleep(0.2)\nprint(pid, flush=True)\n",
            if leave_group { "True" } else { "False" }
        );
        let started = Instant::now();
        let run = sandbox.run_python(&program).unwrap();
        assert!(run.passed(), "{run:#?}");
        assert!(started.elapsed() < Duration::from_secs(10), "waited for the sleeper");
        let sleepers = live_processes_named(&name);
        assert!(
            sleepers.is_empty(),
            "sleeper survived (left group: {leave_group}): {sleepers:?}"
        );
        assert!(live_processes_of(run.pid, run.uid).is_empty());
    }
}

#[test]
fn a_memory_bomb_fails_and_the_harness_survives() {
    let limits = Limits {
        memory_bytes: 512 << 20,
        ..Limits::default()
    };
    let run1 = run(limits, "x = bytearray(8 << 30)\n");
    assert_failed(&run1);
    assert!(run1.stderr.contains("MemoryError"), "{}", run1.stderr);
    let run2 = run(
        limits,
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n",
    );
    assert_failed(&run2);
}

#[test]
fn a_huge_file_is_stopped_by_the_file_size_limit() {
    let limits = Limits {
        file_size_bytes: 1 << 20,
        ..Limits::default()
    };
    let program = "with open('big', 'wb') as f:\n    for _ in range(1024):\n        f.write(b'x' * (1 << 20))\n";
    let run = run(limits, program);
    assert_failed(&run);
    let stopped = run.stderr.contains("File too large") || run.status == Status::Killed { signal: libc::SIGXFSZ };
    assert!(stopped, "{run:#?}");
}

#[test]
fn writing_and_deleting_outside_the_folder_fail() {
    // A folder and file anyone may write, so only the sandbox (not file permissions) stops the program.
    let outside = tempfile::tempdir().unwrap();
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let sentinel = outside.path().join("sentinel");
    fs::write(&sentinel, b"keep me").unwrap();
    fs::set_permissions(&sentinel, fs::Permissions::from_mode(0o666)).unwrap();
    let new_file = outside.path().join("new");
    let in_tmp = Path::new("/tmp").join(format!("sandbox-escape-{}", std::process::id()));
    let in_etc = Path::new("/etc").join(format!("sandbox-escape-{}", std::process::id()));
    let _ = fs::remove_file(&in_tmp);

    for (what, program) in [
        (
            "create in a world-writable folder",
            format!("open({:?}, 'w').write('x')\n", new_file),
        ),
        ("overwrite", format!("open({:?}, 'w').write('gone')\n", sentinel)),
        ("delete", format!("import os\nos.remove({:?})\n", sentinel)),
        (
            "rename away",
            format!("import os\nos.rename({:?}, 'stolen')\n", sentinel),
        ),
        (
            "symlink out, then write",
            format!(
                "import os\nos.symlink({:?}, 'l')\nopen('l', 'w').write('x')\n",
                sentinel
            ),
        ),
        (
            "make a folder",
            format!("import os\nos.mkdir({:?})\n", outside.path().join("d")),
        ),
        (
            "create in a system folder",
            format!("open({:?}, 'w').write('x')\n", in_etc),
        ),
    ] {
        let run = run(Limits::default(), &program);
        assert_failed(&run);
        // Refused (Landlock, permissions, read-only mounts), or not even there (private root).
        let refused = ["PermissionError", "FileNotFoundError", "Read-only file system"];
        assert!(refused.iter().any(|e| run.stderr.contains(e)), "{what}: {run:#?}");
    }
    // With a private root, /tmp is the run's own folder: writing there works and stays there.
    let run = run(Limits::default(), &format!("open({:?}, 'w').write('x')\n", in_tmp));
    assert!(run.warnings.is_empty(), "{run:#?}");
    assert_eq!(fs::read(&sentinel).unwrap(), b"keep me");
    assert!(!new_file.exists() && !in_tmp.exists() && !outside.path().join("d").exists());
    assert!(!in_etc.exists());
}

#[test]
fn the_program_may_use_its_own_folder_and_nothing_of_it_remains() {
    let name = format!("sandbox-own-{}", std::process::id());
    let program = format!(
        "import os, tempfile\nos.mkdir('d')\nopen('d/f', 'w').write('x' * 1000)\nos.rename('d/f', 'g')\nos.remove('g')\n\
         open('{name}', 'w').write('mine')\nopen('/dev/shm/{name}', 'w').write('shared')\n\
         assert open('/dev/shm/{name}').read() == 'shared'\nwith tempfile.NamedTemporaryFile() as t:\n    t.write(b'x')\n\
         print(os.getcwd() == os.environ['HOME'])\nprint(os.getcwd())\n"
    );
    let run = run(Limits::default(), &program);
    assert!(run.passed(), "{run:#?}");
    let (same_home, folder) = run.stdout.split_once('\n').unwrap();
    assert_eq!(same_home, "True");
    let left = Path::new(folder.trim()).join(&name);
    assert!(!left.exists(), "the run's file {} was left behind", left.display());
    assert!(
        !Path::new("/dev/shm").join(&name).exists(),
        "shared memory reached the host"
    );
}

#[test]
fn privileges_cannot_be_regained() {
    let program = "for line in open('/proc/self/status'):\n    if line.startswith(('NoNewPrivs', 'CapEff', 'CapPrm')):\n        print(line.strip())\n";
    let run = run(Limits::default(), program);
    assert!(run.passed(), "{run:#?}");
    assert!(run.stdout.contains("NoNewPrivs:\t1"), "{}", run.stdout);
    assert!(run.stdout.contains("CapEff:\t0000000000000000"), "{}", run.stdout);
    assert!(run.stdout.contains("CapPrm:\t0000000000000000"), "{}", run.stdout);
}

#[test]
fn the_harness_environment_stays_secret() {
    static SET: Once = Once::new();
    // SAFETY: set once, before any run of this test; std serialises its own environment access.
    SET.call_once(|| unsafe { std::env::set_var("SANDBOX_TEST_SECRET", "hunter2-do-not-leak") });
    let program = "import os\nprint(dict(os.environ))\ntry:\n    print(open('/proc/%d/environ' % os.getppid(), 'rb').read())\nexcept OSError as e:\n    print('denied', e)\nassert 'SANDBOX_TEST_SECRET' in os.environ\n";
    let run = run(Limits::default(), program);
    assert_failed(&run);
    assert!(
        !run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"),
        "{run:#?}"
    );
    assert!(run.stdout.contains("'PYTHONHASHSEED': '0'"), "{}", run.stdout);
}

#[test]
fn network_connections_fail_and_reach_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    let (tcp_port, udp_port) = (listener.local_addr().unwrap().port(), udp.local_addr().unwrap().port());
    let program = format!(
        "import socket\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n    u.sendto(b'leak', ('127.0.0.1', {udp_port}))\nexcept OSError as e:\n    print('udp failed', e)\ns = socket.create_connection(('127.0.0.1', {tcp_port}), timeout=2)\ns.sendall(b'leak')\nprint('CONNECTED')\n"
    );
    let run = run(Limits::default(), &program);
    assert_failed(&run);
    assert!(!run.stdout.contains("CONNECTED"), "{run:#?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "TCP got through"
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        udp.recv_from(&mut buf).map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "UDP got through"
    );
}

#[test]
fn endless_output_is_cut_at_the_limit() {
    let limits = Limits {
        max_output_bytes: 64 << 10,
        ..Limits::default()
    };
    let run = run(limits, "while True:\n    print('x' * 1000)\n");
    assert_eq!(run.status, Status::OutputLimit);
    assert_eq!(run.stdout.len(), 64 << 10);
}

#[test]
fn eight_programs_in_parallel_threads_all_get_their_own_result() {
    let sandbox = sandbox(Limits::default());
    let _shared = PROCESS_TABLE.read().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let sandbox = &sandbox;
                scope.spawn(move || {
                    let program =
                        format!("import os\nopen('n', 'w').write('{i}')\nprint({i} * {i})\nassert {i} % 3 != 0\n");
                    (i, sandbox.run_python(&program).unwrap())
                })
            })
            .collect();
        for handle in handles {
            let (i, run) = handle.join().unwrap();
            assert_eq!(run.stdout, format!("{}\n", i * i), "program {i}: {run:#?}");
            assert_eq!(run.passed(), i % 3 != 0, "program {i}: {run:#?}");
        }
    });
}
