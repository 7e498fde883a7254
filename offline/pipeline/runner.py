"""Run a generated pipeline definition locally, step by step, against local AWS.

The definition is interpreted, not re-implemented: steps run in its DAG order
(`graph`), arguments are resolved from its own expressions (`expressions`), the
condition decides which branch runs, and each job is played with SageMaker's
container contract (`jobs`, `container`). Register and approve act on moto's
model registry; an approval is handed to the hook as the EventBridge event
SageMaker would emit.

A code URI whose content hash differs from the local script means the
definition was generated from other code; the run refuses rather than report
results for code it did not run. One run at a time per work directory (a lock
in it); the run's record is written to `<workdir>/run.json`.

The train and evaluate jobs log to MLflow exactly as in AWS; only the tracking
URI differs (`tracking.LocalTracking`): `tracking_uri` if the caller passes one, else
the SQLite store `<workdir>/../mlflow/mlflow.db` with artifacts in
`<workdir>/../mlflow/artifacts` (build/local/mlflow for the default work
directory build/local/<stack>: what `python -m offline.mlflow_ui serve` opens).
It lives beside the work directory, not in it, because every run empties its
work directory and the runs of a stack accumulate in the store, as on the
tracking server. `tracking=False` runs the jobs untracked (to measure the cost).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml.data.synthetic import DEFAULT_CSV
from ml.pipeline.code import BUNDLES, CODE_PREFIX, bundle_prefix
from offline.aws import LocalAws
from offline.pipeline.container import local_images
from offline.pipeline.errors import LocalRunError
from offline.pipeline.expressions import ExpressionError, Scope, declared_parameters
from offline.pipeline.graph import all_steps, topological_order
from offline.pipeline.jobs import Jobs
from offline.pipeline.local_stack import Echo, StackOutputs, approval_event, provision
from offline.pipeline.processes import WorkdirBusyError, locked_workdir
from offline.pipeline.s3_sync import split_s3_uri
from offline.pipeline.tracking import LocalTracking

__all__ = [
    "ApprovalHook",
    "LocalRunError",
    "RunResult",
    "StackOutputs",
    "StepRun",
    "WorkdirBusyError",
    "approval_event",
    "local_tracking",
    "locked_workdir",
    "run_local",
    "run_locked",
]

EXECUTION_ID = "local-execution"
MLFLOW_DIR = "mlflow"
"""The local MLflow store's directory, beside the work directory."""

ApprovalHook = Callable[[dict[str, Any], LocalAws], None]
"""Called with the EventBridge event SageMaker would emit for the approval, while local AWS is up
(the deployer handler plugs in here)."""


@dataclass
class StepRun:
    name: str
    type: str
    status: str
    seconds: float = 0.0
    log_path: Path | None = None


@dataclass
class RunResult:
    steps: list[StepRun] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    """Model-quality statistics of the registered package (what its ModelMetrics point at)."""
    model_package_arn: str | None = None
    approval_status: str | None = None
    events: list[Path] = field(default_factory=list)
    """The approval events handed to the hook, as written under `<workdir>/events/`."""
    conditions: dict[str, list[str]] = field(default_factory=dict)
    """Condition step name -> what it compared, one line per condition (`... -> False`)."""
    rejected_by: str | None = None
    """The condition step that sent the run down its else branch (the model not approved)."""
    tracking_uri: str | None = None
    """The MLflow store the jobs logged to (None: the definition tracks nothing, or untracked)."""
    seconds: float = 0.0

    @property
    def accuracy(self) -> float | None:
        value = self.metrics.get("multiclass_classification_metrics", {}).get("accuracy", {})
        return float(value["value"]) if "value" in value else None


def run_local(
    definition: str | Mapping[str, Any],
    outputs: StackOutputs,
    aws: LocalAws,
    workdir: Path,
    **options: Any,
) -> RunResult:
    """Lock and empty `workdir`, then `run_locked` (the same keyword options).

    Raises WorkdirBusyError if another run holds `workdir`.
    """
    # Job processes run with their own working directory; every path handed to them is absolute.
    with locked_workdir(workdir.resolve()):
        return run_locked(definition, outputs, aws, workdir, **options)


def local_tracking(workdir: Path, tracking_uri: str | None = None) -> LocalTracking:
    """The store local jobs log to: `tracking_uri`, else SQLite beside `workdir` (see above)."""
    if tracking_uri is None:
        store = workdir.resolve().parent / MLFLOW_DIR
        return LocalTracking(f"sqlite:///{store / 'mlflow.db'}", store / "artifacts")
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        return LocalTracking(tracking_uri, database.parent / "artifacts")
    return LocalTracking(tracking_uri)


