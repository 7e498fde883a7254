"""Prove a promoted commit in staging: it trains, it is served, and it answers.

    pulumi stack output --json --stack staging > staging-outputs.json
    python -m ml.verify --outputs staging-outputs.json --commit <sha> --out verification.json
    PROMOTE_VERIFICATION=verification.json pulumi up --stack staging   # the attestation

The staging promotion job runs this after `pulumi up --stack staging` and the data
upload. In order, each check must pass before the next runs:

1. `pipeline_succeeded`: start staging's training pipeline and wait for it to succeed
   with its model registered and approved (the accuracy condition passed);
2. `endpoint_serves_package`: wait until staging's endpoint is InService serving exactly
   the package that execution registered (the auto-deployer picked it up);
3. `package_uses_commit_image`: that package's containers run this commit's training
   image, the digest staging exports (`images.training`);
4. `smoke_test_passed`: a few notes from the shipped sample data answer with status 200,
   one well-formed prediction per note, within the latency budget.

The record (`--out`) names every check with its evidence; the attesting `pulumi up`
exports it as staging's `verification` output, which prod's promotion gate requires.
Exit codes: 0 verified, 1 a check failed, 2 bad usage or inputs, 75 AWS unreachable or
throttled (retry later).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKS: tuple[str, ...] = (
    "pipeline_succeeded",
    "endpoint_serves_package",
    "package_uses_commit_image",
    "smoke_test_passed",
)
EXIT_FAILED, EXIT_USAGE, EXIT_RETRY = 1, 2, 75
SAMPLE_CSV = Path(__file__).resolve().parent / "data" / "mtsamples_synthetic.csv"

Invoke = Callable[[bytes, str], tuple[int, bytes]]
"""Send one request body with a content type; return (HTTP status, response body)."""


class CheckFailedError(Exception):
    """A check did not pass; the message is its evidence."""


@dataclass(frozen=True)
class Budget:
    pipeline_seconds: float = 3 * 3600
    endpoint_seconds: float = 3600
    poll_seconds: float = 30
    smoke_requests: int = 5
    smoke_p95_ms: float = 2000.0


@dataclass
class Record:
    commit: str
    stack: str
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "stack": self.stack,
            "checks": self.checks,
            **self.evidence,
        }

    @property
    def passed(self) -> bool:
        return all(self.checks.get(c, {}).get("passed") is True for c in CHECKS)


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


def sample_notes(path: Path, count: int) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        notes = [row["transcription"] for row in csv.DictReader(handle) if row.get("transcription")]
    if len(notes) < count:
        raise CheckFailedError(
            f"{path}: needs {count} notes with a transcription, has {len(notes)}"
        )
    step = len(notes) // count
    return [notes[i * step] for i in range(count)]


def _well_formed(prediction: object) -> bool:
    """A label, and a probability in [0, 1] or (for margin classifiers) a numeric score."""
    if not isinstance(prediction, dict):
        return False
    label, probability, score = (prediction.get(k) for k in ("label", "probability", "score"))
    if not isinstance(label, str) or not label:
        return False
    if isinstance(probability, int | float) and not isinstance(probability, bool):
        return 0.0 <= probability <= 1.0
    return probability is None and isinstance(score, int | float) and not isinstance(score, bool)


def smoke_test(invoke: Invoke, notes: Sequence[str], budget: Budget) -> dict[str, Any]:
    """One note per request; every answer 200, one prediction per note, p95 within budget."""
    latencies: list[float] = []
    for note in notes:
        body = json.dumps({"instances": [note]}).encode()
        started = time.perf_counter()
        status, answer = invoke(body, "application/json")
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise CheckFailedError(f"a smoke request answered {status}: {answer[:200]!r}")
        try:
            (prediction,) = json.loads(answer)["predictions"]
        except (ValueError, KeyError, TypeError) as error:
            raise CheckFailedError(
                f"a smoke answer is not one prediction: {answer[:200]!r} ({error})"
            ) from None
        if not _well_formed(prediction):
            raise CheckFailedError(f"a smoke answer is malformed: {str(prediction)[:200]}")
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    if p95 > budget.smoke_p95_ms:
        raise CheckFailedError(
            f"smoke p95 latency {p95:.0f} ms is over {budget.smoke_p95_ms:.0f} ms"
        )
    return {"requests": len(notes), "p95_ms": round(p95, 1)}


@dataclass(frozen=True)
class Target:
    """What is verified: names and images from the stack's outputs."""

    stack: str
    commit: str
    pipeline: str
    endpoint: str
    training_image: str

    @classmethod
    def from_outputs(cls, stack: str, commit: str, outputs: Mapping[str, Any]) -> Target:
        missing = [k for k in ("pipeline_name", "endpoint_name", "images") if k not in outputs]
        if missing:
            raise ValueError(
                f"stack {stack} has no output {', '.join(missing)}: deploy this template "
                f"first (pulumi up --stack {stack})"
            )
        if outputs.get("deployed_commit") != commit:
            raise ValueError(
                f"stack {stack} runs {outputs.get('deployed_commit')!r}, not {commit}: "
                f"run `pulumi up --stack {stack}` with PROMOTE_IMAGE_TAG={commit} first"
            )
        return cls(
            stack=stack,
            commit=commit,
            pipeline=str(outputs["pipeline_name"]),
            endpoint=str(outputs["endpoint_name"]),
            training_image=str(outputs["images"]["training"]),
        )


