"""SageMaker jobs played locally: processing, training and model registration.

Each job runs as SageMaker would start it (`docker run <image> ...`), with the
container paths (`/opt/ml/...`) mapped under the step's directory: inputs
synced from (local) S3 into the mounted directories, the command the
definition or the image's ENTRYPOINT names, outputs synced back to S3 at the
end of the job (`s3_sync`). The job's user is the image's USER and the mounted
directories are created as SageMaker creates them (see `container`); a user that
could not write them on SageMaker fails here too, before the job starts.

Experiment tracking: a job whose environment names the stack's SageMaker MLflow
tracking server gets the local store instead (`tracking.LocalTracking`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.pipeline.container import (
    CONTRACT_DOC,
    MOUNT_MODE,
    ImageError,
    ImageSpec,
    image_for,
)
from offline.pipeline.errors import LocalRunError
from offline.pipeline.expressions import Scope, to_text
from offline.pipeline.processes import JobTimeoutError, run_job
from offline.pipeline.s3_sync import download, split_s3_uri, upload_dir
from offline.pipeline.tracking import LocalTracking

CONTAINER_ROOT = "/opt/ml"
_PYTHONS = ("python", "python3")


class PathMap:
    """Container paths under /opt/ml -> the step's directory in the work dir."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def local(self, container_path: str) -> Path:
        if not container_path.startswith(CONTAINER_ROOT):
            raise LocalRunError(f"container path outside {CONTAINER_ROOT}: {container_path!r}")
        return self.root / container_path.lstrip("/")

    def translate(self, value: str) -> str:
        return str(self.local(value)) if value.startswith(f"{CONTAINER_ROOT}/") else value

    def mount(self, container_path: str) -> Path:
        """Create a directory SageMaker would mount, with its owner's mode."""
        path = self.local(container_path)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(MOUNT_MODE)
        return path


