"""The one error a local run stops with, and the exit status it maps to."""

from __future__ import annotations


class LocalRunError(RuntimeError):
    """The local run stopped; `step` and `log` say where and why, `exit_code` how to exit.

    Exit codes follow the project's convention: 1 a step (or what it checked) failed,
    2 a usage or configuration error (a path, a parameter, a definition from other code).
    """

    def __init__(
        self, message: str, step: str | None = None, log: str = "", exit_code: int = 1
    ) -> None:
        super().__init__(message)
        self.step = step
        self.log = log
        self.exit_code = exit_code
