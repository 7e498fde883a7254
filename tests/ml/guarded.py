"""Fresh-process tests: refuse and record every network attempt, from interpreter start.

    python -m tests.ml.guarded <report.json> <module> [args...]

runs `<module>` as `__main__` (like `python -m <module> args...`) with every
socket connect, DNS lookup and botocore request refused, then writes the
attempts, this interpreter's `hash("promote-code")` (so the caller can check
the child had another hash seed) and the top-level packages it imported to
`<report.json>`. Importing this module
imports only the standard library and botocore's session, so whatever the
module imports afterwards (the sagemaker SDK, its import-time side effects) is
guarded.
"""

from __future__ import annotations

import json
import runpy
import socket
import sys
from pathlib import Path
from typing import Any

import botocore.session

HASH_PROBE = "promote-code"


def install() -> list[str]:
    """Guard this process; returns the (live) list of refused attempts."""
    attempts: list[str] = []

    def refuse(*args: Any, **_: Any) -> Any:
        attempts.append(repr(args[1:] or args))
        raise OSError("network access in a guarded process")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.getaddrinfo = refuse
    original = botocore.session.Session.__init__

    def init(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.register("before-send", lambda request, **_: refuse(None, request.url))

    botocore.session.Session.__init__ = init
    return attempts


def main(argv: list[str]) -> int:
    report, module, *args = argv
    attempts = install()
    sys.argv = [module, *args]
    code: object = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        packages = sorted({name.partition(".")[0] for name in sys.modules})
        report_data = {"attempts": attempts, "hash": hash(HASH_PROBE), "packages": packages}
        Path(report).write_text(json.dumps(report_data))
    return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
