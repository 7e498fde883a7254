"""evaluate-model: score the trained model on the held-out test split.

Writes `evaluation.json` in SageMaker's model-quality format, so the registry
shows it and the pipeline's `accuracy-check` reads
`multiclass_classification_metrics.accuracy.value` from it (PropertyFile).

Besides accuracy it reports macro-F1, weighted F1 and per-class F1, the same metrics
for a majority-class baseline (the most frequent train label, from model.json), and an
`approval` block: the model passes when `--metric` (default macro_f1) is at least
`--threshold` AND beats the baseline's value by at least `--baseline-margin` AND (with
`--model-package-group`) falls short of the group's champion by at most
`--champion-tolerance`. `summary` says in words whether the model is approved and why.
Test rows whose `labels` column lists several labels (preprocess `--conflicts
keep-all`) count a prediction of any of them as right (scoring.py: the model, the test
split, the scorer).

Champion/challenger (champions.py: which package is the champion, how it is scored, what
an unreadable or corrupt one means): the `champion` block holds its ARN and value (null
without one), the challenger's value, `shortfall` = champion - challenger (0.0 without a
champion; negative when the challenger is better), the tolerance and `passed`. A
registry that cannot be listed fails the step.

Lineage: a `lineage` block whose keys are ml.lineage's METADATA_KEYS, string values
("none" when absent), which the register step copies into the package's
CustomerMetadataProperties (run_record.py lists the facts).

MLflow: with `MLFLOW_TRACKING_URI` set, the step resumes the run train-model created
(`mlflow_run_id` in model.json; a new run named after the pipeline execution if
there is none) and logs the scores, the approval parameters and the artifacts
(run_record.py says which). A run that cannot be opened fails the step (every run is
tracked, or the pipeline says so); a logging call that fails after that is a warning
line (the run exists, the model is evaluated). Without the variable, mlflow is never
imported.

The model input is the training job's `model.tar.gz` (or an unpacked model
directory). A test label the model was never trained on is an error, not a
silent miss: it means the splits or the label set are wrong.

It also writes `drift_baseline.json`, what the drift monitor (ml/monitoring) compares
an endpoint's captured traffic with (drift_baseline.py: what it holds); with
`--train-dir`, it covers words outside the training vocabulary too.

Code bundle: this file, scoring.py, champions.py, drift_baseline.py, run_record.py,
tracking.py and ml/limits.py (the approval defaults, the stack settings'); stdlib +
numpy/pandas/scikit-learn/joblib, boto3 for the champion, mlflow and matplotlib in
tracking.py's worker when tracked; uploaded side by side and run as is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__:  # imported as ml.steps.evaluate (tests, the local tools)
    from ml.steps import tracking
else:  # the job's script: its modules are beside it (its code bundle, ml/pipeline/code.py)
    import tracking  # type: ignore[no-redef]

    tracking.start_worker_early()  # mlflow loads in the worker while this job loads below

import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

if __package__:  # imported as ml.steps.evaluate (tests, the local tools)
    from ml import limits
    from ml.steps import champions, drift_baseline, run_record, scoring
else:  # the job's script: its modules are beside it (its code bundle, ml/pipeline/code.py)
    import champions  # type: ignore[no-redef]
    import drift_baseline  # type: ignore[no-redef]
    import limits  # type: ignore[no-redef]
    import run_record  # type: ignore[no-redef]
    import scoring  # type: ignore[no-redef]

EVALUATION_FILE = "evaluation.json"
DEFAULT_METRIC = limits.DEFAULT_APPROVAL_METRIC
DEFAULT_THRESHOLD = limits.METRIC_THRESHOLD.default
DEFAULT_BASELINE_MARGIN = limits.BASELINE_MARGIN.default
DEFAULT_CHAMPION_TOLERANCE = limits.CHAMPION_TOLERANCE.default
SUMMARY_MAX = 1024
"""CreateModelPackage's ModelPackageDescription (the summary lands there) holds 1024."""


