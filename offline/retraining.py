"""Drift retraining, locally, from a stack's plan: alarm -> EventBridge rule -> state machine.

`DriftTrigger.from_plan(plan)` takes the planned artefacts as they are: the `DriftScore`
MetricAlarm's inputs, and (where the stack retrains on drift) the EventBridge rule that
targets the state machine, the state machine's definition and the training pipeline.
`install(clients)` puts the alarm into local CloudWatch and creates the pipeline in local
SageMaker (so ListPipelineExecutions and StartPipelineExecution work). `evaluate(clients, at)`
evaluates the alarm on what the monitor job published (offline/alarms.py); when it changes
to a state the rule's pattern matches, it runs the state machine on the change's event
(offline/state_machine.py) and returns what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from offline.alarms import Evaluation, evaluate_alarm, matches, put_planned_alarm
from offline.plan.capture import CapturedResource, StackPlan
from offline.state_machine import Execution, StateMachine

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
MACHINE = "aws:sfn/stateMachine:StateMachine"
PIPELINE = "aws:sagemaker/pipeline:Pipeline"
DRIFT_METRIC = "DriftScore"
Clients = Callable[[str], Any]
"""service name -> boto3 client of local AWS (`LocalAws.client`)."""


class PlanError(ValueError):
    """The plan lacks what the local loop needs; the message says what and how to fix it."""


@dataclass(frozen=True)
class Outcome:
    """One alarm evaluation, and the state machine's run if the change reached it."""

    evaluation: Evaluation
    matched: bool
    execution: Execution | None


@dataclass(frozen=True)
class DriftTrigger:
    account: str
    region: str
    alarm: dict[str, Any]
    rule_pattern: str | None
    machine_name: str | None
    definition: str | None
    pipeline: dict[str, Any] | None

    @classmethod
    def from_plan(cls, plan: StackPlan) -> DriftTrigger:
        alarms = [a for a in plan.of_type(ALARM) if a.inputs.get("metricName") == DRIFT_METRIC]
        if len(alarms) != 1:
            raise PlanError(
                f"the {plan.stack} plan has {len(alarms)} {DRIFT_METRIC} alarms, expected one "
                "(monitoring.enabled: true in its stack settings)"
            )
        account, region = str(plan.outputs["account"]), str(plan.outputs["region"])
        machines = plan.of_type(MACHINE)
        if not machines:
            return cls(account, region, dict(alarms[0].inputs), None, None, None, None)
        machine = _one(machines, plan.stack, "state machine")
        name = str(machine.inputs["name"])
        arn = f"arn:aws:states:{region}:{account}:stateMachine:{name}"
        targets = [t for t in plan.of_type(TARGET) if t.inputs.get("arn") == arn]
        rule_names = {str(t.inputs["rule"]) for t in targets}
        rules = [r for r in plan.of_type(RULE) if r.inputs.get("name") in rule_names]
        rule = _one(rules, plan.stack, f"EventBridge rule targeting {name}")
        pipeline = _one(plan.of_type(PIPELINE), plan.stack, "pipeline")
        return cls(
            account,
            region,
            dict(alarms[0].inputs),
            str(rule.inputs["eventPattern"]),
            name,
            str(machine.inputs["definition"]),
            dict(pipeline.inputs),
        )

    @property
    def alarm_name(self) -> str:
        return str(self.alarm["name"])

    @property
    def retrains(self) -> bool:
        return self.definition is not None

    @property
    def pipeline_name(self) -> str | None:
        return None if self.pipeline is None else str(self.pipeline["pipelineName"])

    def install(self, clients: Clients) -> None:
        """The planned alarm in local CloudWatch, the planned pipeline in local SageMaker."""
        put_planned_alarm(clients("cloudwatch"), self.alarm)
        if self.pipeline is not None:
            clients("sagemaker").create_pipeline(
                PipelineName=self.pipeline["pipelineName"],
                PipelineDisplayName=self.pipeline.get("pipelineDisplayName")
                or self.pipeline["pipelineName"],
                PipelineDefinition=self.pipeline["pipelineDefinition"],
                RoleArn=self.pipeline["roleArn"],
            )

    def evaluate(self, clients: Clients, at: datetime) -> Outcome:
        evaluation = evaluate_alarm(
            clients("cloudwatch"), self.alarm_name, at, account=self.account, region=self.region
        )
        event = evaluation.event
        if event is None or self.rule_pattern is None or self.definition is None:
            return Outcome(evaluation, False, None)
        if not matches(self.rule_pattern, event):
            return Outcome(evaluation, False, None)
        machine = StateMachine(self.definition)
        name = f"{self.machine_name}-{event['id']}"
        return Outcome(evaluation, True, machine.run(event, clients, name=name))

    def executions(self, clients: Clients) -> list[dict[str, Any]]:
        """The pipeline's executions in local SageMaker (newest first)."""
        if self.pipeline_name is None:
            return []
        listed = clients("sagemaker").list_pipeline_executions(PipelineName=self.pipeline_name)
        found: list[dict[str, Any]] = listed["PipelineExecutionSummaries"]
        return sorted(found, key=lambda e: e["StartTime"], reverse=True)


def _one(resources: list[CapturedResource], stack: str, what: str) -> CapturedResource:
    if len(resources) != 1:
        names = sorted(r.name for r in resources)
        raise PlanError(f"the {stack} plan has {len(resources)} {what}(s) {names}, expected one")
    return resources[0]
