"""Run a generated pipeline definition locally, step by step, against local AWS.

The definition is interpreted, not re-implemented: steps run in its DAG order,
arguments are resolved from its own expressions (`Get` of parameters, execution
variables and step properties, `Std:Join`, `Std:JsonGet` on property files),
and the condition decides which branch runs. Each job runs the *local* step
script the definition's code URI names, as a subprocess, with the SageMaker
container paths (`/opt/ml/...`) mapped into a work directory and S3 played by
moto. Register and approve act on moto's model registry.

A code URI whose content hash differs from the local script means the
definition was generated from other code; the run refuses rather than report
results for code it did not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.data.synthetic import DEFAULT_CSV
from ml.data.upload import upload_dataset
from ml.pipeline.code import STEP_SCRIPTS, content_hash
from ml.steps.preprocess import DataError
from offline.aws import LocalAws
from offline.pipeline.graph import topological_order

CONTAINER_ROOT = "/opt/ml"
EXECUTION_ID = "local-execution"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_-]+)|\['([^']*)'\]|\[(\d+)\]")

Echo = Callable[[str], None]
ApprovalHook = Callable[[dict[str, Any], LocalAws], None]
"""Called with the EventBridge event SageMaker would emit for the approval, while local AWS is up
(the deployer handler plugs in here)."""


class LocalRunError(RuntimeError):
    """The local run stopped; `step` and `log` say where and why."""

    def __init__(self, message: str, step: str | None = None, log: str = "") -> None:
        super().__init__(message)
        self.step = step
        self.log = log


@dataclass(frozen=True)
class StackOutputs:
    """What the local run needs from a stack (the offline plan's outputs)."""

    data_bucket: str
    artifacts_bucket: str
    role_arn: str
    model_package_group: str
    region: str

    @property
    def account_id(self) -> str:
        """The stack's account, read from the execution role ARN."""
        return self.role_arn.split(":")[4]


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
    model_package_arn: str | None = None
    approval_status: str | None = None
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
    *,
    dataset_csv: Path = DEFAULT_CSV,
    parameters: Mapping[str, Any] | None = None,
    scripts: Mapping[str, Path] = STEP_SCRIPTS,
    on_approved: ApprovalHook | None = None,
    echo: Echo = print,
) -> RunResult:
    """Provision local AWS for the stack, upload the dataset, run every step of `definition`.

    Raises LocalRunError (with the failing step's log) if anything fails.
    """
    document = json.loads(definition) if isinstance(definition, str) else dict(definition)
    started = time.perf_counter()
    # Job processes run with their own working directory; every path handed to them is absolute.
    workdir = workdir.resolve()
    _fresh_workdir(workdir)
    try:
        _provision(outputs, aws, dataset_csv, echo)
    except DataError as error:
        raise LocalRunError(f"dataset upload failed: {error}", "upload-dataset") from error
    execution = _Execution(
        definition=document,
        outputs=outputs,
        aws=aws,
        workdir=workdir,
        parameters=dict(parameters or {}),
        scripts=scripts,
        echo=echo,
    )
    execution.upload_code()
    result = execution.run()
    result.seconds = time.perf_counter() - started
    if on_approved is not None and result.approval_status == "Approved":
        arn = str(result.model_package_arn)
        echo(f"approved: handing {arn} to the approval hook")
        try:
            on_approved(approval_event(aws, arn), aws)
        except Exception as error:
            raise LocalRunError(f"the approval hook failed: {error!r}", "on-approved") from error
    return result


WORKDIR_MARKER = ".promote-local-run"


def pycache_dir() -> Path:
    """Where job interpreters keep bytecode (outside the source tree)."""
    return Path(tempfile.gettempdir()) / "promote-code-local-pycache"


def _fresh_workdir(workdir: Path) -> None:
    """Empty `workdir` (never mix a previous run's files into this one), but only our own."""
    if workdir.exists() and any(workdir.iterdir()):
        if not (workdir / WORKDIR_MARKER).is_file():
            raise LocalRunError(
                f"{workdir} is not empty and was not made by a local run; "
                "choose another --workdir or empty it yourself"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_MARKER).write_text("local pipeline run scratch; emptied by every run\n")


