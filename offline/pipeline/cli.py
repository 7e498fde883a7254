"""`promote pipeline run --local` (`python -m offline.pipeline.cli`): the pipeline here.

Reads the stack's offline plan (`build/plan/<stack>.json`, written by
`promote plan --json`), takes the generated pipeline definition and the stack
outputs from it, starts local AWS (moto on 127.0.0.1) and runs the definition
end to end; with `--deploy` (what `promote pipeline run --local` passes) an
approval ends in the deployer, as in AWS.

`--parameter Name=Value` (repeatable) overrides a pipeline parameter for this
run, as StartPipelineExecution's PipelineParameters do (e.g.
`--parameter MetricThreshold=0.3 --parameter RegularizationC=1`).

Exit status: 0 every step that should run succeeded and the model was approved;
1 the run succeeded but the condition rejected the model (registered, not
approved, not deployed: the metric and threshold are printed), or `--verify`
failed; 2 a usage or configuration error (no plan, a missing dataset, an
unknown or mistyped parameter, an unusable work directory, a definition from
other code); 3 an internal error (local AWS did not start, a bug); 4 a step
failed (its log is printed); 75 another run holds the work directory (try again
later); 130/143 interrupted by SIGINT/SIGTERM (step jobs and local AWS
stopped). Every failure is reported in one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ml.lineage import Lineage, LineageError, format_chain
from offline.aws import LocalAwsError, local_aws
from offline.deployer import LocalDeployer, local_config
from offline.lineage import write_local_lineage
from offline.mlflow_ui import ui_hint
from offline.pipeline.errors import EXIT_REJECTED, EXIT_USAGE
from offline.pipeline.interface import RECORD_FILE, add_run_options
from offline.pipeline.processes import Interrupted, WorkdirBusyError, interruptible
from offline.pipeline.runner import (
    ApprovalHook,
    LocalRunError,
    RunResult,
    StackOutputs,
    locked_workdir,
    run_locked,
)
from offline.pipeline.verification import verify_locally

PIPELINE_TYPE = "aws:sagemaker/pipeline:Pipeline"
_OUTPUT_KEYS = {
    "data_bucket": "data_bucket_name",
    "artifacts_bucket": "artifacts_bucket_name",
    "role_arn": "execution_role_arn",
    "model_package_group": "model_package_group_name",
    "region": "region",
}
_DEPLOYER_KEYS = ("endpoint_name", "kms_key_arn")

EXIT_INTERNAL, EXIT_BUSY = 3, 75


class PlanError(ValueError):
    """The plan file cannot drive a local run; the message says what to do."""


def _read_plan(plan_dir: Path, stack: str) -> tuple[Path, Any]:
    from offline.plan.capture import StackPlan  # noqa: PLC0415 - the plan format, read on use

    path = plan_dir / f"{stack}.json"
    if not path.is_file():
        raise PlanError(
            f"{path} does not exist; run `promote plan --json` first (offline plan of {stack!r})"
        )
    try:
        return path, StackPlan.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as error:
        message = f"{path} is not a readable plan ({error}); re-run `promote plan --json`"
        raise PlanError(message) from None


def load_plan(plan_dir: Path, stack: str) -> tuple[str, StackOutputs]:
    """The pipeline definition JSON and the stack outputs recorded in the offline plan."""
    return _planned_run(*_read_plan(plan_dir, stack))


def _planned_run(path: Path, plan: Any) -> tuple[str, StackOutputs]:
    pipelines = plan.of_type(PIPELINE_TYPE)
    if len(pipelines) != 1:
        raise PlanError(f"{path}: expected one {PIPELINE_TYPE}, found {len(pipelines)}")
    definition = pipelines[0].inputs.get("pipelineDefinition")
    if not isinstance(definition, str) or not definition.startswith("{"):
        raise PlanError(
            f"{path}: the pipeline definition is not known in the plan ({str(definition)[:80]!r}); "
            "the plan must resolve the stack's outputs"
        )
    missing = sorted(v for v in _OUTPUT_KEYS.values() if not isinstance(plan.outputs.get(v), str))
    if missing:
        raise PlanError(f"{path}: stack outputs {missing} are missing or unknown")
    outputs = StackOutputs(**{name: str(plan.outputs[key]) for name, key in _OUTPUT_KEYS.items()})
    return definition, outputs


def load_deployer(plan_dir: Path, stack: str) -> LocalDeployer:
    """The approval hook of the stack: its deployer, configured from the plan's outputs."""
    path, plan = _read_plan(plan_dir, stack)
    outputs = plan.outputs
    missing = sorted(k for k in _DEPLOYER_KEYS if not isinstance(outputs.get(k), str))
    if missing:
        raise PlanError(f"{path}: stack outputs {missing} (the deployer's) are missing or unknown")
    config = local_config(
        endpoint_name=outputs["endpoint_name"],
        model_package_group_name=outputs["model_package_group_name"],
        execution_role_arn=outputs["execution_role_arn"],
        artifacts_bucket=outputs["artifacts_bucket_name"],
        kms_key_arn=outputs["kms_key_arn"],
    )
    return LocalDeployer(config, echo=print)


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


