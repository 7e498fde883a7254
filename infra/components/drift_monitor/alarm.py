"""The drift alarm: `DriftScore` (maximum over one schedule period) above the threshold is
ALARM; missing data is not breaching, so a run without enough traffic never alarms."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from infra.components.drift_monitor.args import DriftMonitorArgs

DRIFT_SCORE_METRIC = "DriftScore"
METRIC_DIMENSION = "EndpointName"
"""The job's metric and dimension (`ml.monitoring.metrics`; a test keeps them equal)."""


def drift_alarm(
    name: str, args: DriftMonitorArgs, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.cloudwatch.MetricAlarm:
    """The alarm on the job's `DriftScore` of this endpoint."""
    return aws.cloudwatch.MetricAlarm(
        f"{name}-alarm",
        name=args.alarm_name,
        alarm_description=(
            f"Drift of {args.endpoint_name} above {args.drift_threshold}"
            + (": starts drift retraining" if args.retrain_on_drift else "")
        ),
        namespace=args.metric_namespace,
        metric_name=DRIFT_SCORE_METRIC,
        dimensions={METRIC_DIMENSION: args.endpoint_name},
        statistic="Maximum",
        period=args.alarm_period_seconds,
        evaluation_periods=1,
        threshold=args.drift_threshold,
        comparison_operator="GreaterThanThreshold",
        # "Insufficient data" publishes no score: never a reason to retrain.
        treat_missing_data="notBreaching",
        alarm_actions=list(args.alarm_actions),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
