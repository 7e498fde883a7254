"""The pipeline's steps, built with the sagemaker SDK (v3). Import only under `isolated_sdk`.

One builder per step of `ml.pipeline.contract.STEPS`, registered under the
step's name with `@_builds` (`ml.pipeline.wiring`, which also holds what the
builders share): the processing jobs in `ml.pipeline.processing_steps`, training
and registration in `ml.pipeline.model_steps`, the accuracy condition and the
approval it gates in `ml.pipeline.approval_steps`. `build` calls them in the
contract's order, so a step declared there without a builder (or the reverse)
fails every build.

The SDK has import-time side effects (see `ml.pipeline.sdk_isolation`), so this
module is imported by `ml.pipeline.definition` inside that context, never at
the top of another module.
"""

from __future__ import annotations

import boto3
from sagemaker.core.shapes.shapes import MlflowConfig
from sagemaker.mlops.workflow import Pipeline

from ml.pipeline import approval_steps, model_steps, processing_steps
from ml.pipeline.contract import STEP_NAMES, STEPS, PipelineConfig
from ml.pipeline.wiring import _BUILDERS, Wiring

BUILDER_MODULES = (processing_steps, model_steps, approval_steps)
"""The modules whose `@_builds` functions register the builders (imported for that)."""


def build(cfg: PipelineConfig, boto_session: boto3.Session) -> Pipeline:
    """The pipeline for `cfg` on an isolated boto session (see `definition.build_pipeline`)."""
    if set(_BUILDERS) != set(STEP_NAMES):
        raise RuntimeError(
            f"ml/pipeline/contract.py declares the steps {sorted(STEP_NAMES)} but "
            f"{', '.join(module.__name__ for module in BUILDER_MODULES)} build "
            f"{sorted(_BUILDERS)}: add or remove a @_builds function"
        )
    wiring = Wiring(cfg, boto_session, _BUILDERS)
    for step in STEPS:
        wiring.step(step.name)
    tracking = None
    if cfg.mlflow_tracking_arn is not None:
        tracking = MlflowConfig(
            mlflow_resource_arn=cfg.mlflow_tracking_arn,
            mlflow_experiment_name=cfg.mlflow_experiment,
        )
    return Pipeline(
        name=cfg.name,
        parameters=wiring.parameters,
        steps=[wiring.step(step.name) for step in STEPS if step.runs_if is None],
        sagemaker_session=wiring.session,
        pipeline_experiment_config=None,
        mlflow_config=tracking,
    )