def verify(
    target: Target,
    *,
    sm: Any,
    invoke: Invoke,
    budget: Budget,
    notes: Sequence[str],
    pipeline: Callable[[], tuple[str, str]] | None = None,
    echo: Callable[[str], None] = print,
) -> Record:
    """Run the checks in order; the record says which passed and why the first failure did not.

    `pipeline` replaces step 1's execution (the local demo runs the pipeline itself).
    """
    record = Record(commit=target.commit, stack=target.stack)
    state: dict[str, str] = {}

    def step_pipeline() -> str:
        execution, package = (
            pipeline() if pipeline else run_pipeline(sm, target.pipeline, target.commit, budget)
        )
        state["package"] = package
        record.evidence |= {"pipeline_execution_arn": execution, "model_package_arn": package}
        return f"{execution} registered and approved {package}"

    def step_endpoint() -> str:
        wait_for_endpoint(sm, target.endpoint, state["package"], budget)
        record.evidence["endpoint_name"] = target.endpoint
        return f"{target.endpoint} is InService with {state['package']}"

    def step_image() -> str:
        check_images(package_images(sm, state["package"]), target.training_image)
        return f"containers run {target.training_image}"

    def step_smoke() -> str:
        result = smoke_test(invoke, notes, budget)
        return f"{result['requests']} requests answered, p95 {result['p95_ms']} ms"

    steps = dict(zip(CHECKS, (step_pipeline, step_endpoint, step_image, step_smoke), strict=True))
    failed: str | None = None
    for name, run in steps.items():
        if failed is not None:
            record.checks[name] = {"passed": False, "detail": f"not run: {failed} failed"}
            continue
        try:
            detail = run()
        except CheckFailedError as error:
            failed = name
            record.checks[name] = {"passed": False, "detail": str(error)}
            echo(f"verify: {name}: FAILED: {error}")
            continue
        record.checks[name] = {"passed": True, "detail": detail}
        echo(f"verify: {name}: ok ({detail})")
    return record


def endpoint_invoker(runtime: Any, endpoint: str) -> Invoke:
    def invoke(body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )
        except runtime.exceptions.ModelError as error:
            return int(error.response.get("OriginalStatusCode", 500)), str(error).encode()
        status = int(answer["ResponseMetadata"]["HTTPStatusCode"])
        return status, bytes(answer["Body"].read())

    return invoke


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ml.verify", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--outputs", type=Path, required=True, help="pulumi stack output --json")
    parser.add_argument("--commit", required=True, help="the promoted commit (40 hex)")
    parser.add_argument("--stack", default="staging")
    parser.add_argument("--out", type=Path, required=True, help="where the record is written")
    parser.add_argument("--sample", type=Path, default=SAMPLE_CSV, help="mtsamples-format CSV")
    args = parser.parse_args(argv)
    try:
        outputs = json.loads(args.outputs.read_text())
        target = Target.from_outputs(args.stack, args.commit, outputs)
        notes = sample_notes(args.sample, Budget().smoke_requests)
    except (OSError, ValueError, CheckFailedError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

    import boto3  # noqa: PLC0415 - only when talking to AWS
    import botocore.exceptions  # noqa: PLC0415

    sm = boto3.client("sagemaker")
    invoke = endpoint_invoker(boto3.client("sagemaker-runtime"), target.endpoint)
    try:
        record = verify(target, sm=sm, invoke=invoke, budget=Budget(), notes=notes)
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ClientError) as error:
        print(f"error: AWS did not answer ({error}); retry later", file=sys.stderr)
        return EXIT_RETRY
    args.out.write_text(json.dumps(record.document(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.out}")
    return 0 if record.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
