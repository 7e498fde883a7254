"""The builders of preprocess-data and evaluate-model: the processing jobs before approval.

preprocess-data cleans and splits the dataset; evaluate-model scores the trained model on
the held-out split and writes evaluation.json, the report every later step reads. Import
only under `isolated_sdk` (the SDK); `ml.pipeline.steps` imports this module for its
`@_builds` registrations.
"""

from __future__ import annotations

from typing import Any

from sagemaker.mlops.workflow import ProcessingStep

from ml.pipeline.contract import EVALUATE_STEP, PREPROCESS_STEP, PROCESSING_ROOT
from ml.pipeline.wiring import Wiring, _builds


@_builds(PREPROCESS_STEP)
def _preprocess(w: Wiring) -> Any:
    """Clean, encode labels, split (keeps an upload's split).

    Never cached: its dataset input is a fixed prefix (InputDataUri), so a cache
    hit would reuse last run's split after the data under it changed. Its
    outputs are per execution, so the cached steps downstream then miss too.
    """
    return ProcessingStep(
        name=PREPROCESS_STEP,
        step_args=w.processor("preprocess.py").run(
            inputs=[
                w.code_input("preprocess.py"),
                w.s3_input("dataset", w.input_data, f"{PROCESSING_ROOT}/input/data"),
            ],
            outputs=[
                w.s3_output(PREPROCESS_STEP, split) for split in ("train", "validation", "test")
            ],
            arguments=[
                "--input-dir",
                f"{PROCESSING_ROOT}/input/data",
                "--output-dir",
                f"{PROCESSING_ROOT}/output",
                "--conflicts",
                w.conflicts,
                "--encoding",
                w.encoding,
                "--delimiter",
                w.delimiter,
            ],
        ),
    )


@_builds(EVALUATE_STEP)
def _evaluate(w: Wiring) -> Any:
    """Held-out test split -> evaluation.json (the `EvaluationReport` property file).

    The train split is an input for the drift baseline's vocabulary and the dataset
    hash; the group's approved champion is scored on the same test split.
    """
    return ProcessingStep(
        name=EVALUATE_STEP,
        step_args=w.processor("evaluate.py", env=w.run_environment()).run(
            inputs=[
                w.code_input("evaluate.py"),
                w.s3_input("model", w.model_data(), f"{PROCESSING_ROOT}/input/model"),
                w.s3_input("test", w.preprocessed("test"), f"{PROCESSING_ROOT}/input/test"),
                w.s3_input("train", w.preprocessed("train"), f"{PROCESSING_ROOT}/input/train"),
            ],
            outputs=[w.s3_output(EVALUATE_STEP, "evaluation")],
            arguments=[
                "--model-dir",
                f"{PROCESSING_ROOT}/input/model",
                "--test-dir",
                f"{PROCESSING_ROOT}/input/test",
                "--train-dir",
                f"{PROCESSING_ROOT}/input/train",
                "--output-dir",
                f"{PROCESSING_ROOT}/output/evaluation",
                "--metric",
                w.cfg.approval_metric,
                "--threshold",
                w.threshold.to_string(),
                "--baseline-margin",
                w.baseline_margin.to_string(),
                "--model-package-group",
                w.cfg.model_package_group,
                "--champion-tolerance",
                w.champion_tolerance.to_string(),
            ],
        ),
        property_files=[w.report],
        cache_config=w.cache,
    )
