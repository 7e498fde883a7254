"""CloudWatch metric alarms, evaluated offline: planned inputs -> local alarm -> state change.

moto stores alarms and datapoints but never evaluates an alarm. `put_planned_alarm` puts
an alarm from its Pulumi inputs (`aws:cloudwatch/metricAlarm:MetricAlarm`, camelCase) as
PutMetricAlarm; `evaluate_alarm` does what CloudWatch does at one evaluation: read the
metric's statistic over the last `EvaluationPeriods` periods, compare each with the
threshold (`ComparisonOperator`), count missing periods as `TreatMissingData` says, and
set the new state (SetAlarmState) when it changed, with the EventBridge event CloudWatch
sends then ("CloudWatch Alarm State Change"). `matches` checks an event against an
EventBridge rule's pattern with moto's own matcher.

Not emulated (refused, naming the input): metric-math alarms (`metricQueries`), anomaly
detection thresholds, percentile statistics with low sample counts.
"""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.events.models import EventPattern

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
PLANNED_FIELDS = {
    "name": "AlarmName",
    "alarmDescription": "AlarmDescription",
    "actionsEnabled": "ActionsEnabled",
    "alarmActions": "AlarmActions",
    "okActions": "OKActions",
    "insufficientDataActions": "InsufficientDataActions",
    "namespace": "Namespace",
    "metricName": "MetricName",
    "statistic": "Statistic",
    "extendedStatistic": "ExtendedStatistic",
    "period": "Period",
    "unit": "Unit",
    "evaluationPeriods": "EvaluationPeriods",
    "datapointsToAlarm": "DatapointsToAlarm",
    "threshold": "Threshold",
    "comparisonOperator": "ComparisonOperator",
    "treatMissingData": "TreatMissingData",
}
"""Pulumi input -> PutMetricAlarm parameter (dimensions and tags are reshaped)."""


class AlarmError(ValueError):
    """An alarm this emulation cannot evaluate; the message names the input."""


def put_planned_alarm(cloudwatch: Any, inputs: Mapping[str, Any]) -> str:
    """PutMetricAlarm from a planned MetricAlarm's inputs; the alarm's name."""
    unsupported = sorted(set(inputs) & {"metricQueries", "thresholdMetricId"})
    if unsupported:
        raise AlarmError(f"MetricAlarm inputs {unsupported}: metric-math alarms are not emulated")
    if inputs.get("comparisonOperator") not in COMPARE:
        raise AlarmError(
            f"MetricAlarm comparisonOperator {inputs.get('comparisonOperator')!r} is not "
            f"emulated (one of {sorted(COMPARE)})"
        )
    request: dict[str, Any] = {
        PLANNED_FIELDS[key]: value
        for key, value in inputs.items()
        if key in PLANNED_FIELDS and value not in (None, [])
    }
    request["Dimensions"] = [
        {"Name": name, "Value": value}
        for name, value in sorted(inputs.get("dimensions", {}).items())
    ]
    if inputs.get("tags"):
        request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(inputs["tags"].items())]
    cloudwatch.put_metric_alarm(**request)
    return str(request["AlarmName"])


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of an alarm: the values read, the state before and after, the event."""

    alarm_name: str
    previous_state: str
    state: str
    values: tuple[float | None, ...]
    """The statistic per evaluated period, oldest first (None: no datapoint)."""
    threshold: float
    operator: str
    reason: str
    event: dict[str, Any] | None
    """The EventBridge event of the state change (None when the state did not change)."""

    @property
    def changed(self) -> bool:
        return self.state != self.previous_state


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def evaluate_alarm(
    cloudwatch: Any, alarm_name: str, at: datetime, *, account: str, region: str
) -> Evaluation:
    """Evaluate `alarm_name` at `at` as CloudWatch would; set its state if it changes."""
    found = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
    if not found:
        raise AlarmError(f"no alarm {alarm_name!r} in local CloudWatch: put it first")
    alarm = found[0]
    period, periods = int(alarm["Period"]), int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm") or periods)
    statistic = alarm.get("Statistic")
    extended = alarm.get("ExtendedStatistic")
    start = at - timedelta(seconds=period * periods)
    query: dict[str, Any] = {
        "Namespace": alarm["Namespace"],
        "MetricName": alarm["MetricName"],
        "Dimensions": alarm.get("Dimensions", []),
        "StartTime": start,
        "EndTime": at,
        "Period": period,
    }
    query |= {"ExtendedStatistics": [extended]} if extended else {"Statistics": [statistic]}
    points = cloudwatch.get_metric_statistics(**query)["Datapoints"]
    values: list[float | None] = [None] * periods
    for point in points:
        index = int((point["Timestamp"] - start).total_seconds() // period)
        if 0 <= index < periods:
            value = point["ExtendedStatistics"][extended] if extended else point[statistic]
            current = values[index]
            values[index] = value if current is None else max(current, value)
    comparison, threshold = alarm["ComparisonOperator"], float(alarm["Threshold"])
    compare = COMPARE[comparison]
    missing = alarm.get("TreatMissingData", "missing")
    breaching = sum(1 for v in values if v is not None and compare(v, threshold))
    if missing == "breaching":
        breaching += values.count(None)
    previous = alarm["StateValue"]
    if breaching >= needed:
        state = "ALARM"
    elif all(v is None for v in values) and missing in ("missing", "ignore"):
        state = "INSUFFICIENT_DATA" if missing == "missing" else previous
    else:
        state = "OK"
    shown = [None if v is None else round(v, 6) for v in values]
    reason = (
        f"Threshold {'Crossed' if state == 'ALARM' else 'not crossed'}: {breaching} of "
        f"{periods} period(s) of {period} s breaching ({alarm['MetricName']} "
        f"{statistic or extended} {shown}, {comparison} {threshold:g})"
    )
    event = None
    if state != previous:
        cloudwatch.set_alarm_state(
            AlarmName=alarm_name,
            StateValue=state,
            StateReason=reason[:1023],
            StateReasonData=json.dumps({"recentDatapoints": shown, "threshold": threshold}),
        )
        event = state_change_event(
            alarm, previous, state=state, reason=reason, at=at, account=account, region=region
        )
    return Evaluation(
        alarm_name, previous, state, tuple(values), threshold, comparison, reason, event
    )


def state_change_event(
    alarm: Mapping[str, Any],
    previous: str,
    *,
    state: str,
    reason: str,
    at: datetime,
    account: str,
    region: str,
) -> dict[str, Any]:
    """The "CloudWatch Alarm State Change" event EventBridge delivers for this change."""
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [alarm["AlarmArn"]],
        "detail": {
            "alarmName": alarm["AlarmName"],
            "state": {"value": state, "reason": reason, "timestamp": _iso(at)},
            "previousState": {"value": previous, "reason": alarm.get("StateReason", "")},
            "configuration": {
                "description": alarm.get("AlarmDescription", ""),
                "metrics": [
                    {
                        "id": "m1",
                        "metricStat": {
                            "metric": {
                                "namespace": alarm["Namespace"],
                                "name": alarm["MetricName"],
                                "dimensions": dimensions,
                            },
                            "period": alarm["Period"],
                            "stat": alarm.get("Statistic") or alarm.get("ExtendedStatistic"),
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


def matches(pattern: str | Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether an EventBridge rule with `pattern` matches `event` (moto's matcher)."""
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return bool(EventPattern.load(raw).matches_event(dict(event)))
