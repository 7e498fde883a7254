"""What can go wrong when the pack runs, with the exit code each failure gives, and the deadline."""

from __future__ import annotations

import time


class PolicyPackError(RuntimeError):
    """The policy pack could not be started, timed out or answered an RPC with an error."""

    exit_code = 3
    """Internal error (conventions): the pack or its host broke, not the user's input."""


class PolicyConfigError(PolicyPackError):
    """A policy config is missing, unreadable or does not fit the pack."""

    exit_code = 2


class PolicyTimeoutError(PolicyPackError):
    """The analysis did not finish within its deadline."""


class Deadline:
    """One time budget for a whole analysis: start-up, every RPC and the wait for the port."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"a deadline needs a positive number of seconds, got {seconds}")
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def remaining(self, during: str) -> float:
        """Seconds left for what happens `during` (a noun phrase); raises when none are."""
        left = self._ends - time.monotonic()
        if left <= 0:
            raise self.expired(during)
        return left

    def expired(self, during: str) -> PolicyTimeoutError:
        return PolicyTimeoutError(
            f"the policy analysis exceeded its {self.seconds:g} s deadline during {during} "
            "(promote plan --policy-timeout)"
        )