def evaluate(
    model: Any,
    labels: list[str],
    test: pd.DataFrame,
    majority: str | None = None,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
    champion: champions.Champion = champions.NO_CHAMPION,
    champion_tolerance: float = DEFAULT_CHAMPION_TOLERANCE,
) -> dict[str, Any]:
    """The evaluation report for `model` on `test` (columns text, label[, labels])."""
    if metric not in scoring.METRICS:
        raise scoring.EvaluationError(
            f"--metric must be one of {list(scoring.METRICS)}, got {metric!r}"
        )
    index = {label: position for position, label in enumerate(labels)}
    unknown = sorted(set(test["label"]) - set(index))
    if unknown:
        raise scoring.EvaluationError(
            f"test data has label(s) the model was not trained on: {unknown}; "
            f"the model knows {labels}"
        )
    predicted, reference = scoring.predictions(model, labels, test)
    present = sorted(set(reference) | set(predicted))
    matrix = confusion_matrix(reference, predicted, labels=present)
    per_label = f1_score(reference, predicted, labels=present, average=None, zero_division=0)
    scores = scoring.score_predictions(reference, predicted)
    base_label = majority if majority in index else str(test["label"].mode().iloc[0])
    base_predicted = [base_label] * len(test)
    base_scores = scoring.score_predictions(
        scoring.references(test, base_predicted), base_predicted
    )
    baseline: dict[str, Any] = {"label": base_label, **base_scores}
    comparison = {
        name: {
            "model": scores[name],
            "baseline": base_scores[name],
            "margin": scores[name] - base_scores[name],
        }
        for name in scoring.METRICS
    }
    value = scores[metric]
    required = max(threshold, base_scores[metric] + baseline_margin)
    duel = champions.champion_block(champion, metric, value, champion_tolerance)
    checks = {
        "threshold": value >= threshold,
        "baseline": comparison[metric]["margin"] >= baseline_margin,
        "champion": duel["passed"],
    }
    passed = all(checks.values())
    approval = {
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "baseline": base_scores[metric],
        "baseline_margin": baseline_margin,
        "required": required,
        "margin_over_required": value - required,
        "champion_tolerance": champion_tolerance,
        "checks": checks,
        "passed": passed,
    }
    return {
        "multiclass_classification_metrics": {
            **{
                name: {"value": scores[name], "standard_deviation": 0}
                for name in ("accuracy", "weighted_f1", "macro_f1")
            },
            "confusion_matrix": {
                row: {col: int(matrix[i][j]) for j, col in enumerate(present)}
                for i, row in enumerate(present)
            },
        },
        "per_label_f1": {p: float(v) for p, v in zip(present, per_label, strict=True)},
        "per_class_f1": {p: float(v) for p, v in zip(present, per_label, strict=True)},
        "baseline": baseline,
        "baseline_comparison": comparison,
        "better_than_baseline": comparison[metric]["margin"] > 0,
        "champion": duel,
        "approval": approval,
        "summary": summarize(approval, base_label, duel),
        "test_notes": len(test),
        "scoring": "any listed label" if "labels" in test.columns else "single label",
    }


def summarize(approval: Mapping[str, Any], base_label: str, duel: Mapping[str, Any]) -> str:
    """Whether the challenger is approved and why, in one line (failing reasons first)."""
    metric, value = approval["metric"], approval["value"]
    threshold, margin = approval["threshold"], approval["baseline_margin"]
    base = approval["baseline"]
    over = value - base
    checks = approval["checks"]
    reasons = {
        "threshold": f"{metric} {value:.3f} "
        + ("meets" if checks["threshold"] else "fails")
        + f" the threshold {threshold:g}",
        "baseline": (
            f"{over:.3f} above the majority baseline ({base_label}) {base:.3f}, "
            + ("at least" if checks["baseline"] else "less than")
            + f" the margin {margin:g}"
            if over > 0
            else f"NOT better than the majority baseline ({base_label}) {base:.3f}"
        ),
        "champion": champions.champion_reason(metric, value, duel),
    }
    failing = [reasons[name] for name in reasons if not checks[name]]
    passing = [reasons[name] for name in reasons if checks[name]]
    verdict = "approved" if approval["passed"] else "not approved"
    summary = f"{verdict}: " + "; ".join(failing + passing)
    # One line in the registry's description: no control characters, at most 1024.
    summary = re.sub(r"[\x00-\x1f\x7f]+", " ", summary)
    return summary if len(summary) <= SUMMARY_MAX else summary[: SUMMARY_MAX - 3] + "..."


# -- the step ------------------------------------------------------------------------------


