"""`promote pipeline run --local` (`python -m offline.pipeline.cli`): the pipeline here.

Reads the stack's offline plan (`build/plan/<stack>.json`, written by the plan
step), takes the generated pipeline definition and the stack outputs from it,
starts local AWS (moto on 127.0.0.1) and runs the definition end to end.
Exit status 0 only if every step that should run succeeded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from offline.aws import local_aws
from offline.pipeline.runner import ApprovalHook, LocalRunError, RunResult, StackOutputs, run_local

PIPELINE_TYPE = "aws:sagemaker/pipeline:Pipeline"


class PlanError(ValueError):
    """The plan file cannot drive a local run; the message says what to do."""


def load_plan(plan_dir: Path, stack: str) -> tuple[str, StackOutputs]:
    """The pipeline definition JSON and the stack outputs recorded in the offline plan."""
    from offline.plan.capture import StackPlan  # noqa: PLC0415 - the lead's plan format

    path = plan_dir / f"{stack}.json"
    if not path.is_file():
        raise PlanError(f"{path} not found: run the offline plan for stack {stack!r} first")
    plan = StackPlan.from_json(path.read_text())
    pipelines = plan.of_type(PIPELINE_TYPE)
    if len(pipelines) != 1:
        raise PlanError(f"{path}: expected one {PIPELINE_TYPE}, found {len(pipelines)}")
    definition = pipelines[0].inputs.get("pipelineDefinition")
    if not isinstance(definition, str) or not definition.startswith("{"):
        raise PlanError(
            f"{path}: the pipeline definition is not known in the plan ({definition!r}); "
            "the plan must resolve the stack's outputs"
        )
    keys = {
        "data_bucket": "data_bucket_name",
        "artifacts_bucket": "artifacts_bucket_name",
        "role_arn": "execution_role_arn",
        "model_package_group": "model_package_group_name",
        "region": "region",
    }
    missing = sorted(v for v in keys.values() if not isinstance(plan.outputs.get(v), str))
    if missing:
        raise PlanError(f"{path}: stack outputs {missing} are missing or unknown")
    outputs = StackOutputs(**{field: str(plan.outputs[key]) for field, key in keys.items()})
    return definition, outputs


def print_summary(result: RunResult) -> None:
    print("\nsteps:")
    for step in result.steps:
        print(f"  {step.name:<16} {step.status:<10} {step.seconds:6.2f}s")
    metrics: dict[str, Any] = result.metrics.get("multiclass_classification_metrics", {})
    if metrics:
        print("metrics:")
        for key in ("accuracy", "weighted_f1", "macro_f1"):
            if key in metrics:
                print(f"  {key:<12} {metrics[key]['value']:.4f}")
        print(f"  test notes   {result.metrics.get('test_notes')}")
    print(f"model package: {result.model_package_arn} ({result.approval_status})")
    print(f"total: {result.seconds:.1f}s")


def main(argv: list[str] | None = None, on_approved: ApprovalHook | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--plan-dir", type=Path, default=Path("build/plan"))
    parser.add_argument("--workdir", type=Path, default=None, help="default build/local/<stack>")
    parser.add_argument("--dataset", type=Path, default=None, help="mtsamples-format CSV")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path("build/local") / args.stack
    try:
        definition, outputs = load_plan(args.plan_dir, args.stack)
    except PlanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    extra: dict[str, Any] = {"dataset_csv": args.dataset} if args.dataset else {}
    try:
        with local_aws(outputs.region, outputs.account_id) as aws:
            result = run_local(definition, outputs, aws, workdir, on_approved=on_approved, **extra)
    except LocalRunError as error:
        print(f"\nFAILED at step {error.step or '-'}: {error}", file=sys.stderr)
        if error.log:
            print(f"--- log of {error.step} ---\n{error.log.rstrip()}\n---", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; local AWS stopped", file=sys.stderr)
        return 130
    print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
