"""Child processes, signals and the work-directory lock of a local run.

Every child (step job, local AWS server) starts in its own session, so its
process group is its own: a terminal's Ctrl-C reaches only `promote`, which then
ends each group it started, and nothing survives the run with PPID 1.
SIGTERM and SIGINT become `Interrupted`, which unwinds through every `finally`
(children stopped, lock released); the CLI exits 128 + signal number.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from offline.pipeline.errors import LocalRunError

WORKDIR_MARKER = ".promote-local-run"
"""Marks a work directory as a local run's (so it may be emptied) and holds its lock."""
STOP_GRACE_SECONDS = 5.0
"""How long a child gets between SIGTERM and SIGKILL."""


class Interrupted(KeyboardInterrupt):
    """The run got SIGTERM or SIGINT; `exit_code` is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class JobTimeoutError(RuntimeError):
    """The job ran past its limit and was stopped."""


class WorkdirBusyError(RuntimeError):
    """Another run holds the work directory's lock."""

    def __init__(self, workdir: Path, holder: str) -> None:
        super().__init__(
            f"another local run (PID {holder}) holds {workdir}; wait for it to finish, "
            f"stop it (kill {holder}), or pass another --workdir"
        )
        self.workdir = workdir
        self.holder = holder


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `Interrupted` for the duration of the block."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del frame
        raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stop_group(process: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """End `process` and its whole process group: SIGTERM, then SIGKILL after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; members it left behind still share its group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        _wait_until_gone(process.pid, grace)
        return


def _wait_until_gone(group: int, seconds: float) -> None:
    """Return once no process of `group` is left (a SIGKILL is not instant), or after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def run_job(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes] | IO[str],
    timeout: float | None,
) -> int:
    """Run one job in its own process group, output to `log`; return its exit status.

    Raises JobTimeoutError past `timeout` seconds; on any exception (an interrupt included)
    the job's group is stopped before it propagates.
    """
    process = subprocess.Popen(
        list(command),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
    )
    try:
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise JobTimeoutError(f"stopped after {timeout} s") from None
        # The job's own children (same group) must not outlive it either.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return status
    finally:
        if process.returncode is None:
            stop_group(process)


class WorkdirLock:
    """An exclusive lock on one work directory, held through an open file in it.

    `flock` locks end with the process that holds them, so a crashed run never
    leaves a stale lock; the file keeps the holder's PID for the message.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self, workdir: Path) -> None:
        """Take the lock and write this process's PID into it (WorkdirBusyError if held)."""
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.readline().strip() or "unknown"
            handle.close()
            raise WorkdirBusyError(workdir, holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\nlocal pipeline run scratch; emptied by every run\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None


@contextlib.contextmanager
def locked_workdir(workdir: Path) -> Iterator[None]:
    """Lock `workdir` for this run and empty it (never mix a previous run's files into this one).

    A directory with files that no local run made is never emptied.
    """
    marker = workdir / WORKDIR_MARKER
    try:
        if workdir.exists() and any(workdir.iterdir()) and not marker.is_file():
            raise LocalRunError(
                f"{workdir} is not empty and was not made by a local run; "
                "choose another --workdir or empty it yourself",
                exit_code=2,
            )
        workdir.mkdir(parents=True, exist_ok=True)
        lock = WorkdirLock(marker)
        lock.acquire(workdir)
    except OSError as error:
        raise LocalRunError(
            f"cannot use work directory {workdir}: {error.strerror}; choose another --workdir",
            exit_code=2,
        ) from None
    try:
        try:
            for entry in workdir.iterdir():
                if entry.name != WORKDIR_MARKER:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError as error:
            raise LocalRunError(
                f"cannot empty work directory {workdir}: {error.strerror} ({error.filename})",
                exit_code=2,
            ) from None
        yield
    finally:
        lock.release()