def print_lineage(aws: Any, outputs: dict[str, Any], workdir: Path, result: RunResult) -> None:
    """The served model's chain, written to `<workdir>/lineage.json`, and the MLflow UI."""
    endpoint = outputs.get("endpoint_name")
    if not isinstance(endpoint, str):
        return
    try:
        path = write_local_lineage(aws, endpoint, workdir, tracking_uri=result.tracking_uri)
    except LineageError as error:
        print(f"lineage: {error}")
        return
    print(f"\nlineage of what {endpoint} serves ({path}):")
    print(format_chain(Lineage.from_dict(json.loads(path.read_text()))))
    if result.tracking_uri and result.tracking_uri.startswith("sqlite:///"):
        store = Path(result.tracking_uri.removeprefix("sqlite:///")).parent
        print(ui_hint(_shown_path(store)))


def _shown_path(path: Path) -> Path:
    """`path` relative to the working directory when it is inside it (shorter to copy)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def rejection(result: RunResult) -> str | None:
    """None if the condition approved the model, else what to tell the user, in words."""
    if result.rejected_by is None:
        return None
    compared = "; ".join(result.conditions.get(result.rejected_by, []))
    summary = result.metrics.get("summary")
    return (
        f"model registered as {result.model_package_arn} ({result.approval_status}) but NOT "
        f"approved and NOT deployed: {result.rejected_by} was false ({compared})"
        + (f"; evaluation: {summary}" if summary else "")
    )


_EXIT_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (PlanError, EXIT_USAGE),
    (WorkdirBusyError, EXIT_BUSY),
    (LocalAwsError, EXIT_INTERNAL),
    (KeyboardInterrupt, 130),
)


def exit_status(error: BaseException) -> int:
    """The exit status a run that stopped with `error` ends with (see the module docstring)."""
    if isinstance(error, Interrupted | LocalRunError):
        return error.exit_code
    return next((code for kind, code in _EXIT_STATUS if isinstance(error, kind)), EXIT_INTERNAL)


def describe(error: BaseException, workdir: Path) -> str:
    """What to print for a run that stopped with `error`: one line (plus a failed step's log)."""
    if isinstance(error, KeyboardInterrupt):
        return f"interrupted ({error or 'SIGINT'}): step jobs and local AWS stopped"
    if isinstance(error, LocalRunError) and error.exit_code != EXIT_USAGE:
        text = f"\nFAILED at step {error.step or '-'}: {error}"
        if error.log:
            text += f"\n--- log of {error.step} ---\n{error.log.rstrip()}\n---"
        return text
    if isinstance(error, LocalRunError):
        return f"error: {error.step + ': ' if error.step else ''}{error}"
    if any(isinstance(error, kind) for kind, _ in _EXIT_STATUS):
        return f"error: {error}"
    # A bug, not a user's mistake: still one line, and where to look.
    return f"error: internal error in the local run: {error!r}; the step logs are in {workdir}"


def run(
    stack: str,
    plan_dir: Path,
    workdir: Path,
    dataset: Path | None = None,
    on_approved: ApprovalHook | None = None,
    *,
    verify: bool = False,
    parameters: dict[str, str] | None = None,
    runs: int = 1,
) -> int:
    """Run the stack's planned pipeline locally; the exit status of the module docstring.

    `verify`: then prove the run as the staging promotion job does (`ml.verify`), writing
    `<workdir>/verification.json`; exit 1 if a check fails. `runs`: that many executions
    in one local AWS (run 2 and later in `<workdir>/run-<n>`, each judged against the
    champion the runs before approved); the exit status is the last run's.
    """
    try:
        path, plan = _read_plan(plan_dir, stack)
        definition, outputs = _planned_run(path, plan)
        if dataset is not None and not dataset.is_file():
            raise PlanError(f"--dataset {dataset}: no such file; pass an mtsamples-format CSV")
        extra: dict[str, Any] = {"dataset_csv": dataset} if dataset is not None else {}
        if parameters:
            extra["parameters"] = parameters
        # The lock first: a busy or unusable work directory is refused before local AWS starts.
        with (
            interruptible(),
            locked_workdir(workdir.resolve()),
            local_aws(outputs.region, outputs.account_id) as aws,
        ):
            result = run_locked(definition, outputs, aws, workdir, on_approved=on_approved, **extra)
            print_summary(result)
            for number in range(2, runs + 1):
                # A retrain in the same local AWS: the approved model of the run before is
                # the champion this run's evaluate-model scores against.
                print(f"\nretraining (run {number} of {runs}): the group's approved model is the")
                print("champion evaluate-model scores this run's model against")
                extra["tracking_uri"] = result.tracking_uri
                result = run_locked(
                    definition,
                    outputs,
                    aws,
                    workdir / f"run-{number}",
                    on_approved=on_approved,
                    execution_id=f"local-execution-{number}",
                    **extra,
                )
                print_summary(result)
            if on_approved is not None:
                print_lineage(aws, plan.outputs, workdir, result)
            rejected = rejection(result)
            if rejected:
                print(rejected, file=sys.stderr)
                return EXIT_REJECTED
            if verify:
                print("\nverifying the commit as the staging promotion job does (ml.verify):")
                record = verify_locally(stack, plan.outputs, result, aws, workdir)
                print(f"wrote {workdir / RECORD_FILE}")
                if not record.passed:
                    return 1
    except (Exception, KeyboardInterrupt) as error:
        print(describe(error, workdir), file=sys.stderr)
        return exit_status(error)
    return 0


def main(argv: list[str] | None = None, on_approved: ApprovalHook | None = None) -> int:
    """`python -m offline.pipeline.cli`; `on_approved` overrides the `--deploy` hook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--plan-dir", type=Path, default=Path("build/plan"))
    parser.add_argument("--workdir", type=Path, default=None, help="default build/local/<stack>")
    parser.add_argument("--dataset", type=Path, default=None, help="mtsamples-format CSV")
    parser.add_argument(
        "--deploy", action="store_true", help="hand an approval to the stack's deployer"
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="then run staging's checks (ml.verify) and write <workdir>/verification.json",
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path("build/local") / args.stack
    hook = on_approved
    if hook is None and args.deploy:
        try:
            hook = load_deployer(args.plan_dir, args.stack)
        except PlanError as error:
            print(describe(error, workdir), file=sys.stderr)
            return EXIT_USAGE
    return run(
        args.stack,
        args.plan_dir,
        workdir,
        args.dataset,
        hook,
        verify=args.verify,
        parameters=dict(args.parameter),
        runs=args.runs,
    )


if __name__ == "__main__":
    sys.exit(main())