def _provision(outputs: StackOutputs, aws: LocalAws, dataset_csv: Path, echo: Echo) -> None:
    s3 = aws.client("s3")
    for bucket in (outputs.data_bucket, outputs.artifacts_bucket):
        location = {} if outputs.region == "us-east-1" else {"LocationConstraint": outputs.region}
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)
    registry = aws.client("sagemaker")
    groups = registry.list_model_package_groups(NameContains=outputs.model_package_group)
    if outputs.model_package_group not in {
        g["ModelPackageGroupName"] for g in groups["ModelPackageGroupSummaryList"]
    }:
        registry.create_model_package_group(ModelPackageGroupName=outputs.model_package_group)
    uris = upload_dataset(dataset_csv, outputs.data_bucket, s3)
    echo(f"local AWS at {aws.endpoint_url}: buckets, model package group, dataset ready")
    for split, uri in uris.items():
        echo(f"  {split:<10} {uri}")


def approval_event(aws: LocalAws, model_package_arn: str) -> dict[str, Any]:
    """The "SageMaker Model Package State Change" event EventBridge would deliver."""
    package = aws.client("sagemaker").describe_model_package(ModelPackageName=model_package_arn)
    detail = json.loads(json.dumps(package, default=str))
    detail.pop("ResponseMetadata", None)
    account = model_package_arn.split(":")[4]
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, model_package_arn)),
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": account,
        "time": detail.get("LastModifiedTime") or detail.get("CreationTime"),
        "region": aws.region,
        "resources": [model_package_arn],
        "detail": detail,
    }


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise LocalRunError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


