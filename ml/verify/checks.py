"""The staging checks in order, and their record.

In order, each check must pass before the next runs:

1. `pipeline_succeeded`: start staging's training pipeline and wait for it to succeed
   with its model registered and approved (the accuracy condition passed);
2. `endpoint_serves_package`: wait until staging's endpoint is InService serving exactly
   the package that execution registered (the auto-deployer picked it up);
3. `package_uses_commit_image`: that package's containers run this commit's training
   image, the digest staging exports (`images.training`);
4. `smoke_test_passed`: a few notes from the shipped sample data answer with status 200,
   one well-formed prediction per note, within the latency budget.

The record names every check with its evidence (`Record.document`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.verify.deployment import check_images, package_images, run_pipeline, wait_for_endpoint
from ml.verify.inputs import Budget, CheckFailedError, Target
from ml.verify.smoke import Invoke, smoke_test

CHECKS: tuple[str, ...] = (
    "pipeline_succeeded",
    "endpoint_serves_package",
    "package_uses_commit_image",
    "smoke_test_passed",
)


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
