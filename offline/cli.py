"""`promote`: the offline commands (plan every stack under mocks, run the pipeline locally)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pulumi

from infra.settings import IDENTITY_STACK, STACKS, SettingsError, source_in_order
from offline.lineage import configure as configure_lineage
from offline.pipeline.interface import RECORD_FILE, add_run_options
from offline.pipeline.mermaid import mermaid
from offline.plan.capture import StackPlan
from offline.plan.harness import OFFLINE_IMAGE_TAG, plan_stacks
from offline.plan.report import render
from offline.policy.errors import PolicyPackError
from offline.policy.report import format_report, mandatory
from offline.policy.runner import DEFAULT_TIMEOUT, analyze_plans

DEFAULT_PLAN_DIR = Path("build/plan")


PIPELINE_TYPE = "aws:sagemaker/pipeline:Pipeline"


def write_plan_files(plan: StackPlan, out: Path) -> list[Path]:
    """build/plan/<stack>.json, and per pipeline its definition and a mermaid DAG."""
    written = [plan.write(out)]
    for pipeline in plan.of_type(PIPELINE_TYPE):
        definition = json.loads(pipeline.inputs["pipelineDefinition"])
        directory = out / plan.stack
        directory.mkdir(parents=True, exist_ok=True)
        definition_path = directory / "pipeline.json"
        definition_path.write_text(json.dumps(definition, indent=2, sort_keys=True) + "\n")
        diagram_path = directory / "pipeline.mmd"
        diagram_path.write_text(mermaid(definition))
        written += [definition_path, diagram_path]
    return written


PLANNED = (IDENTITY_STACK, *STACKS)
LOCAL_RUNS = Path("build/local")


def recorded_verifications(
    stacks: Sequence[str], commit: str, root: Path = LOCAL_RUNS
) -> dict[str, dict[str, Any]]:
    """The records `promote pipeline run --local --verify` wrote for `commit`, by stack.

    A record of another commit is left out (the plan then simulates one, and says so).
    """
    found: dict[str, dict[str, Any]] = {}
    for source in sorted({str(source_in_order(s)) for s in stacks if source_in_order(s)}):
        path = root / source / RECORD_FILE
        if path.is_file():
            record = json.loads(path.read_text())
            if isinstance(record, dict) and record.get("commit") == commit:
                found[source] = record
                print(f"{source}: verification record {path} (from the local run)")
            else:
                print(f"{source}: {path} is not for commit {commit}; its verification is simulated")
    return found


def _plan(args: argparse.Namespace) -> int:
    stacks = args.stack or list(PLANNED)
    started = time.perf_counter()
    try:
        plans = plan_stacks(
            stacks,
            image_tag=args.image_tag,
            verifications=recorded_verifications(stacks, args.image_tag),
        )
    except (SettingsError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"planned {', '.join(plans)} in {time.perf_counter() - started:.2f} s\n")
    for plan in plans.values():
        print(render(plan))
        if args.json:
            try:
                written = write_plan_files(plan, args.out)
            except OSError as error:
                print(
                    f"error: cannot write the plan under --out {args.out}: "
                    f"{error.strerror or error}; pass a writable directory",
                    file=sys.stderr,
                )
                return 2
            for path in written:
                print(f"wrote {path}")
        print()
    if not args.policies:
        return 0
    started = time.perf_counter()
    print("policy pack policies/ over the Analyzer gRPC protocol:")
    try:
        results = analyze_plans(plans, timeout=args.policy_timeout)
    except PolicyPackError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    for stack, violations in results.items():
        print(format_report(stack, violations))
    print(f"analyzed in {time.perf_counter() - started:.2f} s")
    blocked = sorted(stack for stack, found in results.items() if mandatory(found))
    if blocked:
        print(f"mandatory policy violations in: {', '.join(blocked)}", file=sys.stderr)
        return 1
    return 0


def run_locally(argv: list[str]) -> int:
    """`python -m offline.pipeline.cli <argv>`, imported when run: the local runner brings
    pandas, numpy and joblib, which `promote plan` never needs."""
    from offline.pipeline.cli import main  # noqa: PLC0415

    return main(argv)


def _pipeline_run(args: argparse.Namespace) -> int:
    if not args.local:
        overrides = " ".join(f"Name={name},Value={value}" for name, value in args.parameter)
        print(
            "error: offline only --local is available; on AWS start the real pipeline with\n"
            f"  aws sagemaker start-pipeline-execution --pipeline-name "
            f"$(pulumi stack output pipeline_name --stack {args.stack})"
            + (f" --pipeline-parameters {overrides}" if overrides else ""),
            file=sys.stderr,
        )
        return 2
    # The run ends as the real one does: the approval event reaches the deployer handler.
    argv = ["--stack", args.stack, "--plan-dir", str(args.plan_dir), "--deploy"]
    if args.verify:
        argv.append("--verify")
    if args.workdir is not None:
        argv += ["--workdir", str(args.workdir)]
    if args.dataset is not None:
        argv += ["--dataset", str(args.dataset)]
    for name, value in args.parameter:
        argv += ["--parameter", f"{name}={value}"]
    if args.runs != 1:
        argv += ["--runs", str(args.runs)]
    return run_locally(argv)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="promote", description="Offline tools of the promote-code template."
    )
    commands = root.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan", help="run each stack's Pulumi program under mocks and print its resources"
    )
    plan.add_argument(
        "--stack", action="append", choices=PLANNED, help="stack to plan (repeatable; default all)"
    )
    plan.add_argument("--json", action="store_true", help="write build/plan/<stack>.json")
    plan.add_argument(
        "--policies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the policy pack over each plan (default on); exit 1 on a mandatory violation, "
        "2 on a broken policy config, 3 when the pack fails",
    )
    plan.add_argument(
        "--policy-timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="deadline for the whole policy analysis, start-up included "
        f"(default {DEFAULT_TIMEOUT:g}); exceeding it exits 3",
    )
    plan.add_argument("--out", type=Path, default=DEFAULT_PLAN_DIR, help="where --json writes")
    plan.add_argument(
        "--image-tag",
        default=OFFLINE_IMAGE_TAG,
        help="commit whose images the environment stacks resolve (offline: any 40-hex value)",
    )
    plan.set_defaults(run=_plan)

    pipeline = commands.add_parser("pipeline", help="the training pipeline")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    run = pipeline_commands.add_parser(
        "run",
        help="run the stack's generated pipeline definition with the local step scripts, "
        "against moto on 127.0.0.1, ending with the deployer",
    )
    run.add_argument("--local", action="store_true", help="run offline (the only mode here)")
    run.add_argument("--stack", default="dev", choices=[s for s in STACKS if s != "ops"])
    run.add_argument("--plan-dir", type=Path, default=DEFAULT_PLAN_DIR)
    run.add_argument("--workdir", type=Path, default=None, help="default build/local/<stack>")
    run.add_argument("--dataset", type=Path, default=None, help="mtsamples-format CSV")
    run.add_argument(
        "--verify",
        action="store_true",
        help="then prove the commit as the staging promotion job does (ml.verify) and write "
        "<workdir>/verification.json, which `promote plan` then gives the next stack",
    )
    add_run_options(run)
    run.set_defaults(run=_pipeline_run)

    monitor = commands.add_parser(
        "monitor",
        help="the drift loop on local AWS: traffic through the real serving code into "
        "capture files, the monitor job, the planned alarm and retraining state machine "
        "(options: python -m offline.monitoring --help)",
        add_help=False,
    )
    monitor.add_argument("arguments", nargs="*")
    monitor.set_defaults(run=_monitor)

    configure_lineage(
        commands.add_parser(
            "lineage",
            help="the chain endpoint -> endpoint config -> model package -> MLflow run -> "
            "commit, image digests, data hash (the real stack, or --local)",
        )
    )
    return root


def _monitor(args: argparse.Namespace) -> int:
    # Imported when run: it brings scikit-learn and the serving code, which `promote plan`
    # and `promote pipeline run` never need (about 2.4 s of every such process's start).
    from offline.monitoring import main as run_monitor  # noqa: PLC0415

    return run_monitor(args.arguments)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT.

    Both unwind every `with` block, and each ends the children it started
    (the policy pack's process group, step jobs) on the way out.
    """


def _interrupted(signum: int, _frame: object) -> None:
    # Once is enough: a second signal must not cut short the cleanup the first one started.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["monitor"]:
        # Its options are its module's own (python -m offline.monitoring): passed through whole.
        arguments = ["monitor", "--", *arguments[1:]]
    args = parser().parse_args(arguments)
    handlers = {
        signum: signal.signal(signum, _interrupted) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        code, name = EXIT_INTERRUPTED, "SIGINT"
    except Terminated:
        code, name = EXIT_TERMINATED, "SIGTERM"
    else:
        return code
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    print(f"promote: interrupted by {name}; the processes it started are stopped", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