def run_locked(
    definition: str | Mapping[str, Any],
    outputs: StackOutputs,
    aws: LocalAws,
    workdir: Path,
    *,
    dataset_csv: Path = DEFAULT_CSV,
    parameters: Mapping[str, Any] | None = None,
    bundles: Mapping[str, Mapping[str, Path]] = BUNDLES,
    images: Mapping[str, Path] | None = None,
    on_approved: ApprovalHook | None = None,
    echo: Echo = print,
    tracking_uri: str | None = None,
    tracking: bool = True,
    execution_id: str = EXECUTION_ID,
) -> RunResult:
    """Provision local AWS for the stack, upload the dataset, run every step of `definition`.

    The caller holds `workdir`'s lock (`locked_workdir`). `images` maps image repository
    names to Dockerfiles (default: the images the ops stack builds). `tracking_uri`: the
    MLflow store that replaces the stack's tracking server (default: SQLite beside
    `workdir`, `local_tracking`); `tracking=False`: the jobs run untracked. `execution_id`:
    another one per run in the same local AWS (a retrain), so outputs never collide. Raises
    LocalRunError (with the failing step's log) if anything fails.
    """
    document = json.loads(definition) if isinstance(definition, str) else dict(definition)
    started = time.perf_counter()
    workdir = workdir.resolve()
    try:
        scope = Scope(
            declared_parameters(document, parameters or {}),
            {
                "PipelineExecutionId": execution_id,
                "PipelineName": "local",
                "PipelineExecutionArn": (
                    f"arn:aws:sagemaker:{outputs.region}:{outputs.account_id}:"
                    f"pipeline/local/execution/{execution_id}"
                ),
            },
        )
    except ExpressionError as error:
        raise LocalRunError(str(error), exit_code=2) from None
    provision(outputs, aws, dataset_csv, echo)
    execution = _Execution(
        definition=document,
        aws=aws,
        workdir=workdir,
        scope=scope,
        bundles=bundles,
        images=images,
        echo=echo,
        tracking=local_tracking(workdir, tracking_uri) if tracking else LocalTracking(None),
    )
    execution.upload_code()
    try:
        result = execution.run()
        if on_approved is not None and result.approval_status == "Approved":
            execution.deliver_approval(on_approved)
    finally:
        execution.result.seconds = time.perf_counter() - started
        with contextlib.suppress(OSError):  # never hide why the run stopped
            execution.write_record()
    return result


def _tracks(definition: Mapping[str, Any]) -> bool:
    """The definition names an MLflow resource (its jobs then get the tracking URI)."""
    return bool((definition.get("MlflowConfig") or {}).get("MlflowResourceArn"))