@dataclass
class Jobs:
    """Runs the jobs of one execution against local AWS."""

    s3: Any
    sagemaker: Any
    scope: Scope
    images: Mapping[str, Path]
    aws_environment: Mapping[str, str]
    tracking: LocalTracking = field(default_factory=lambda: LocalTracking(None))

    # -- processing -------------------------------------------------------------------------
    def processing(self, step: Mapping[str, Any], step_dir: Path, log_path: Path) -> str:
        name = step["Name"]
        arguments = self.scope.resolve(step["Arguments"])
        app = arguments["AppSpecification"]
        image = self._image(app["ImageUri"], name)
        mapping = PathMap(step_dir / "container")
        for item in arguments.get("ProcessingInputs", []):
            source = item["S3Input"]
            download(self.s3, source["S3Uri"], mapping.mount(source["LocalPath"]))
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        writable = [item["S3Output"]["LocalPath"] for item in outputs]
        self._check_user(image, name, writable)
        for path in writable:
            mapping.mount(path)
        entrypoint = app.get("ContainerEntrypoint") or list(image.entrypoint)
        command = [*entrypoint, *(to_text(part) for part in app.get("ContainerArguments", []))]
        if not command:
            raise LocalRunError(f"step {name!r}: no ContainerEntrypoint and no image ENTRYPOINT")
        self._execute(name, self._local_command(command, mapping, image), arguments, log_path)
        properties: dict[str, Any] = {"ProcessingOutputConfig": {"Outputs": {}}}
        local_by_output = {}
        for item in outputs:
            target = item["S3Output"]["S3Uri"]
            local = mapping.local(item["S3Output"]["LocalPath"])
            upload_dir(self.s3, local, target)
            local_by_output[item["OutputName"]] = local
            properties["ProcessingOutputConfig"]["Outputs"][item["OutputName"]] = {
                "OutputName": item["OutputName"],
                "S3Output": {"S3Uri": target},
            }
        self.scope.properties[name] = properties
        notes = []
        for spec in step.get("PropertyFiles", []):
            path = local_by_output[spec["OutputName"]] / spec["FilePath"]
            if not path.is_file():
                raise LocalRunError(f"property file {spec['FilePath']} was not written", name)
            self.scope.property_files[(name, spec["PropertyFileName"])] = json.loads(
                path.read_text()
            )
            notes.append(f"{spec['PropertyFileName']} read")
        return ", ".join(notes) or _last_line(log_path)

    # -- training ---------------------------------------------------------------------------
    def training(self, step: Mapping[str, Any], step_dir: Path, log_path: Path) -> str:
        name = step["Name"]
        arguments = self.scope.resolve(step["Arguments"])
        algorithm = arguments["AlgorithmSpecification"]
        image = self._image(algorithm["TrainingImage"], name)
        mapping = PathMap(step_dir / "container")
        env: dict[str, str] = {}
        channels = {}
        for channel in arguments.get("InputDataConfig", []):
            channel_name = channel["ChannelName"]
            target = mapping.mount(f"{CONTAINER_ROOT}/input/data/{channel_name}")
            download(self.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            env[f"SM_CHANNEL_{channel_name.upper()}"] = str(target)
            channels[channel_name] = {"TrainingInputMode": channel.get("InputMode", "File")}
        config_dir = mapping.mount(f"{CONTAINER_ROOT}/input/config")
        hyperparameters = {k: to_text(v) for k, v in arguments.get("HyperParameters", {}).items()}
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters, indent=2))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels, indent=2))
        self._check_user(image, name, [f"{CONTAINER_ROOT}/model", f"{CONTAINER_ROOT}/output"])
        model_dir = mapping.mount(f"{CONTAINER_ROOT}/model")
        output_dir = mapping.mount(f"{CONTAINER_ROOT}/output")
        env |= {
            "SM_MODEL_DIR": str(model_dir),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_OUTPUT_DIR": str(output_dir),
        }
        if "ContainerEntrypoint" in algorithm:
            command = [*algorithm["ContainerEntrypoint"], *algorithm.get("ContainerArguments", [])]
        else:
            command = self._image_command(image, "train", name)  # docker run <image> train
        try:
            local = self._local_command(command, mapping, image)
            self._execute(name, local, arguments, log_path, env)
        except LocalRunError as error:
            failure = output_dir / "failure"  # SageMaker's FailureReason
            if failure.is_file():
                error.args = (f"{error.args[0]}: {failure.read_text().strip()[:300]}",)
            raise
        archive = step_dir / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(model_dir.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        job_name = f"pipelines-{self.scope.execution['PipelineExecutionId']}-{name}"
        base = arguments["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        model_uri = f"{base}/{job_name}/output/model.tar.gz"
        bucket, key = split_s3_uri(model_uri)
        self.s3.put_object(Bucket=bucket, Key=key, Body=archive.read_bytes())
        metrics = final_metrics(algorithm.get("MetricDefinitions", []), log_path.read_text())
        self.scope.properties[name] = {
            "TrainingJobName": job_name,
            "ModelArtifacts": {"S3ModelArtifacts": model_uri},
            "HyperParameters": hyperparameters,
            "FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()],
        }
        shown = ", ".join(f"{k}={v:g}" for k, v in metrics.items())
        return f"{model_uri}" + (f" ({shown})" if shown else "")

    # -- model registry ---------------------------------------------------------------------
    def register(self, step: Mapping[str, Any], log_path: Path) -> tuple[str, dict[str, Any]]:
        """Create the model package; return its ARN and its model-quality statistics."""
        arguments = self.scope.resolve(step["Arguments"])
        # The service defaults a versioned package to PendingManualApproval; moto does not.
        arguments.setdefault("ModelApprovalStatus", "PendingManualApproval")
        log_path.write_text(json.dumps(arguments, indent=2, sort_keys=True) + "\n")
        arn: str = self.sagemaker.create_model_package(**arguments)["ModelPackageArn"]
        self.scope.properties[step["Name"]] = {"ModelPackageArn": arn}
        statistics = arguments.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics")
        metrics: dict[str, Any] = {}
        if statistics:
            bucket, key = split_s3_uri(statistics["S3Uri"])
            metrics = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return arn, metrics

    # -- the container contract -------------------------------------------------------------
    def _image(self, uri: str, step: str) -> ImageSpec:
        try:
            return image_for(uri, self.images)
        except ImageError as error:
            raise LocalRunError(str(error), step, exit_code=2) from None

    def _image_command(self, image: ImageSpec, argument: str, step: str) -> list[str]:
        try:
            return image.command(argument)
        except ImageError as error:
            raise LocalRunError(str(error), step, exit_code=2) from None

    @staticmethod
    def _check_user(image: ImageSpec, step: str, writable: list[str]) -> None:
        if writable and not image.user.can_write_mounts():
            raise LocalRunError(
                f"the image runs as USER {image.user.spec} ({image.user.where}), but SageMaker "
                f"mounts {writable[0]} owned by root (mode {MOUNT_MODE:o}), so the job could not "
                f"write its outputs; SageMaker expects containers to run as root ({CONTRACT_DOC}): "
                "remove the USER line or make it `USER 0:0` (root)",
                step,
                exit_code=2,
            )

    @staticmethod
    def _local_command(command: list[str], mapping: PathMap, image: ImageSpec) -> list[str]:
        local = [mapping.translate(to_text(part)) for part in command]
        if local[0] in _PYTHONS:
            local[0] = sys.executable  # the local interpreter stands in for the image's
        elif local[0] in image.files:
            local[0] = str(image.files[local[0]])
        return local

    def _execute(
        self,
        name: str,
        command: list[str],
        arguments: Mapping[str, Any],
        log_path: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        # Each job is a fresh interpreter: it shares the bytecode cache of the caller's own
        # imports (beside the sources, or the caller's PYTHONPYCACHEPREFIX) and writes to it,
        # instead of compiling pandas/scikit-learn/mlflow again (a cold cache doubled
        # train-model's time).
        environment = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        environment |= {str(k): to_text(v) for k, v in arguments.get("Environment", {}).items()}
        self.tracking.apply(environment)
        environment |= dict(extra_env or {})
        environment |= dict(self.aws_environment)
        environment["PYTHONUNBUFFERED"] = "1"
        limit = arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        with log_path.open("w") as log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
            try:
                status = run_job(
                    command, env=environment, cwd=log_path.parent, log=log, timeout=limit
                )
            except JobTimeoutError:
                message = f"step {name!r} exceeded MaxRuntimeInSeconds={limit}"
                raise LocalRunError(message, name, log_path.read_text()) from None
        if status != 0:
            raise LocalRunError(
                f"step {name!r} exited with status {status}", name, log_path.read_text()
            )


def final_metrics(definitions: list[Mapping[str, Any]], log: str) -> dict[str, float]:
    """The training job's final metrics: each definition's regex, last match in the log."""
    found: dict[str, float] = {}
    for definition in definitions:
        matches = re.findall(definition["Regex"], log)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return found


def _last_line(log_path: Path) -> str:
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    return lines[-1][:160] if lines else ""
