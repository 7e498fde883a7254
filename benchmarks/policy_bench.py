"""Benchmark: policy pack start-up plus analysis of all four stacks (target < 3 s).

    uv run python benchmarks/policy_bench.py [--repeat N]

The offline plans are built first and not counted: the figure is what the
policy step adds to an offline plan (start the pack as the engine does,
Configure + Analyze + AnalyzeStack per stack, stop the pack).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from infra.settings import STACKS
from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stacks
from offline.policy.config import load_policy_config
from offline.policy.report import mandatory
from offline.policy.runner import PolicyPackProcess

TARGET_SECONDS = 3.0


def run_once(plans: dict[str, StackPlan]) -> tuple[float, dict[str, float], float, float]:
    started = time.perf_counter()
    with PolicyPackProcess(project="promote-code") as pack:
        ready = time.perf_counter()
        per_stack: dict[str, float] = {}
        for stack, plan in plans.items():
            before = time.perf_counter()
            violations = pack.analyze(plan, load_policy_config(stack))
            per_stack[stack] = time.perf_counter() - before
            if mandatory(violations):
                print(f"warning: {stack} has mandatory violations", file=sys.stderr)
        analyzed = time.perf_counter()
    stopped = time.perf_counter()
    return ready - started, per_stack, stopped - analyzed, stopped - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs to report (default 3)")
    options = parser.parse_args(argv)

    before = time.perf_counter()
    plans = plan_stacks(STACKS)
    planning = time.perf_counter() - before
    count = sum(len(plan.resources) for plan in plans.values())
    print(f"offline plans: {len(plans)} stacks, {count} resources in {planning:.2f}s (not counted)")

    totals = []
    for run in range(1, options.repeat + 1):
        startup, per_stack, stop, total = run_once(dict(plans))
        totals.append(total)
        stacks = "  ".join(
            f"{stack} {seconds * 1000:.0f}ms" for stack, seconds in per_stack.items()
        )
        print(
            f"run {run}: pack start-up {startup:.2f}s | analysis {stacks} | "
            f"stop {stop:.2f}s | total {total:.2f}s"
        )
    median = statistics.median(totals)
    verdict = "OK" if median < TARGET_SECONDS else "OVER TARGET"
    print(f"median total {median:.2f}s (target < {TARGET_SECONDS:.0f}s): {verdict}")
    return 0 if median < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
