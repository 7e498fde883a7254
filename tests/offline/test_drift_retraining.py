"""Prod's planned drift alarm, rule and state machine, run offline against moto.

The artefacts are the prod plan's own (offline.plan.harness, what `promote plan --json`
writes): the DriftScore alarm's inputs, the rule's pattern, the state machine's
definition and the training pipeline. moto records pipeline executions as `Succeeded`
at once and has no API to make one `Executing`, so the running case sets the status in
moto's in-process backend (what a real execution's status is while it runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sagemaker.models import sagemaker_backends

from offline.plan.capture import StackPlan
from offline.plan.harness import plan_stacks
from offline.retraining import DriftTrigger, PlanError
from tests.plan_helpers import TEST_TAG

T0 = datetime(2026, 1, 5, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def prod() -> StackPlan:
    return plan_stacks(("prod",), image_tag=TEST_TAG)["prod"]


@pytest.fixture
def trigger(prod: StackPlan, monkeypatch: pytest.MonkeyPatch) -> Iterator[DriftTrigger]:
    found = DriftTrigger.from_plan(prod)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", found.account)
    with mock_aws():
        found.install(clients(found))
        yield found


def clients(trigger: DriftTrigger) -> Any:
    return lambda service: boto3.client(service, region_name=trigger.region)


def publish(trigger: DriftTrigger, score: float, when: datetime) -> None:
    """A DriftScore datapoint as the monitor job publishes it (ml.monitoring.metrics)."""
    alarm = trigger.alarm
    boto3.client("cloudwatch", region_name=trigger.region).put_metric_data(
        Namespace=alarm["namespace"],
        MetricData=[
            {
                "MetricName": alarm["metricName"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in alarm["dimensions"].items()],
                "Timestamp": when,
                "Value": score,
            }
        ],
    )


def reset_alarm(trigger: DriftTrigger) -> None:
    """The alarm back to OK, as a later period without drift would leave it."""
    boto3.client("cloudwatch", region_name=trigger.region).set_alarm_state(
        AlarmName=trigger.alarm_name, StateValue="OK", StateReason="a period without drift"
    )


def test_the_plan_gives_the_alarm_rule_machine_and_pipeline(trigger: DriftTrigger) -> None:
    assert trigger.alarm["metricName"] == "DriftScore"
    assert trigger.alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert trigger.retrains and trigger.pipeline is not None
    described = boto3.client("sagemaker", region_name=trigger.region).describe_pipeline(
        PipelineName=trigger.pipeline_name
    )
    assert described["RoleArn"] == trigger.pipeline["roleArn"]


def test_no_drift_leaves_the_alarm_ok_and_starts_nothing(trigger: DriftTrigger) -> None:
    threshold = float(trigger.alarm["threshold"])
    publish(trigger, threshold - 0.1, T0)
    outcome = trigger.evaluate(clients(trigger), T0 + timedelta(minutes=1))
    assert outcome.evaluation.state != "ALARM" and outcome.execution is None
    assert trigger.executions(clients(trigger)) == []


def test_drift_starts_one_execution_then_the_rate_limit_holds(trigger: DriftTrigger) -> None:
    threshold = float(trigger.alarm["threshold"])
    publish(trigger, threshold + 0.2, T0)
    first = trigger.evaluate(clients(trigger), T0 + timedelta(minutes=1))
    assert first.evaluation.state == "ALARM" and first.matched
    assert first.execution is not None and first.execution.status == "SUCCEEDED"
    assert first.execution.path == ("ListExecutions", "Decide", "StartRetraining")
    (started,) = trigger.executions(clients(trigger))
    event_id = first.evaluation.event["id"]  # type: ignore[index]
    assert started["PipelineExecutionDisplayName"] == f"drift-{event_id}"
    assert trigger.alarm_name in started["PipelineExecutionDescription"]

    # The same value again is no state change: EventBridge gets no event at all.
    publish(trigger, threshold + 0.3, T0 + timedelta(hours=1))
    again = trigger.evaluate(clients(trigger), T0 + timedelta(hours=1, minutes=1))
    assert (again.evaluation.state, again.evaluation.event, again.execution) == (
        "ALARM",
        None,
        None,
    )

    # A new change to ALARM the next day, within the minimum interval: rate-limited.
    reset_alarm(trigger)
    next_day = T0 + timedelta(days=1)
    publish(trigger, threshold + 0.2, next_day)
    second = trigger.evaluate(clients(trigger), next_day + timedelta(minutes=1))
    assert second.matched and second.execution is not None
    assert second.execution.final_state == "RateLimited"
    assert len(trigger.executions(clients(trigger))) == 1


def test_while_an_execution_runs_drift_starts_nothing(trigger: DriftTrigger) -> None:
    pipeline = trigger.pipeline_name
    assert pipeline is not None
    scheduled = boto3.client("sagemaker", region_name=trigger.region).start_pipeline_execution(
        PipelineName=pipeline, PipelineExecutionDisplayName="weekly-retraining"
    )["PipelineExecutionArn"]
    backend = sagemaker_backends[trigger.account][trigger.region]
    backend.pipelines[pipeline].pipeline_executions[
        scheduled
    ].pipeline_execution_status = "Executing"
    publish(trigger, float(trigger.alarm["threshold"]) + 0.2, T0)
    outcome = trigger.evaluate(clients(trigger), T0 + timedelta(minutes=1))
    assert outcome.execution is not None
    assert outcome.execution.final_state == "AlreadyRunning"
    assert [e["PipelineExecutionArn"] for e in trigger.executions(clients(trigger))] == [scheduled]


def test_the_rule_pattern_decides_what_reaches_the_machine(trigger: DriftTrigger) -> None:
    from offline.alarms import matches  # noqa: PLC0415

    publish(trigger, float(trigger.alarm["threshold"]) + 0.2, T0)
    event = trigger.evaluate(clients(trigger), T0 + timedelta(minutes=1)).evaluation.event
    assert event is not None and trigger.rule_pattern is not None
    assert matches(trigger.rule_pattern, event)
    other = {**event, "detail": {**event["detail"], "alarmName": "another-alarm"}}
    assert not matches(trigger.rule_pattern, other)
    ok = {**event, "detail": {**event["detail"], "state": {"value": "OK"}}}
    assert not matches(trigger.rule_pattern, ok)


def test_a_stack_without_a_drift_alarm_is_refused() -> None:
    with pytest.raises(PlanError, match="0 DriftScore alarms"):
        DriftTrigger.from_plan(
            StackPlan("promote-code", "dev", (), {"account": "1", "region": "r"})
        )