def run(
    model_dir: Path,
    test_dir: Path,
    output_dir: Path,
    *,
    metric: str = DEFAULT_METRIC,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_margin: float = DEFAULT_BASELINE_MARGIN,
    train_dir: Path | None = None,
    model_package_group: str | None = None,
    champion_tolerance: float = DEFAULT_CHAMPION_TOLERANCE,
    registry: champions.Registry | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Write evaluation.json and drift_baseline.json; return the evaluation report.

    With `model_package_group`, the group's champion is looked up with `registry`
    (default: boto3 clients for the environment's region and endpoint). With
    `MLFLOW_TRACKING_URI` in `environ` (default os.environ), the run is logged.
    """
    env = os.environ if environ is None else environ
    problem = limits.CHAMPION_TOLERANCE.problem("--champion-tolerance", champion_tolerance)
    if problem is not None:
        raise scoring.EvaluationError(problem)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        unpacked = scoring.unpack_model(model_dir, scratch / "model")
        model, labels, majority = scoring.load_model(unpacked)
        # The worker resumes the run while the job scores, and gets each thing to log as
        # soon as it exists; an unopenable run fails the step before anything is written.
        run = tracking.TrackedRun.start(
            env,
            run_id=scoring.read_metadata(unpacked).get("mlflow_run_id"),
            untracked_hint="evaluate untracked",
        )
        if run is not None:
            archive = model_dir / "model.tar.gz"
            run.log_artifact(
                archive if archive.is_file() else unpacked / scoring.MODEL_FILE, "model"
            )
        try:
            test = scoring.read_test(test_dir)
            champion = champions.NO_CHAMPION
            if model_package_group:
                registry = registry or champions.boto3_registry(env)
                champion = champions.find_champion(registry, model_package_group, test, scratch)
            report = evaluate(
                model,
                labels,
                test,
                majority,
                metric=metric,
                threshold=threshold,
                baseline_margin=baseline_margin,
                champion=champion,
                champion_tolerance=champion_tolerance,
            )
            data_hash = tracking.data_sha256(train_dir)
            if run is not None:
                parameters = {
                    "approval_metric": metric,
                    "metric_threshold": threshold,
                    "baseline_margin": baseline_margin,
                    "champion_tolerance": champion_tolerance,
                    "model_package_group": model_package_group or tracking.ABSENT,
                }
                tags = tracking.run_tags(env, data_hash)
                run_record.log_scores(
                    run, report, parameters=parameters, tags=tags, scratch=scratch
                )
            train_texts = None if train_dir is None else drift_baseline.read_train_texts(train_dir)
            baseline = drift_baseline.drift_baseline(model, labels, test, train_texts)
            run_id = None if run is None else run.run_id()
            report["lineage"] = run_record.lineage(env, report, data_hash, run_id)
            output_dir.mkdir(parents=True, exist_ok=True)
            evaluation = output_dir / EVALUATION_FILE
            evaluation.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
            (output_dir / drift_baseline.DRIFT_BASELINE_FILE).write_text(
                json.dumps(baseline, indent=2, sort_keys=True) + "\n"
            )
        except BaseException:
            if run is not None:
                run.finish("FAILED")
            raise
        if run is not None:
            # The drift baseline goes with the run too (issue 14): what the monitor compares with.
            run.log_artifact(evaluation)
            run.log_artifact(output_dir / drift_baseline.DRIFT_BASELINE_FILE)
            run.finish()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("/opt/ml/processing/input/model"))
    parser.add_argument("--test-dir", type=Path, default=Path("/opt/ml/processing/input/test"))
    parser.add_argument(
        "--output-dir", type=Path, default=Path("/opt/ml/processing/output/evaluation")
    )
    parser.add_argument("--metric", choices=scoring.METRICS, default=DEFAULT_METRIC)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--baseline-margin", type=float, default=DEFAULT_BASELINE_MARGIN)
    parser.add_argument(
        "--train-dir",
        type=Path,
        default=None,
        help="the train split: its words are the drift baseline's vocabulary (no OOV without), "
        "its data_report.json the dataset hash",
    )
    parser.add_argument(
        "--model-package-group",
        default=None,
        help="score the group's newest Approved package (the champion) on the same test split",
    )
    parser.add_argument(
        "--champion-tolerance",
        type=float,
        default=DEFAULT_CHAMPION_TOLERANCE,
        help="how far below the champion the model may score and still be approved",
    )
    args = parser.parse_args(argv)
    try:
        report = run(
            args.model_dir,
            args.test_dir,
            args.output_dir,
            metric=args.metric,
            threshold=args.threshold,
            baseline_margin=args.baseline_margin,
            train_dir=args.train_dir,
            model_package_group=args.model_package_group,
            champion_tolerance=args.champion_tolerance,
        )
    except (scoring.EvaluationError, tracking.TrackingError, OSError) as error:
        print(f"evaluate-model failed: {error}", file=sys.stderr)
        return 1
    accuracy = report["multiclass_classification_metrics"]["accuracy"]["value"]
    print(f"accuracy={accuracy:.6f} test_notes={report['test_notes']}")
    print(report["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
