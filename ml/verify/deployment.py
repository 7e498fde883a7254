"""The checks against SageMaker: the pipeline's execution registers an approved package
(`run_pipeline`), the endpoint serves exactly that package (`wait_for_endpoint`), and the
package runs this commit's training image (`package_images`, `check_images`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ml.verify.inputs import Budget, CheckFailedError


def _wait(what: str, poll: Callable[[], str | None], seconds: float, every: float) -> str:
    """Call `poll` until it returns a result (not None) or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        result = poll()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise CheckFailedError(f"{what}: still not done after {seconds:.0f} s")
        time.sleep(every)


def run_pipeline(sm: Any, pipeline: str, commit: str, budget: Budget) -> tuple[str, str]:
    """Start the pipeline, wait for success; (execution ARN, approved model package ARN)."""
    started = sm.start_pipeline_execution(
        PipelineName=pipeline,
        PipelineExecutionDisplayName=f"verify-{commit[:12]}",
        PipelineExecutionDescription=f"staging verification of commit {commit}",
    )
    arn = str(started["PipelineExecutionArn"])

    def finished() -> str | None:
        status = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        state = str(status["PipelineExecutionStatus"])
        if state in ("Executing", "Stopping"):
            return None
        if state != "Succeeded":
            reason = status.get("FailureReason", "no reason given")
            raise CheckFailedError(f"pipeline execution {arn} ended {state}: {reason}")
        return state

    _wait(f"pipeline execution {arn}", finished, budget.pipeline_seconds, budget.poll_seconds)
    package = registered_package(sm, arn)
    described = sm.describe_model_package(ModelPackageName=package)
    status = described.get("ModelApprovalStatus")
    if status != "Approved":
        raise CheckFailedError(
            f"pipeline execution {arn} registered {package} but left it {status}: the model "
            "did not pass the pipeline's quality condition, so nothing new is served"
        )
    return arn, package


def registered_package(sm: Any, execution_arn: str) -> str:
    """The model package ARN the execution's register step created."""
    paginator = sm.get_paginator("list_pipeline_execution_steps")
    for page in paginator.paginate(PipelineExecutionArn=execution_arn):
        for step in page.get("PipelineExecutionSteps", []):
            arn = step.get("Metadata", {}).get("RegisterModel", {}).get("Arn")
            if arn:
                return str(arn)
    raise CheckFailedError(f"pipeline execution {execution_arn} registered no model package")


def served_package(sm: Any, endpoint: str) -> tuple[str, str | None]:
    """(endpoint status, model package its first variant serves)."""
    described = sm.describe_endpoint(EndpointName=endpoint)
    status = str(described["EndpointStatus"])
    config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    variants = config.get("ProductionVariants", [])
    if not variants:
        return status, None
    model = sm.describe_model(ModelName=variants[0]["ModelName"])
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return status, container.get("ModelPackageName")


def wait_for_endpoint(sm: Any, endpoint: str, package: str, budget: Budget) -> str:
    def serving() -> str | None:
        try:
            status, served = served_package(sm, endpoint)
        except sm.exceptions.ClientError as error:
            if "Could not find" in str(error):
                return None  # not created yet: the deployer is still working
            raise
        if status == "Failed":
            raise CheckFailedError(f"endpoint {endpoint} is Failed; see the deployer's log")
        return status if status == "InService" and served == package else None

    return _wait(
        f"endpoint {endpoint} serving {package}",
        serving,
        budget.endpoint_seconds,
        budget.poll_seconds,
    )


def package_images(sm: Any, package: str) -> list[str]:
    described = sm.describe_model_package(ModelPackageName=package)
    containers = described.get("InferenceSpecification", {}).get("Containers", [])
    return [str(c.get("Image")) for c in containers]


def check_images(images: Sequence[str], training_image: str) -> None:
    if not images or any(image != training_image for image in images):
        raise CheckFailedError(
            f"the package runs {list(images)}, not this commit's training image {training_image}"
        )
