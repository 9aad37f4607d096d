# Runs PROGRAM as HF evaluate's code_eval runs a check program (metrics/code_eval/execute.py,
# `unsafe_execute` under `reliability_guard`, without its optional memory limit), which
# lm-eval's humaneval and mbpp call:
# - exec'd in an empty namespace, so `__name__` is "builtins" and an
#   `if __name__ == "__main__":` block does not run;
# - stdin, stdout and stderr swallowed (reading raises);
# - exit, quit and help, and the destructive os, shutil and subprocess functions, set to None;
# - any exception, SystemExit included, is a failure.
# Only reaching the end prints MARKER, and the harness counts nothing else as a pass: an
# `os._exit(0)` midway, code_eval's "timed out", fails too. The harness puts `PROGRAM = "..."`
# and `MARKER = "..."` before this text (tasks/src/code_eval.rs).
import builtins
import contextlib
import faulthandler
import io
import os
import shutil
import subprocess
import sys
import traceback


class _WriteOnly(io.StringIO):
    """code_eval's stdin, stdout and stderr while the program runs."""

    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


class _redirect_stdin(contextlib._RedirectStream):
    _stream = "stdin"


_DISABLED_OS = (
    "kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename renames "
    "truncate replace unlink fchmod fchown chmod chown chroot lchflags lchmod lchown getcwd chdir"
)


def _reliability_guard():
    faulthandler.disable()
    builtins.exit = None
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in _DISABLED_OS.split():
        setattr(os, name, None)
    shutil.rmtree = None
    shutil.move = None
    shutil.chown = None
    subprocess.Popen = None
    for module in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[module] = None


# Kept before the program can replace them.
_write, _exit, _stdout = os.write, os._exit, sys.stdout.fileno()
_reliability_guard()
_sink = _WriteOnly()
try:
    with contextlib.redirect_stdout(_sink), contextlib.redirect_stderr(_sink), _redirect_stdin(_sink):
        exec(PROGRAM, {})
except BaseException:
    traceback.print_exc()  # to the real stderr, which the journal keeps the end of
    _exit(1)
_write(_stdout, MARKER.encode())
_exit(0)  # as code_eval records "passed" at this point, before threads or atexit handlers
