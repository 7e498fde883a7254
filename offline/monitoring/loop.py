"""`promote monitor --local`: the drift demo on the planned stack's names, with the
planned drift alarm and (where the stack retrains on drift) the planned state machine
(offline/retraining.py) after each run.

`main` runs the no-drift stream, then the shifted one, with `MonitorTarget` the planned
schedule's own request; after each run `_alarm_step` evaluates the planned alarm and runs
the planned trigger on its event, and `loop_problem` says what did not happen as planned.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

from offline.aws import LocalAws, local_aws
from offline.monitoring.demo import MonitorRun, run_drift_demo
from offline.monitoring.job import plan_target
from offline.plan.capture import StackPlan
from offline.retraining import DriftTrigger, Outcome

LOOP_SCENARIOS = ("unchanged", "one specialty")
"""`promote monitor --local`: the no-drift stream, then the shifted one."""
ALARM_DELAY = timedelta(minutes=1)
"""The alarm is evaluated this long after a run's scheduled time (its metric is there)."""


def _alarm_step(
    trigger: DriftTrigger, out: Callable[[str], None], outcomes: list[Outcome]
) -> Callable[[LocalAws, MonitorRun], None]:
    """After each run: evaluate the planned alarm, run the planned trigger on its event."""

    def step(aws: LocalAws, run: MonitorRun) -> None:
        outcome = trigger.evaluate(aws.client, run.end + ALARM_DELAY)
        outcomes.append(outcome)
        evaluation = outcome.evaluation
        out(
            f"drift loop: alarm {evaluation.alarm_name}: {evaluation.previous_state} -> "
            f"{evaluation.state} ({evaluation.reason})"
        )
        if evaluation.event is None:
            out("drift loop: no state change, so no EventBridge event")
            return
        if not trigger.retrains:
            out("drift loop: this stack plans no retraining trigger (retrain_on_drift off)")
            return
        out(
            f"drift loop: EventBridge event {evaluation.event['id']} "
            f"{'matches' if outcome.matched else 'does not match'} the planned rule's pattern"
        )
        execution = outcome.execution
        if execution is None:
            return
        out(
            f"drift loop: state machine {trigger.machine_name}: {' -> '.join(execution.path)} "
            f"({execution.status}{', ' + str(execution.error) if execution.error else ''})"
        )
        for started in trigger.executions(aws.client)[:1]:
            out(
                f"drift loop: local SageMaker records {started['PipelineExecutionArn']} "
                f"({started['PipelineExecutionDisplayName']}, "
                f"{started['PipelineExecutionStatus']} in moto)"
            )

    return step


def loop_problem(
    trigger: DriftTrigger, runs: list[MonitorRun], outcomes: list[Outcome]
) -> str | None:
    """None when the loop behaved as planned, else what did not happen."""
    quiet = runs[0]
    if quiet.verdict == "drift" or outcomes[0].evaluation.state == "ALARM":
        return f"the unchanged stream alarmed (score {quiet.score})"
    if outcomes[1].evaluation.state != "ALARM":
        return f"the alarm did not fire on the shifted stream ({outcomes[1].evaluation.reason})"
    if not trigger.retrains:
        return None
    execution = outcomes[1].execution
    if execution is None or execution.final_state != "StartRetraining":
        reached = "nothing" if execution is None else " -> ".join(execution.path)
        return f"the retraining trigger did not start the pipeline (reached {reached})"
    if execution.status != "SUCCEEDED":
        return f"StartRetraining failed: {execution.error}: {execution.cause}"
    return None


def main(argv: Sequence[str] | None = None, *, aws: LocalAws | None = None) -> int:
    """`promote monitor --local [--stack prod]`: the drift loop on the stack's plan.

    Exit 0 when the loop behaved (no drift -> no alarm; shifted stream -> drift -> alarm
    -> one drift-triggered pipeline execution where the stack retrains on drift), 1 when
    the shifted stream does not cross the threshold or the loop did something else, 2 for
    usage (no plan: run `promote plan --json` first; a stack without a drift monitor).
    `aws`: local AWS in the plan's account to run on, left running for a caller that reads
    what the loop left there (default: one started and stopped here).
    """
    parser = argparse.ArgumentParser(
        prog="promote monitor",
        description="Drift monitoring, locally: capture, the monitor job, the planned alarm "
        "and retraining trigger, on local AWS.",
    )
    parser.add_argument("--local", action="store_true", help="run on local AWS (required)")
    parser.add_argument("--stack", default="prod", help="planned stack (default prod)")
    parser.add_argument("--plan-dir", type=Path, default=Path("build/plan"))
    parser.add_argument(
        "--workdir", type=Path, help="scratch folder (default build/monitor/<stack>, emptied)"
    )
    parser.add_argument("--notes", type=int, default=250, help="notes per stream")
    parser.add_argument("--training-notes", type=int, default=900)
    args = parser.parse_args(argv)
    if not args.local:
        parser.print_usage(sys.stderr)
        print(
            "promote monitor: only --local exists (in AWS the job runs on its schedule)",
            file=sys.stderr,
        )
        return 2
    path = args.plan_dir / f"{args.stack}.json"
    if not path.is_file():
        print(
            f"promote monitor: no plan {path}: run `promote plan --json` first",
            file=sys.stderr,
        )
        return 2
    plan = StackPlan.from_json(path.read_text())
    try:
        target = plan_target(plan)
        trigger = DriftTrigger.from_plan(plan)
    except (ValueError, KeyError) as error:
        print(f"promote monitor: {path}: {error}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path("build/monitor") / args.stack
    if args.workdir is None and workdir.exists():
        shutil.rmtree(workdir)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with ExitStack() as stack:
        if aws is None:
            aws = stack.enter_context(local_aws(target.region, target.account))
        trigger.install(aws.client)
        print(
            f"drift loop: {args.stack} plan: alarm {trigger.alarm_name} "
            f"({trigger.alarm['metricName']} {trigger.alarm['comparisonOperator']} "
            f"{trigger.alarm['threshold']}), "
            + (
                f"trigger {trigger.machine_name} -> pipeline {trigger.pipeline_name}"
                if trigger.retrains
                else "no retraining trigger"
            )
        )
        runs = run_drift_demo(
            aws,
            target,
            workdir,
            LOOP_SCENARIOS,
            notes_per_scenario=args.notes,
            training_notes=args.training_notes,
            on_run=_alarm_step(trigger, print, outcomes),
        )
    elapsed = time.perf_counter() - started
    shifted = runs[1]
    if shifted.verdict != "drift":
        print(
            f"drift loop: FAILED in {elapsed:.0f} s: the shifted stream scored {shifted.score} "
            f"({shifted.verdict}), not above the threshold"
        )
        return 1
    problem = loop_problem(trigger, runs, outcomes)
    if problem is not None:
        print(f"drift loop: FAILED in {elapsed:.0f} s: {problem}")
        return 1
    print(f"drift loop: behaved as planned in {elapsed:.0f} s")
    return 0
