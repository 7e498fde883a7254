"""The policy pack's process, started and ended the way the Pulumi engine handles an analyzer.

The engine runs `pulumi-analyzer-policy-python <engine address> .` from the pack
directory, which runs `python -u -m pulumi.policy <engine address> .`; the first
line the process prints is the port of its Analyzer gRPC server. Here the pack
runs in its own process group (its own session), so a Ctrl-C at the terminal
reaches only the runner, and `stop` ends the group: SIGINT first (pulumi_policy
serves until KeyboardInterrupt), SIGKILL for whatever is left. The pack starts with
SIGINT at its default even where the runner ignores it (see `_sigint_not_inherited`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import IO, Any

import grpc
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2_grpc

from infra.context import REPO_ROOT
from offline.policy.config import shown
from offline.policy.errors import Deadline, PolicyConfigError, PolicyPackError
from offline.policy.protocol import ORGANIZATION

DEFAULT_PACK_DIR = REPO_ROOT / "policies"

_INTERRUPT_GRACE = 3.0
"""Seconds the pack gets to stop on SIGINT before its group is killed."""


class _Engine(engine_pb2_grpc.EngineServicer):
    """The engine address the pack is given; what it logs there joins its stderr lines."""

    def __init__(self, sink: deque[str]) -> None:
        self.sink = sink

    def Log(self, request: Any, _context: Any) -> empty_pb2.Empty:  # noqa: N802 - gRPC name
        self.sink.append(str(request.message))
        return empty_pb2.Empty()


def _drain(stream: IO[bytes], sink: deque[str]) -> None:
    for line in iter(stream.readline, b""):
        sink.append(line.decode(errors="replace").rstrip())


def _still_ignored(_signum: int, _frame: object) -> None:
    pass


@contextlib.contextmanager
def _sigint_not_inherited() -> Iterator[None]:
    """Children started in the block do not inherit an ignored SIGINT.

    A process started in the background by a non-interactive shell (`cmd &` in a CI
    script) ignores SIGINT, and exec keeps an ignored signal ignored, so the
    pack would too: Python then installs no KeyboardInterrupt handler, pulumi_policy's
    serve loop never ends on SIGINT and every `stop` waits out its grace before SIGKILL.
    A caught signal is reset to its default by exec, so for the block SIGINT is caught by
    a handler that does nothing (the runner still ignores it), then ignored again. Only
    the main thread may change a handler; elsewhere nothing changes.
    """
    if (
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    signal.signal(signal.SIGINT, _still_ignored)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _exit_status(pid: int) -> int | None:
    """The exit code of child `pid` without reaping it (None while it runs).

    Not reaping keeps the process group's id taken until the group is ended.
    """
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None:
        return None
    return -info.si_status if info.si_code in (os.CLD_KILLED, os.CLD_DUMPED) else info.si_status


class PackProcess:
    """One policy pack process and the engine endpoint it talks back to."""

    def __init__(
        self, pack_dir: Path = DEFAULT_PACK_DIR, *, project: str | None, stack: str | None
    ) -> None:
        self.pack_dir = pack_dir.resolve()
        self.project = project
        self.stack = stack
        self.returncode: int | None = None
        """How the process ended, once `stop` has ended it."""
        self._process: subprocess.Popen[bytes] | None = None
        self._engine_server: grpc.Server | None = None
        self._stderr: deque[str] = deque(maxlen=200)
        self._threads: list[threading.Thread] = []

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._status() is None

    @property
    def stderr(self) -> list[str]:
        """The last lines the pack wrote to stderr."""
        return list(self._stderr)

    def _status(self) -> int | None:
        if self._process is None:
            return self.returncode
        if self._process.returncode is not None:
            return self._process.returncode
        return _exit_status(self._process.pid)

    def interpreter(self) -> str:
        """The Python the shim would pick: the pack's `virtualenv` option, else `python3`.

        The engine hands the shim `-<option>=<value>` for each runtime option of
        PulumiPolicy.yaml; the shim only acts on `virtualenv`. In place of
        "python3 on PATH" the runner uses its own interpreter (the project's env).
        """
        manifest = self.pack_dir / "PulumiPolicy.yaml"
        try:
            document = yaml.safe_load(manifest.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise PolicyConfigError(f"{shown(manifest)}: {str(error).splitlines()[0]}") from None
        runtime = document.get("runtime") if isinstance(document, dict) else None
        options = runtime.get("options") if isinstance(runtime, dict) else None
        virtualenv = options.get("virtualenv") if isinstance(options, dict) else None
        if not virtualenv:
            return sys.executable
        python = (self.pack_dir / str(virtualenv)) / "bin" / "python"
        if not python.is_file():
            raise PolicyConfigError(
                f'{shown(manifest)}: virtualenv "{python.parent.parent}" doesn\'t appear to be '
                "a virtual environment"
            )
        return str(python)

    def command(self, engine_address: str) -> list[str]:
        """What `pulumi-analyzer-policy-python <engine> .` runs, from the pack directory."""
        return [self.interpreter(), "-u", "-m", "pulumi.policy", engine_address, "."]

    def environment(self) -> dict[str, str]:
        """The engine's environment for policy packs (constructEnv in analyzer_plugin.go)."""
        env = dict(os.environ)
        env.update({"PULUMI_ORGANIZATION": ORGANIZATION, "PULUMI_DRY_RUN": "true"})
        if self.project:
            env["PULUMI_PROJECT"] = self.project
        if self.stack:
            env["PULUMI_STACK"] = self.stack
        return env

    def start(self, deadline: Deadline) -> tuple[int, str]:
        """Start the pack; returns its Analyzer port and the engine address it was given."""
        if self._process is not None:
            raise PolicyPackError("the policy pack process is already started")
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyConfigError(
                f"{shown(self.pack_dir)} is not a policy pack (no PulumiPolicy.yaml)"
            )
        try:
            return self._start(deadline)
        except BaseException:
            self.stop()
            raise

    def _start(self, deadline: Deadline) -> tuple[int, str]:
        command = self.command("127.0.0.1:0")  # resolves the interpreter before anything runs
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(self._stderr), self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()
        engine_address = f"127.0.0.1:{engine_port}"
        command[-2] = engine_address
        try:
            with _sigint_not_inherited():
                self._process = subprocess.Popen(
                    command,
                    cwd=self.pack_dir,
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
        except OSError as error:
            raise PolicyPackError(
                f"policy pack {shown(self.pack_dir)} could not be started with {command[0]}: "
                f"{error.strerror or error}"
            ) from None
        assert self._process.stdout is not None and self._process.stderr is not None
        self._spawn(_drain, self._process.stderr, self._stderr)
        port = self._read_port(self._process.stdout, deadline)
        # Keep reading what the pack prints, so a full pipe never blocks it.
        self._spawn(_drain, self._process.stdout, deque(maxlen=1))
        return port, engine_address

    def _spawn(self, target: Any, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_port(self, stdout: IO[bytes], deadline: Deadline) -> int:
        first: list[bytes] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        during = f"the wait for the policy pack {shown(self.pack_dir)} to print its port"
        reader.join(deadline.remaining(during))
        if reader.is_alive():
            raise deadline.expired(during)
        line = first[0].decode(errors="replace").strip() if first else ""
        if not line:
            self._wait_exit(5.0)
            raise PolicyPackError(self.failure("exited before printing its port"))
        try:
            return int(line)
        except ValueError:
            raise PolicyPackError(
                self.failure(f"printed {line[:80]!r} where the engine expects a port number")
            ) from None

    def _wait_exit(self, timeout: float) -> None:
        ends = time.monotonic() + timeout
        while self._process is not None and self._status() is None and time.monotonic() < ends:
            time.sleep(0.02)
        for thread in self._threads:
            thread.join(0.5)

    def failure(self, what: str) -> str:
        """One line: which pack, what went wrong, its exit code and last stderr line."""
        code = self._status()
        status = f" (exit code {code})" if code is not None else ""
        last = next((line.strip() for line in reversed(self._stderr) if line.strip()), "")
        said = f": {last[:300]}" if last else ""
        return f"policy pack {shown(self.pack_dir)} {what}{status}{said}"

    def stop(self) -> None:
        """End the pack's process group (SIGINT, then SIGKILL) and its engine; idempotent."""
        process, self._process = self._process, None
        if process is not None:
            self._end_group(process)
            for thread in self._threads:
                thread.join(timeout=1)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._threads = []
        if self._engine_server is not None:
            self._engine_server.stop(grace=None)
            self._engine_server = None

    def _end_group(self, process: subprocess.Popen[bytes]) -> None:
        group = process.pid  # the pack leads its own session, so its pid is the group's id
        if process.returncode is None and _exit_status(process.pid) is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGINT)
            ends = time.monotonic() + _INTERRUPT_GRACE
            while _exit_status(process.pid) is None and time.monotonic() < ends:
                time.sleep(0.01)
        # The leader is not reaped yet, so the group id is still this group's: end the rest.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.returncode = process.wait(timeout=5)
