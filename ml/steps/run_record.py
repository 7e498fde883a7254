"""What evaluate-model records about a model: its lineage and its MLflow run.

Lineage: the report's `lineage` block, whose keys are ml.lineage's METADATA_KEYS, string
values ("none" when absent), which the register step copies into the package's
CustomerMetadataProperties: commit and training image (`PROMOTE_COMMIT`,
`PROMOTE_TRAINING_IMAGE`), the train split's data hash (`input_sha256` of `--train-dir`'s
data_report.json), the MLflow run and tracking server, the metric, its value and the
champion's value.

MLflow: `log_scores` logs to the run evaluate-model resumed the scores, per-class F1,
the baseline's and the champion's (`run_metrics`), the approval parameters, the lineage
tags, a classification report and a confusion-matrix PNG, through tracking.py's worker,
as soon as the report exists; evaluate.py adds evaluation.json, drift_baseline.json and
the model archive (`log_artifact` only: the execution role may call the run, metric,
param and tag APIs, not the model registry's).

Part of evaluate.py's code bundle (stdlib + scikit-learn; mlflow only in tracking.py's
worker).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sklearn.metrics import classification_report

if __package__:  # imported as ml.steps.run_record (tests, the local tools)
    from ml.steps import scoring, tracking
else:  # in the job: its modules are beside it (evaluate.py's code bundle, ml/pipeline/code.py)
    import scoring  # type: ignore[no-redef]
    import tracking  # type: ignore[no-redef]

LINEAGE_KEYS = (
    "commit",
    "training_image",
    "data_sha256",
    "mlflow_run_id",
    "mlflow_tracking_arn",
    "metric",
    "metric_value",
    "champion_metric_value",
)
"""ml.lineage METADATA_KEYS (tests/ml/test_tracking.py holds them equal)."""
ABSENT = tracking.ABSENT
"""SageMaker refuses an empty CustomerMetadataProperties value."""
_TRACKING_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/[A-Za-z0-9-]+$"
)


def lineage(
    environ: Mapping[str, str], report: Mapping[str, Any], data_hash: str, run_id: str | None
) -> dict[str, str]:
    """The facts the register step copies into CustomerMetadataProperties (all strings)."""
    uri = environ.get(tracking.ENV_TRACKING_URI, "")
    champion = report["champion"]["value"]
    facts = {
        "commit": environ.get(tracking.ENV_COMMIT, ""),
        "training_image": environ.get(tracking.ENV_TRAINING_IMAGE, ""),
        "data_sha256": data_hash,
        "mlflow_run_id": run_id or "",
        "mlflow_tracking_arn": uri if _TRACKING_ARN.match(uri) else "",
        "metric": report["approval"]["metric"],
        "metric_value": f"{report['approval']['value']:.6f}",
        "champion_metric_value": "" if champion is None else f"{champion:.6f}",
    }
    return {key: facts[key] or ABSENT for key in LINEAGE_KEYS}


def _metric_names(labels: list[str]) -> dict[str, str]:
    """`f1.<label>` per label, in MLflow's allowed characters, distinct."""
    names: dict[str, str] = {}
    for label in labels:
        # "Cardiovascular / Pulmonary" -> "f1.Cardiovascular_Pulmonary" (a slash would
        # group metrics in the UI and may make the name a path).
        name = "f1." + re.sub(r"\s*[^A-Za-z0-9_.\- ]+\s*", "_", label).strip()
        while name in names.values():
            name += "_"
        names[label] = name
    return names


def run_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The scores, per-class F1, the baseline's and the champion's, as MLflow metrics."""
    scores = report["multiclass_classification_metrics"]
    metrics = {name: float(scores[name]["value"]) for name in scoring.METRICS}
    per_class = report["per_class_f1"]
    names = _metric_names(sorted(per_class))
    metrics |= {names[label]: float(value) for label, value in per_class.items()}
    metrics |= {f"baseline.{name}": float(report["baseline"][name]) for name in scoring.METRICS}
    champion = report["champion"]
    if champion["value"] is not None:
        metrics["champion.value"] = float(champion["value"])
    metrics["champion.shortfall"] = float(champion["shortfall"])
    return metrics


def classification_text(report: Mapping[str, Any]) -> str:
    """The summary and scikit-learn's classification report, from the confusion matrix
    (the counts are all the report needs: no second prediction pass)."""
    rows = report["multiclass_classification_metrics"]["confusion_matrix"]
    reference = [r for r, row in rows.items() for c, n in row.items() for _ in range(n)]
    guess = [c for row in rows.values() for c, n in row.items() for _ in range(n)]
    labels = sorted(rows)
    text: str = classification_report(reference, guess, labels=labels, zero_division=0, digits=3)
    return f"{report['summary']}\n\n{text}"


def log_scores(
    run: tracking.TrackedRun,
    report: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any],
    tags: Mapping[str, str],
    scratch: Path,
) -> None:
    """Metrics, parameters and tags, the classification report and the confusion matrix PNG
    (drawn by the worker while the job computes the drift baseline)."""
    run.log_batch(
        "metrics, parameters and tags", metrics=run_metrics(report), params=parameters, tags=tags
    )
    text = scratch / "classification_report.txt"
    text.write_text(classification_text(report))
    run.log_artifact(text)
    run.log_confusion_matrix(
        report["multiclass_classification_metrics"]["confusion_matrix"],
        f"confusion matrix ({report['test_notes']} test notes)",
        scratch / "confusion_matrix.png",
    )
