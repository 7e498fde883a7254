"""The ExperimentTracking component (managed MLflow) under the offline mocks, on its own.

Built as the dev stack would build it, next to a role policy holding the execution
role's MLflow grant, so the grant is checked as IAM will see it, and in a first
preview (nothing exists yet) as well as after creation.
"""

from __future__ import annotations

import asyncio
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import settings as pulumi_settings

from infra.components.experiment_tracking import (
    MLFLOW_LOGGING_ACTIONS,
    ExperimentTracking,
    ExperimentTrackingArgs,
    tracking_use_statements,
)
from infra.iam import policy_json
from offline.plan.capture import UNKNOWN, StackPlan
from offline.plan.harness import PROJECT, CapturingMonitor
from offline.plan.mocks import OfflineMocks
from tests.security.support import ACCOUNT, ARTIFACTS, BOUNDARY, KEY_ARN, PREFIX, REGION, TAGS

SERVER = f"{PREFIX}-mlflow"
ROLE = f"{PREFIX}-mlflow-server"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/{SERVER}"
GRANT = f"{PREFIX}-execution-mlflow"
"""The role policy the test declares with `tracking_use_statements`, as the stack would."""
SERVER_TYPE = "aws:sagemaker/mlflowTrackingServer:MlflowTrackingServer"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def args(**changes: Any) -> ExperimentTrackingArgs:
    values: dict[str, Any] = {
        "tracking_server_name": SERVER,
        "role_name": ROLE,
        "account": ACCOUNT,
        "region": REGION,
        "artifacts_bucket": ARTIFACTS,
        "kms_key_arn": KEY_ARN,
        "experiment_name": PREFIX,
        "tags": TAGS,
        "permissions_boundary": BOUNDARY,
    }
    return ExperimentTrackingArgs(**{**values, **changes})


def capture(declare: Callable[[], pulumi.Output[Any]], *, first_preview: bool = False) -> StackPlan:
    """`declare` as a dev-stack program under the offline mocks (a first preview if asked)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi_settings.ROOT.set(None)
    mocks = OfflineMocks(account=ACCOUNT, region=REGION, first_preview=first_preview)
    monitor = CapturingMonitor(mocks)
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack="dev", preview=first_preview, monitor=monitor
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[Any]:
        return declare()

    program()
    return StackPlan(PROJECT, "dev", tuple(sorted(monitor.captured, key=lambda r: r.urn)), {})


def tracking_plan(
    first_preview: bool = False, seen: dict[str, Any] | None = None, **changes: Any
) -> StackPlan:
    """The component and the execution role's grant on its ARN; `seen` gets resolved outputs."""

    def declare() -> pulumi.Output[Any]:
        tracking = ExperimentTracking(SERVER, args(**changes))
        aws.iam.RolePolicy(
            GRANT,
            role=f"{PREFIX}-sagemaker-execution",
            policy=policy_json(*tracking_use_statements(tracking.arn)),
        )
        return pulumi.Output.all(tracking.server.arn, tracking.artifact_store_uri).apply(
            lambda values: (seen if seen is not None else {}).update(
                server_arn=values[0], artifact_store_uri=values[1], arn=tracking.arn
            )
        )

    return capture(declare, first_preview=first_preview)


@pytest.fixture(scope="module")
def outputs() -> dict[str, Any]:
    return {}


@pytest.fixture(scope="module")
def plan(outputs: dict[str, Any]) -> StackPlan:
    return tracking_plan(seen=outputs)


