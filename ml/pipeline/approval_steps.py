"""The builders of accuracy-check and approve-model: the gate a registered package passes.

accuracy-check compares the evaluation report with the approval parameters; only when all
of its conditions hold does approve-model (its true branch) approve the package. Import
only under `isolated_sdk` (the SDK); `ml.pipeline.steps` imports this module for its
`@_builds` registrations.
"""

from __future__ import annotations

from typing import Any

from sagemaker.core.workflow.conditions import (
    ConditionGreaterThanOrEqualTo,
    ConditionLessThanOrEqualTo,
)
from sagemaker.mlops.workflow import ConditionStep, ProcessingStep

from ml.pipeline.contract import (
    APPROVE_STEP,
    CHAMPION_SHORTFALL_JSON_PATH,
    CONDITION_STEP,
    REGISTER_STEP,
    baseline_margin_json_path,
    metric_json_path,
)
from ml.pipeline.wiring import Wiring, _builds


@_builds(CONDITION_STEP)
def _accuracy_check(w: Wiring) -> Any:
    """All hold: metric >= MetricThreshold, metric - majority baseline >= BaselineMargin,
    champion - metric <= ChampionTolerance (0 without a champion)."""
    metric = w.cfg.approval_metric
    report = w.report_value
    return ConditionStep(
        name=CONDITION_STEP,
        depends_on=[w.step(REGISTER_STEP)],
        # A ConditionStep's conditions must all hold.
        conditions=[
            ConditionGreaterThanOrEqualTo(left=report(metric_json_path(metric)), right=w.threshold),
            ConditionGreaterThanOrEqualTo(
                left=report(baseline_margin_json_path(metric)), right=w.baseline_margin
            ),
            ConditionLessThanOrEqualTo(
                left=report(CHAMPION_SHORTFALL_JSON_PATH), right=w.champion_tolerance
            ),
        ],
        if_steps=w.branch(CONDITION_STEP),
        else_steps=[],
    )


@_builds(APPROVE_STEP)
def _approve(w: Wiring) -> Any:
    """A processing job with the training image (boto3 inside) approves the package."""
    return ProcessingStep(
        name=APPROVE_STEP,
        step_args=w.processor("approve.py", env={"AWS_DEFAULT_REGION": w.cfg.region}).run(
            inputs=[w.code_input("approve.py")],
            arguments=[
                "--model-package-arn",
                w.step(REGISTER_STEP).properties.ModelPackageArn,
                "--evaluation-report",
                w.report_uri(),
            ],
        ),
    )