class _Execution:
    def __init__(
        self,
        *,
        definition: dict[str, Any],
        aws: LocalAws,
        workdir: Path,
        scope: Scope,
        bundles: Mapping[str, Mapping[str, Path]],
        images: Mapping[str, Path] | None,
        echo: Echo,
        tracking: LocalTracking,
    ) -> None:
        self.definition = definition
        self.aws = aws
        self.workdir = workdir
        self.bundles = bundles
        self.echo = echo
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")
        self.scope = scope
        self.jobs = Jobs(
            self.s3,
            self.sagemaker,
            scope,
            local_images() if images is None else images,
            aws.environment(),
            tracking,
        )
        self.steps = {step["Name"]: step for step in all_steps(definition)}
        self.result = RunResult()
        if tracking.uri is not None and _tracks(definition):
            self.result.tracking_uri = tracking.uri
            config = definition["MlflowConfig"]
            tracking.prepare_in_background(config.get("MlflowExperimentName") or "Default")

    def upload_code(self) -> None:
        """Put every code bundle the definition names at its content-addressed prefix."""
        known = {bundle_prefix(files): files for files in self.bundles.values()}
        for uri in sorted(self._literal_input_uris()):
            bucket, key = split_s3_uri(uri)
            if not key.startswith(f"{CODE_PREFIX}/"):
                continue  # data, not code
            files = known.get(key)
            if files is None:
                raise LocalRunError(
                    f"{uri} was generated from other step code than this checkout's ml/steps "
                    "(no bundle has that content hash); re-run the offline plan so the "
                    "definition matches this checkout",
                    exit_code=2,
                )
            for name, path in sorted(files.items()):
                self.s3.put_object(Bucket=bucket, Key=f"{key}{name}", Body=path.read_bytes())

    def _literal_input_uris(self) -> set[str]:
        uris: set[str] = set()
        for step in self.steps.values():
            arguments = step.get("Arguments", {})
            sources = [item.get("S3Input", {}) for item in arguments.get("ProcessingInputs", [])]
            sources += [
                channel.get("DataSource", {}).get("S3DataSource", {})
                for channel in arguments.get("InputDataConfig", [])
            ]
            uris |= {s["S3Uri"] for s in sources if isinstance(s.get("S3Uri"), str)}
        return uris

    def run(self) -> RunResult:
        try:
            order = topological_order(self.definition)
        except ValueError as error:
            raise LocalRunError(f"pipeline definition: {error}", exit_code=2) from None
        total = len(self.steps)
        position = 0
        for name in order:
            position += 1
            step = self.steps[name]
            self._run_step(step, position, total)
            if step["Type"] != "Condition":
                continue
            outcome = self.scope.properties[name]["Outcome"]
            arguments = step["Arguments"]
            chosen, skipped = arguments.get("IfSteps", []), arguments.get("ElseSteps", [])
            if not outcome:
                chosen, skipped = skipped, chosen
                self.result.rejected_by = self.result.rejected_by or name
            for child in skipped:
                position += 1
                self.echo(f"[{position}/{total}] {child['Name']:<16} skipped (condition false)")
                self.result.steps.append(StepRun(child["Name"], child["Type"], "Skipped"))
            for child in chosen:
                position += 1
                self._run_step(child, position, total)
        if self.result.model_package_arn:  # a job may have changed it (an approval step)
            package = self.sagemaker.describe_model_package(
                ModelPackageName=self.result.model_package_arn
            )
            self.result.approval_status = package["ModelApprovalStatus"]
        return self.result

    def _run_step(self, step: dict[str, Any], position: int, total: int) -> None:
        name, kind = step["Name"], step["Type"]
        self.echo(f"[{position}/{total}] {name:<16} {kind} ...")
        step_dir = self.workdir / "steps" / name
        step_dir.mkdir(parents=True, exist_ok=True)
        log_path = step_dir / "log.txt"
        started = time.perf_counter()
        run = StepRun(name, kind, "Failed", log_path=log_path)
        self.result.steps.append(run)
        try:
            summary = self._dispatch(step, step_dir, log_path)
        except LocalRunError as error:
            error.step = error.step or name
            raise
        except ExpressionError as error:
            raise LocalRunError(f"step {name!r}: {error}", name, exit_code=2) from None
        except Exception as error:
            log = log_path.read_text() if log_path.exists() else ""
            raise LocalRunError(f"step {name!r} failed: {error!r}", name, log) from error
        finally:
            run.seconds = time.perf_counter() - started
        run.status = "Succeeded"
        self.echo(f"      {'ok':<16} {run.seconds:6.2f}s  {summary}")

    def _dispatch(self, step: dict[str, Any], step_dir: Path, log_path: Path) -> str:
        kind = step["Type"]
        if kind == "Processing":
            return self.jobs.processing(step, step_dir, log_path)
        if kind == "Training":
            return self.jobs.training(step, step_dir, log_path)
        if kind == "RegisterModel":
            arn, metrics = self.jobs.register(step, log_path)
            self.result.model_package_arn, self.result.metrics = arn, metrics
            status = self.sagemaker.describe_model_package(ModelPackageName=arn)
            self.result.approval_status = status["ModelApprovalStatus"]
            return f"{arn} ({self.result.approval_status})"
        if kind == "Condition":
            lines, outcome = [], True
            for condition in step["Arguments"]["Conditions"]:
                holds, text = self.scope.evaluate(condition)
                lines.append(f"{text} -> {holds}")
                outcome = outcome and holds
            log_path.write_text("\n".join(lines) + "\n")
            self.scope.properties[step["Name"]] = {"Outcome": outcome}
            self.result.conditions[step["Name"]] = lines
            return f"{'; '.join(lines)} => {'if' if outcome else 'else'} branch"
        raise LocalRunError(f"step {step['Name']!r}: the local runner cannot run {kind} steps")

    def deliver_approval(self, hook: ApprovalHook) -> None:
        arn = str(self.result.model_package_arn)
        self.echo(f"approved: handing {arn} to the approval hook")
        event = approval_event(self.aws, arn)
        events = self.workdir / "events"
        events.mkdir(exist_ok=True)
        path = events / f"{len(self.result.events) + 1:03d}-approval.json"
        path.write_text(json.dumps(event, indent=2, sort_keys=True) + "\n")
        self.result.events.append(path)
        try:
            hook(event, self.aws)
        except Exception as error:
            raise LocalRunError(f"the approval hook failed: {error!r}", "on-approved") from error

    def write_record(self) -> None:
        """`<workdir>/run.json`: what ran, how long, what it produced (also after a failure)."""
        record = json.loads(json.dumps(asdict(self.result), default=str))
        record["property_files"] = {
            f"{step}.{name}": content for (step, name), content in self.scope.property_files.items()
        }
        (self.workdir / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
