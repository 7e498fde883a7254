"""The CloudWatch metrics of one monitoring run (what the drift alarm watches).

One PutMetricData call in the stack's namespace, dimension `EndpointName`:
`DriftScore` (the JS distance, unit None), `RequestsAnalysed` and `NotesAnalysed`
(Count). With insufficient data no `DriftScore` is sent: the alarm sees missing data
(INSUFFICIENT_DATA, or not breaching with `TreatMissingData: notBreaching`), never a
made-up score. The timestamp is the analysed window's end, so a re-run of the same
window rewrites the same datapoint rather than adding one at a new time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ml.monitoring.drift import DriftResult

DIMENSION = "EndpointName"
DRIFT_SCORE = "DriftScore"
REQUESTS = "RequestsAnalysed"
NOTES = "NotesAnalysed"


def metric_data(
    result: DriftResult, requests: int, endpoint: str, timestamp: datetime
) -> list[dict[str, Any]]:
    """The MetricData list of PutMetricData (botocore's MetricDatum shape)."""
    dimensions = [{"Name": DIMENSION, "Value": endpoint}]
    data: list[dict[str, Any]] = [
        {
            "MetricName": REQUESTS,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": float(requests),
            "Unit": "Count",
        },
        {
            "MetricName": NOTES,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": float(result.notes),
            "Unit": "Count",
        },
    ]
    if result.score is not None:
        data.append(
            {
                "MetricName": DRIFT_SCORE,
                "Dimensions": dimensions,
                "Timestamp": timestamp,
                "Value": result.score,
                "Unit": "None",
            }
        )
    return data


def publish(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    """Send `data` (at most 1000 datums a call; a run sends three)."""
    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data)
