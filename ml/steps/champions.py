"""Champion/challenger: the group's approved champion, scored like the challenger.

The champion is the model package group's newest `Approved` package (ListModelPackages,
newest CreationTime first); its ModelDataUrl archive is scored on the same test split
with the same scorer (scoring.py's `score`). `champion_block` is the report's `champion`
block: its ARN and value (null without one), the challenger's value, `shortfall` =
champion - challenger (0.0 without a champion; negative when the challenger is better),
the tolerance and `passed`. No champion, or one whose archive cannot be downloaded
(deleted, refused): judged by the threshold and baseline alone, the report says why. A
champion archive that downloads but cannot be unpacked, loaded or run (corrupt, or
pickled by an incompatible scikit-learn) gets `shortfall` = UNSCORABLE_SHORTFALL (more
than any tolerance): the challenger is registered but not approved automatically,
because nobody can tell whether it is worse than what is served. A registry that cannot
be listed fails the step (`ChampionError`): the guard would otherwise be off without
anyone noticing.

Part of evaluate.py's code bundle (boto3 for the registry, imported only when asked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

if __package__:  # imported as ml.steps.champions (tests, the local tools)
    from ml.steps import scoring, tracking
else:  # in the job: its modules are beside it (evaluate.py's code bundle, ml/pipeline/code.py)
    import scoring  # type: ignore[no-redef]
    import tracking  # type: ignore[no-redef]

UNSCORABLE_SHORTFALL = 2.0
"""`champion.shortfall` of a champion that exists but cannot be scored: above any
tolerance (at most 1), so accuracy-check leaves the challenger for a person."""


class ChampionError(scoring.EvaluationError):
    """The registry could not be asked for the group's approved packages."""


@dataclass(frozen=True)
class Champion:
    """The group's newest approved package, as far as it could be read and scored."""

    status: str
    """'none' (no approved package), 'scored', 'unreadable' (its archive could not be
    downloaded) or 'corrupt' (downloaded, but it cannot be unpacked, loaded or run)."""
    model_package_arn: str | None = None
    scores: Mapping[str, float] | None = None
    note: str = ""
    """Why it was not scored (empty when scored)."""


NO_CHAMPION = Champion("none", note="no approved package in the group yet")


def champion_block(
    champion: Champion, metric: str, challenger: float, tolerance: float
) -> dict[str, Any]:
    """The `champion` block: what accuracy-check compares (`shortfall` <= tolerance)."""
    value = None
    if champion.status == "scored" and champion.scores is not None:
        value = float(champion.scores[metric])
        shortfall = value - challenger
    elif champion.status == "corrupt":
        shortfall = UNSCORABLE_SHORTFALL
    else:  # none, unreadable: judged by the threshold and the baseline alone
        shortfall = 0.0
    return {
        "model_package_arn": champion.model_package_arn,
        "status": champion.status,
        "metric": metric,
        "value": value,
        "scores": None if champion.scores is None else dict(champion.scores),
        "challenger": challenger,
        "shortfall": shortfall,
        "tolerance": tolerance,
        # The same comparison accuracy-check makes on the same floats.
        "passed": shortfall <= tolerance,
        "note": champion.note,
    }


def champion_reason(metric: str, value: float, duel: Mapping[str, Any]) -> str:
    """The summary's words on the champion check, from the `champion` block."""
    arn, status, tolerance = duel["model_package_arn"], duel["status"], duel["tolerance"]
    if status == "none":
        return "no approved champion in the group: judged by the threshold and baseline alone"
    if status == "unreadable":
        return (
            f"the champion {arn} could not be read ({duel['note']}): "
            "judged by the threshold and baseline alone"
        )
    if status == "corrupt":
        return f"the champion {arn} could not be scored ({duel['note']}): left for manual approval"
    shortfall, champion = duel["shortfall"], duel["value"]
    if shortfall <= 0:
        return f"{-shortfall:.3f} above the champion ({arn}, {champion:.3f})"
    if duel["passed"]:
        return (
            f"{shortfall:.3f} below the champion ({arn}, {champion:.3f}), "
            f"within the tolerance {tolerance:g}"
        )
    return (
        f"{metric} {value:.3f} is {shortfall:.3f} below the champion ({arn}, {champion:.3f}), "
        f"more than the tolerance {tolerance:g}"
    )


@dataclass(frozen=True)
class Registry:
    """The AWS clients the champion lookup needs (boto3's, or a test's)."""

    sagemaker: Any
    s3: Any


def boto3_registry(environ: Mapping[str, str]) -> Registry:
    """boto3 clients for the job's region and endpoint."""
    import boto3  # noqa: PLC0415 - only with --model-package-group

    # Region and endpoint from the job's environment (AWS_DEFAULT_REGION; locally
    # AWS_ENDPOINT_URL points at moto), as every boto3 client reads them.
    session = boto3.session.Session(region_name=environ.get("AWS_DEFAULT_REGION"))
    return Registry(session.client("sagemaker"), session.client("s3"))


def newest_approved(sagemaker: Any, group: str) -> Mapping[str, Any] | None:
    """The summary of the group's newest Approved package, None if it has none."""
    try:
        response = sagemaker.list_model_packages(
            ModelPackageGroupName=group,
            ModelApprovalStatus="Approved",
            SortBy="CreationTime",
            SortOrder="Descending",
            MaxResults=10,
        )
    except Exception as error:  # botocore's errors, by shape: a one-line reason
        raise ChampionError(
            f"--model-package-group {group}: cannot list its approved packages "
            f"({tracking.one_line(error)}); the job's role needs sagemaker:ListModelPackages on it"
        ) from None
    summaries = response.get("ModelPackageSummaryList") or []
    if not summaries:
        return None
    # Newest first already; the version breaks a tie of timestamps.
    newest: Mapping[str, Any] = max(
        summaries, key=lambda s: (s.get("CreationTime"), int(s.get("ModelPackageVersion") or 0))
    )
    return newest


def _s3_location(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[len("s3://") :]:
        raise ValueError(f"not an s3:// object URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def find_champion(registry: Registry, group: str, test: pd.DataFrame, scratch: Path) -> Champion:
    """The group's newest approved package, scored on `test` with `score`."""
    summary = newest_approved(registry.sagemaker, group)
    if summary is None:
        return NO_CHAMPION
    arn = str(summary["ModelPackageArn"])
    try:
        package = registry.sagemaker.describe_model_package(ModelPackageName=arn)
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        url = next((c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")), None)
        if url is None:
            return Champion("unreadable", arn, note="the package has no ModelDataUrl")
        bucket, key = _s3_location(str(url))
        body = registry.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:  # deleted, refused, malformed: the champion cannot be read
        return Champion("unreadable", arn, note=tracking.one_line(error))
    packed = scratch / "champion"
    packed.mkdir(parents=True, exist_ok=True)
    (packed / "model.tar.gz").write_bytes(body)
    try:
        # The group's own approved package, from this stack's artifacts bucket.
        model, labels, _ = scoring.load_model(
            scoring.unpack_model(packed, scratch / "champion-model")
        )
        scores = scoring.score(model, labels, test)
    except Exception as error:  # tar, pickle, scikit-learn or shape: it cannot be scored
        return Champion("corrupt", arn, note=f"{type(error).__name__}: {tracking.one_line(error)}")
    return Champion("scored", arn, scores=scores)
