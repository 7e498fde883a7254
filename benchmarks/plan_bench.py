"""Offline plan of all four stacks (target < 10 s wall); `make test` is timed by suite_bench.py.

Each measurement runs in a fresh process, so imports (pulumi_aws, the sagemaker
SDK) are counted the way a user pays for them.
"""

from __future__ import annotations

import subprocess
import sys
import time

PLAN = [sys.executable, "-m", "offline.cli", "plan", "--json"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    plan = min(timed(PLAN) for _ in range(2))
    print(f"offline plan, 4 stacks (best of 2): {plan:6.2f} s  (target < 10 s)")


if __name__ == "__main__":
    main()
