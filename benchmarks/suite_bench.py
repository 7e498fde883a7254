"""`make test` from a fresh clone, this commit beside a baseline commit (target <= 90 s wall).

    uv run python benchmarks/suite_bench.py --baseline <commit> [--rounds 2]

Each round clones the baseline and this checkout's HEAD into new temporary folders (with
`../shared` beside them, as CI has it) and runs `make test` in each, one after the other,
so both meet the same machine; the machine's speed drifts by tens of percent over an hour,
so only numbers from one run compare. Setup (`uv sync` from uv's cache) is outside the
timing, the cold mypy and the whole pytest run are inside it. Commit first: uncommitted
changes are not measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TARGET_SECONDS = 90.0


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def environment() -> dict[str, str]:
    """This environment without the variables of the venv that runs this script."""
    return {
        k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")
    }


def clone(commit: str, into: Path) -> Path:
    """A fresh clone of `commit` in `into`/repo with `shared` beside it, set up."""
    checkout = into / "repo"
    git("clone", "--quiet", "--no-hardlinks", str(REPO), str(checkout))
    git("checkout", "--quiet", commit, cwd=checkout)
    if SHARED.is_dir():
        shutil.copytree(SHARED, into / "shared", symlinks=True)
    subprocess.run(
        ["make", "setup"], cwd=checkout, env=environment(), check=True, capture_output=True
    )
    return checkout


def timed_make_test(checkout: Path) -> tuple[float, str]:
    """(`make test` wall seconds, pytest's summary line); exits if the suite fails."""
    started = time.perf_counter()
    result = subprocess.run(
        ["make", "test"],
        check=False,
        cwd=checkout,
        env=environment(),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if " in " in line and "passed" in line]
    if result.returncode != 0:
        sys.exit(f"make test failed in {checkout}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed, (lines[-1].strip("= ") if lines else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="commit to compare with")
    parser.add_argument("--rounds", type=int, default=1, help="rounds (baseline, then HEAD)")
    args = parser.parse_args()
    # Started as `cmd &` by a script, this process ignores SIGINT and so would every make,
    # pytest and policy pack below; the baseline's packs then wait out their stop grace.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    commits = {"baseline": git("rev-parse", args.baseline), "HEAD": git("rev-parse", "HEAD")}
    if git("status", "--porcelain", "--untracked-files=no"):
        print("note: uncommitted changes are not measured (HEAD is)", file=sys.stderr)
    seconds: dict[str, list[float]] = {name: [] for name in commits}
    for round_number in range(1, args.rounds + 1):
        for name, commit in commits.items():
            with tempfile.TemporaryDirectory(prefix="suite-bench-") as scratch:
                print(
                    f"round {round_number}: {name} {commit[:10]}: cloning and setting up",
                    flush=True,
                )
                checkout = clone(commit, Path(scratch))
                elapsed, summary = timed_make_test(checkout)
                seconds[name].append(elapsed)
                print(
                    f"round {round_number}: {name} {commit[:10]}: {elapsed:6.1f} s  ({summary})",
                    flush=True,
                )
    print(
        f"\nmake test from a fresh clone, best of {args.rounds} (target <= {TARGET_SECONDS:g} s):"
    )
    for name, commit in commits.items():
        print(f"  {name:8} {commit[:10]}  {min(seconds[name]):6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