class _Execution:
    def __init__(
        self,
        *,
        definition: dict[str, Any],
        outputs: StackOutputs,
        aws: LocalAws,
        workdir: Path,
        parameters: dict[str, Any],
        scripts: Mapping[str, Path],
        echo: Echo,
    ) -> None:
        self.definition = definition
        self.outputs = outputs
        self.aws = aws
        self.workdir = workdir
        self.scripts = scripts
        self.echo = echo
        self.s3 = aws.client("s3")
        self.sagemaker = aws.client("sagemaker")
        declared = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise LocalRunError(
                f"unknown pipeline parameter(s) {unknown}; known: {sorted(declared)}"
            )
        self.parameters = {**declared, **parameters}
        self.properties: dict[str, dict[str, Any]] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.steps = {step["Name"]: step for step in _walk(definition.get("Steps", []))}
        self.result = RunResult()

    # -- code -------------------------------------------------------------------------------
    def upload_code(self) -> None:
        """Put each local script at the code URI the definition names (checking its hash)."""
        for uri in sorted(self._code_uris()):
            name = uri.rsplit("/", 1)[-1]
            if name not in self.scripts:
                raise LocalRunError(f"definition runs {name!r}, which is not a known step script")
            path = self.scripts[name]
            digest = next((part for part in uri.split("/") if _SHA256.match(part)), None)
            if digest is not None and digest != content_hash(path):
                raise LocalRunError(
                    f"{uri} was generated from other code than {path} (content hash differs); "
                    "re-run the offline plan so the definition matches this checkout"
                )
            bucket, key = split_s3_uri(uri)
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())

    def _code_uris(self) -> set[str]:
        uris: set[str] = set()
        for step in self.steps.values():
            arguments = step.get("Arguments", {})
            for item in arguments.get("ProcessingInputs", []):
                if item.get("InputName") == "code":
                    uris.add(item["S3Input"]["S3Uri"])
            for channel in arguments.get("InputDataConfig", []):
                if channel.get("ChannelName") == "code":
                    uris.add(channel["DataSource"]["S3DataSource"]["S3Uri"])
        return uris

    # -- orchestration ----------------------------------------------------------------------
    def run(self) -> RunResult:
        order = topological_order(self.definition)
        total = len(self.steps)
        position = 0
        for name in order:
            position += 1
            step = self.steps[name]
            self._run_step(step, position, total)
            if step["Type"] == "Condition":
                chosen, skipped = self._branches(step)
                for child in skipped:
                    position += 1
                    self.echo(f"[{position}/{total}] {child['Name']:<16} skipped (condition false)")
                    self.result.steps.append(StepRun(child["Name"], child["Type"], "Skipped"))
                for child in chosen:
                    position += 1
                    self._run_step(child, position, total)
        return self.result

    def _run_step(self, step: dict[str, Any], position: int, total: int) -> None:
        name, kind = step["Name"], step["Type"]
        self.echo(f"[{position}/{total}] {name:<16} {kind} ...")
        step_dir = self.workdir / "steps" / name
        step_dir.mkdir(parents=True, exist_ok=True)
        log_path = step_dir / "log.txt"
        started = time.perf_counter()
        runners: dict[str, Callable[[dict[str, Any], Path, Path], str]] = {
            "Processing": self._processing,
            "Training": self._training,
            "RegisterModel": self._register,
            "Condition": self._condition,
        }
        if kind not in runners:
            raise LocalRunError(f"step {name!r}: the local runner cannot run {kind} steps", name)
        try:
            summary = runners[kind](step, step_dir, log_path)
        except LocalRunError as error:
            error.step = error.step or name
            raise
        except Exception as error:
            log = log_path.read_text() if log_path.exists() else ""
            raise LocalRunError(f"step {name!r} failed: {error!r}", name, log) from error
        seconds = time.perf_counter() - started
        self.result.steps.append(StepRun(name, kind, "Succeeded", seconds, log_path))
        self.echo(f"      {'ok':<16} {seconds:6.2f}s  {summary}")

    def _branches(self, step: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        outcome = self.properties[step["Name"]]["Outcome"]
        arguments = step["Arguments"]
        if_steps, else_steps = arguments.get("IfSteps", []), arguments.get("ElseSteps", [])
        return (if_steps, else_steps) if outcome else (else_steps, if_steps)

    # -- expressions ------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return str(join.get("On", "")).join(
                _to_text(self.resolve(item)) for item in join["Values"]
            )
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"])
        return {key: self.resolve(item) for key, item in value.items()}

    def _get(self, expression: str) -> Any:
        head, _, rest = expression.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise LocalRunError(f"unknown parameter in {expression!r}")
            return self.parameters[rest]
        if head == "Execution":
            variables = {"PipelineExecutionId": EXECUTION_ID, "PipelineName": "local"}
            if rest not in variables:
                raise LocalRunError(f"execution variable {rest!r} is not supported locally")
            return variables[rest]
        if head == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.properties:
                raise LocalRunError(f"{expression!r} reads step {step!r}, which has not run")
            return _walk_path(self.properties[step], path, expression)
        raise LocalRunError(f"cannot resolve {expression!r}")

    def _json_get(self, spec: dict[str, Any]) -> Any:
        reference = spec["PropertyFile"]["Get"]
        match = re.match(r"^Steps\.([A-Za-z0-9_-]+)\.PropertyFiles\.([A-Za-z0-9_-]+)$", reference)
        if not match:
            raise LocalRunError(f"unsupported property file reference {reference!r}")
        key = (match.group(1), match.group(2))
        if key not in self.property_files:
            raise LocalRunError(f"property file {reference!r} was not produced")
        return _walk_path(self.property_files[key], spec["Path"], f"JsonGet {spec['Path']}")

    # -- step types -------------------------------------------------------------------------
    def _processing(self, step: dict[str, Any], step_dir: Path, log_path: Path) -> str:
        arguments = self.resolve(step["Arguments"])
        root = step_dir / "container"
        mapping = _PathMap(root)
        for item in arguments.get("ProcessingInputs", []):
            source = item["S3Input"]
            self._download(source["S3Uri"], mapping.local(source["LocalPath"]))
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            mapping.local(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = arguments["AppSpecification"]
        command = [mapping.translate(part) for part in app.get("ContainerEntrypoint", [])]
        command += [mapping.translate(_to_text(part)) for part in app.get("ContainerArguments", [])]
        if not command:
            raise LocalRunError(f"step {step['Name']!r} has no ContainerEntrypoint to run")
        if command[0] in ("python", "python3"):
            command[0] = sys.executable
        limit = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        self._execute(step["Name"], command, arguments.get("Environment", {}), log_path, limit)
        properties: dict[str, Any] = {"ProcessingOutputConfig": {"Outputs": {}}}
        for item in outputs:
            target = item["S3Output"]["S3Uri"]
            self._upload_dir(mapping.local(item["S3Output"]["LocalPath"]), target)
            properties["ProcessingOutputConfig"]["Outputs"][item["OutputName"]] = {
                "OutputName": item["OutputName"],
                "S3Output": {"S3Uri": target},
            }
        self.properties[step["Name"]] = properties
        summary = self._read_property_files(step, outputs, mapping)
        return summary or _last_line(log_path)

    def _read_property_files(
        self, step: dict[str, Any], outputs: list[dict[str, Any]], mapping: _PathMap
    ) -> str:
        local_by_output = {
            o["OutputName"]: mapping.local(o["S3Output"]["LocalPath"]) for o in outputs
        }
        notes = []
        for spec in step.get("PropertyFiles", []):
            path = local_by_output[spec["OutputName"]] / spec["FilePath"]
            if not path.is_file():
                raise LocalRunError(
                    f"property file {spec['FilePath']} was not written", step["Name"]
                )
            content = json.loads(path.read_text())
            self.property_files[(step["Name"], spec["PropertyFileName"])] = content
            if spec["FilePath"] == "evaluation.json":
                self.result.metrics = content
            notes.append(f"{spec['PropertyFileName']} read")
        return ", ".join(notes)

    def _training(self, step: dict[str, Any], step_dir: Path, log_path: Path) -> str:
        arguments = self.resolve(step["Arguments"])
        root = step_dir / "container"
        ml = root / "opt" / "ml"
        env: dict[str, str] = {}
        for channel in arguments.get("InputDataConfig", []):
            name = channel["ChannelName"]
            target = ml / "input" / "data" / name
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            env[f"SM_CHANNEL_{name.upper()}"] = str(target)
        config_dir = ml / "input" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        hyperparameters = {k: _to_text(v) for k, v in arguments.get("HyperParameters", {}).items()}
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        model_dir, output_dir = ml / "model", ml / "output"
        model_dir.mkdir(parents=True)
        output_dir.mkdir(parents=True)
        env |= {
            "SM_MODEL_DIR": str(model_dir),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_OUTPUT_DIR": str(output_dir),
        }
        entry = ml / "input" / "data" / "code" / "train.py"
        if not entry.is_file():
            raise LocalRunError("training step has no code channel with train.py", step["Name"])
        limit = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        self._execute(step["Name"], [sys.executable, str(entry), "train"], env, log_path, limit)
        archive = step_dir / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(model_dir.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        job_name = f"{self.outputs.model_package_group}-{step['Name']}-{EXECUTION_ID}"
        base = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        model_uri = f"{base}/{job_name}/output/model.tar.gz"
        bucket, key = split_s3_uri(model_uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=archive.read_bytes())
        self.properties[step["Name"]] = {
            "TrainingJobName": job_name,
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": hyperparameters,
        }
        metadata = json.loads((model_dir / "model.json").read_text())
        throughput = metadata["metrics"].get("notes_per_second", 0.0)
        return f"{model_uri} ({throughput:,.0f} notes/s)"

    def _register(self, step: dict[str, Any], step_dir: Path, log_path: Path) -> str:
        del step_dir
        arguments = self.resolve(step["Arguments"])
        # The service defaults a versioned package to PendingManualApproval; moto does not.
        arguments.setdefault("ModelApprovalStatus", "PendingManualApproval")
        log_path.write_text(json.dumps(arguments, indent=2, sort_keys=True) + "\n")
        response = self.sagemaker.create_model_package(**arguments)
        arn: str = response["ModelPackageArn"]
        self.properties[step["Name"]] = {"ModelPackageArn": arn}
        self.result.model_package_arn = arn
        status = self._approval_status(arn)
        self.result.approval_status = status
        return f"{arn} ({status})"

    def _condition(self, step: dict[str, Any], step_dir: Path, log_path: Path) -> str:
        del step_dir
        lines, outcome = [], True
        for condition in step["Arguments"]["Conditions"]:
            holds, text = self._evaluate(condition)
            lines.append(f"{text} -> {holds}")
            outcome = outcome and holds
        log_path.write_text("\n".join(lines) + "\n")
        self.properties[step["Name"]] = {"Outcome": outcome}
        return f"{'; '.join(lines)} => {'if' if outcome else 'else'} branch"

    def _evaluate(self, condition: dict[str, Any]) -> tuple[bool, str]:
        kind = condition["Type"]
        if kind == "Not":
            holds, text = self._evaluate(condition["Condition"])
            return not holds, f"not ({text})"
        if kind == "Or":
            results = [self._evaluate(item) for item in condition["Conditions"]]
            return any(h for h, _ in results), " or ".join(t for _, t in results)
        left, right = self.resolve(condition["LeftValue"]), self.resolve(condition["RightValue"])
        if kind == "In":
            values = [self.resolve(v) for v in condition["RightValue"]]
            return left in values, f"{left!r} in {values!r}"
        operators: dict[str, Callable[[Any, Any], bool]] = {
            "Equals": lambda a, b: bool(a == b),
            "NotEquals": lambda a, b: bool(a != b),
            "GreaterThan": lambda a, b: bool(a > b),
            "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
            "LessThan": lambda a, b: bool(a < b),
            "LessThanOrEqualTo": lambda a, b: bool(a <= b),
        }
        if kind not in operators:
            raise LocalRunError(f"condition type {kind!r} is not supported locally")
        return operators[kind](left, right), f"{left!r} {kind} {right!r}"

    def _approval_status(self, arn: str) -> str:
        status: str = self.sagemaker.describe_model_package(ModelPackageName=arn)[
            "ModelApprovalStatus"
        ]
        return status

    # -- processes and S3 -------------------------------------------------------------------
    def _execute(
        self,
        name: str,
        command: list[str],
        env: Mapping[str, Any],
        log_path: Path,
        limit: int | None,
    ) -> None:
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        # Jobs start a fresh interpreter each; a bytecode cache outside the source tree
        # saves compiling pandas/scikit-learn every time (seconds per step).
        environment.setdefault("PYTHONPYCACHEPREFIX", str(pycache_dir()))
        environment |= {str(k): _to_text(v) for k, v in env.items()}
        environment |= self.aws.environment()
        environment["PYTHONUNBUFFERED"] = "1"
        with log_path.open("w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            try:
                completed = subprocess.run(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    cwd=log_path.parent,
                    timeout=limit,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise LocalRunError(
                    f"step {name!r} exceeded MaxRuntimeInSeconds={limit}",
                    name,
                    log_path.read_text(),
                ) from None
        if completed.returncode != 0:
            raise LocalRunError(
                f"step {name!r} exited with status {completed.returncode}",
                name,
                log_path.read_text(),
            )
        if self.result.model_package_arn:
            self.result.approval_status = self._approval_status(self.result.model_package_arn)

    def _download(self, uri: str, target: Path) -> None:
        bucket, prefix = split_s3_uri(uri)
        target.mkdir(parents=True, exist_ok=True)
        keys = list(self._keys(bucket, prefix))
        if not keys:
            raise LocalRunError(f"nothing in local S3 under {uri}")
        for key in keys:
            relative = key.rsplit("/", 1)[-1] if key == prefix else key[len(prefix) :].lstrip("/")
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def _keys(self, bucket: str, prefix: str) -> Iterator[str]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def _upload_dir(self, directory: Path, uri: str) -> None:
        bucket, prefix = split_s3_uri(uri)
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(directory).as_posix()}"
            self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())


class _PathMap:
    """Container paths under /opt/ml -> the step's directory in the work dir."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def local(self, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise LocalRunError(f"container path outside {CONTAINER_ROOT}: {container_path!r}")
        return self.root / container_path.lstrip("/")

    def translate(self, value: str) -> str:
        return str(self.local(value)) if value.startswith(f"{CONTAINER_ROOT}/") else value


def _walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from _walk(step["Arguments"].get("IfSteps", []))
            yield from _walk(step["Arguments"].get("ElseSteps", []))


def _walk_path(document: Any, path: str, expression: str) -> Any:
    current = document
    for match in _PATH_TOKEN.finditer(path):
        key: str | int = match.group(1) or match.group(2) or int(match.group(3))
        if match.group(3) is not None:
            key = int(match.group(3))
        try:
            current = current[key]
        except (KeyError, IndexError, TypeError):
            raise LocalRunError(f"{expression!r}: no {key!r} in {_preview(current)}") from None
    return current


def _preview(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) < 200 else text[:200] + "..."


def _last_line(log_path: Path) -> str:
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
