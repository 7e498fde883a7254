"""The one error a local run stops with, and the exit statuses a run ends with."""

from __future__ import annotations

EXIT_REJECTED = 1
"""The run succeeded but its condition rejected the model (registered, not approved), or the
staging verification failed: what was checked failed."""
EXIT_USAGE = 2
"""A usage or configuration error (a path, a parameter, a definition from other code)."""
EXIT_STEP_FAILED = 4
"""A step (or the approval hook) failed: its log says why."""


class LocalRunError(RuntimeError):
    """The local run stopped; `step` and `log` say where and why, `exit_code` how to exit."""

    def __init__(
        self,
        message: str,
        step: str | None = None,
        log: str = "",
        exit_code: int = EXIT_STEP_FAILED,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.log = log
        self.exit_code = exit_code
