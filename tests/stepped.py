"""Kill a tempclr run at a chosen moment of its work, however loaded the machine is.

Polling a free-running process for a moment (a file appearing) loses the race when the polling loop
is starved: the run finishes unseen (CI at load 5-36 lost it). Here the run stops itself after every
5 ms of its own CPU time (a SIGPROF timer whose handler sends it SIGSTOP) and the test looks while it
is stopped, so the run gets at most one step (5 ms of its CPU, or one C call) past any state the test
has not seen, whether or not the test gets the CPU when it asks for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

STEP_SECONDS = 0.005
_BOOT = """
import os, runpy, signal, sys
signal.signal(signal.SIGPROF, lambda *_: os.kill(os.getpid(), signal.SIGSTOP))
signal.siginterrupt(signal.SIGPROF, False)  # system calls the timer lands in restart, as without it
signal.setitimer(signal.ITIMER_PROF, {step}, {step})
try:
    runpy.run_module("tempclr_cli", run_name="__main__", alter_sys=True)
finally:
    signal.setitimer(signal.ITIMER_PROF, 0)  # teardown puts SIGPROF's default back: it would end the process
"""


def start_stepped(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    """`cmd` (`python -m tempclr_cli ARGS`), stopping itself after every STEP_SECONDS of its CPU time."""
    assert cmd[:3] == [sys.executable, "-m", "tempclr_cli"], cmd
    boot = [sys.executable, "-c", _BOOT.format(step=STEP_SECONDS)]
    return subprocess.Popen([*boot, *cmd[3:]], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_at(proc: subprocess.Popen, moment: Callable[[float], bool]) -> None:
    """Let `proc` (from `start_stepped`) run one step at a time; kill -9 it at the first stop where
    `moment(CPU seconds it has run)` holds. proc.returncode is then -9, or its exit code if it ended
    first. Its output must fit the pipes (-q): nothing reads them until it has ended."""
    ran = 0.0
    while True:
        _, status = os.waitpid(proc.pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            break
        if moment(ran):
            os.kill(proc.pid, signal.SIGKILL)  # a stopped process dies of SIGKILL as a running one does
            _, status = os.waitpid(proc.pid, 0)
            break
        ran += STEP_SECONDS
        os.kill(proc.pid, signal.SIGCONT)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen could no longer read it
    proc.communicate()