def document(plan: StackPlan, name: str, key: str = "policy") -> dict[str, Any]:
    resource = next(r for r in plan.resources if r.name == name and key in r.inputs)
    text = resource.inputs[key]
    assert text != UNKNOWN, f"{name}.{key} is unknown"
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_server_stores_artifacts_under_the_prefix_through_its_own_role(
    plan: StackPlan, outputs: dict[str, Any]
) -> None:
    (server,) = plan.of_type(SERVER_TYPE)
    assert server.inputs["trackingServerName"] == SERVER
    assert server.inputs["artifactStoreUri"] == f"s3://{ARTIFACTS}/mlflow/"
    assert outputs["artifact_store_uri"] == f"s3://{ARTIFACTS}/mlflow/"
    assert server.inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
    assert server.inputs["automaticModelRegistration"] is False
    assert server.inputs["trackingServerSize"] == "Small"
    assert server.inputs["tags"] == TAGS
    role = plan.one("aws:iam/role:Role", f"{SERVER}-role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY
    # The server is created only once its role may reach the store.
    policy = plan.one(ROLE_POLICY, f"{SERVER}-policy")
    assert policy.urn in server.dependencies


def test_another_prefix_moves_the_store_and_the_role_with_it() -> None:
    other = tracking_plan(artifact_prefix="tracking/mlflow/")
    (server,) = other.of_type(SERVER_TYPE)
    assert server.inputs["artifactStoreUri"] == f"s3://{ARTIFACTS}/tracking/mlflow/"
    resources = {
        resource
        for statement in document(other, f"{SERVER}-policy")["Statement"]
        for resource in as_list(statement["Resource"])
    }
    assert f"arn:aws:s3:::{ARTIFACTS}/tracking/mlflow/*" in resources


def test_the_server_role_reaches_only_the_prefix_and_the_stack_key(plan: StackPlan) -> None:
    statements = document(plan, f"{SERVER}-policy")["Statement"]
    assert not plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert "managedPolicyArns" not in plan.one("aws:iam/role:Role", f"{SERVER}-role").inputs
    by_sid = {s["Sid"]: s for s in statements}
    assert set(by_sid) == {"ListArtifactPrefix", "ArtifactObjects", "StackKeyThroughS3"}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert not [a for a in as_list(statement["Action"]) if "*" in a], statement
        assert "*" not in as_list(statement["Resource"]), statement
    listing = by_sid["ListArtifactPrefix"]
    assert listing["Action"] == ["s3:ListBucket"]
    assert listing["Resource"] == [f"arn:aws:s3:::{ARTIFACTS}"]
    assert listing["Condition"]["StringLike"] == {"s3:prefix": ["mlflow/", "mlflow/*"]}
    objects = by_sid["ArtifactObjects"]
    assert objects["Resource"] == [f"arn:aws:s3:::{ARTIFACTS}/mlflow/*"]
    assert "s3:DeleteObject" not in objects["Action"]
    assert by_sid["StackKeyThroughS3"]["Resource"] == [KEY_ARN]
    assert by_sid["StackKeyThroughS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    }


def test_only_sagemaker_trusts_the_server_role_and_only_for_this_account(plan: StackPlan) -> None:
    (trust,) = document(plan, f"{SERVER}-role", "assumeRolePolicy")["Statement"]
    assert trust["Principal"] == {"Service": ["sagemaker.amazonaws.com"]}
    assert trust["Action"] == ["sts:AssumeRole"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def known_mlflow_actions() -> dict[str, list[str]]:
    """sagemaker-mlflow actions and their resource types, from parliament's copy of the SAR."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import parliament  # noqa: PLC0415

    data = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    (service,) = [s for s in data if s["prefix"] == "sagemaker-mlflow"]
    return {
        f"sagemaker-mlflow:{p['privilege']}": [r["resource_type"] for r in p["resource_types"]]
        for p in service["privileges"]
    }


def test_the_execution_grant_names_only_mlflow_calls_on_this_server(plan: StackPlan) -> None:
    (statement,) = document(plan, GRANT)["Statement"]
    assert statement["Resource"] == [ARN]
    assert statement["Action"] == list(MLFLOW_LOGGING_ACTIONS)
    known = known_mlflow_actions()
    for action in statement["Action"]:
        assert "*" not in action
        assert known.get(action) == ["mlflow-tracking-server*"], action
    assert "sagemaker-mlflow:AccessUI" not in statement["Action"]
    assert not [a for a in statement["Action"] if "Delete" in a]


def test_the_arn_is_the_one_aws_gives_the_server(outputs: dict[str, Any]) -> None:
    assert outputs["arn"] == ARN
    assert outputs["server_arn"] == ARN
    # The pattern MlflowConfig.MlflowResourceArn accepts (SageMaker API reference).
    assert re.fullmatch(
        r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:mlflow-[a-zA-Z-]*/.*", ARN
    )


def test_the_arn_and_the_grant_are_known_in_a_first_preview() -> None:
    seen: dict[str, Any] = {}
    preview = tracking_plan(first_preview=True, seen=seen)
    # What the provider reports is unknown until the server exists ...
    assert "server_arn" not in seen
    # ... but the grant (and the pipeline's MlflowConfig) only need the derived ARN.
    (statement,) = document(preview, GRANT)["Statement"]
    assert statement["Resource"] == [ARN]
    (server,) = preview.of_type(SERVER_TYPE)
    assert server.inputs["trackingServerName"] == SERVER


def test_parliament_finds_nothing_in_the_documents() -> None:
    from tests.security.test_parliament import ALLOWED, findings_of  # noqa: PLC0415

    found = findings_of({"component:experiment-tracking": tracking_plan()})
    assert not [f for f in found if not any(a.matches(f) for a in ALLOWED)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"tracking_server_name": "promote_code"}, "tracking_server_name"),
        ({"artifact_prefix": "mlflow"}, "artifact_prefix"),
        ({"artifact_prefix": "/mlflow/"}, "artifact_prefix"),
        ({"artifact_prefix": "ml*/"}, "artifact_prefix"),
        ({"experiment_name": "dev runs"}, "experiment_name"),
        ({"size": "Tiny"}, "size"),
        ({"mlflow_version": "latest"}, "mlflow_version"),
    ],
)
def test_bad_arguments_are_one_message_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^experiment tracking: {field} ") as error:
        args(**changes)
    assert "\n" not in str(error.value)


def test_the_grant_refuses_anything_but_a_tracking_server_arn() -> None:
    app = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-app/app-ABCD1234"
    with pytest.raises(ValueError, match="tracking server ARN"):
        tracking_use_statements(app)
    with pytest.raises(ValueError, match="tracking server ARN"):
        tracking_use_statements("*")
