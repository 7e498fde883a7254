"""The offline state machine interpreter on a small generic definition (moto S3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from offline.state_machine import StateMachine
from offline.state_machine_check import DefinitionError

REGION = "eu-west-1"

DEFINITION: dict[str, Any] = {
    "QueryLanguage": "JSONata",
    "StartAt": "List",
    "States": {
        "List": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:listObjectsV2",
            "Arguments": {"Bucket": "{% $states.input.bucket %}", "Prefix": "in/"},
            "Assign": {
                "found": "{% $count($states.result.Contents) %}",
                "seen": "{% $found %}",
                "bucket": "{% $states.input.bucket %}",
            },
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
            "Next": "Decide",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [
                {"Condition": "{% $found > 2 %}", "Next": "Many"},
                {"Condition": "{% $found > 0 %}", "Next": "Copy"},
            ],
            "Default": "Empty",
        },
        "Copy": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:s3:putObject",
            "Arguments": {
                # The input here is List's output (its result), so the bucket is a variable.
                "Bucket": "{% $bucket %}",
                "Key": "{% 'out/' & $string($found) & '-' & $states.context.Execution.Name %}",
                "Body": "copied",
            },
            "Output": "{% {'key': 'out/' & $string($found), 'etag': $states.result.ETag} %}",
            "End": True,
        },
        "Many": {"Type": "Fail", "Error": "TooMany", "Cause": "{% $string($found) & ' objects' %}"},
        "Empty": {"Type": "Succeed"},
    },
}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="bkt", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def clients(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def test_each_choice_branch_and_the_task_calls(s3: Any) -> None:
    machine = StateMachine(DEFINITION)
    empty = machine.run({"bucket": "bkt"}, clients)
    assert (empty.status, empty.path) == ("SUCCEEDED", ("List", "Decide", "Empty"))
    # Assign sees the variables as they were on entry: `seen` is not yet the new count.
    assert empty.variables == {"found": 0, "seen": None, "bucket": "bkt"}

    s3.put_object(Bucket="bkt", Key="in/a", Body=b"a")
    copied = machine.run({"bucket": "bkt"}, clients, name="run-1")
    assert copied.path == ("List", "Decide", "Copy")
    assert copied.output["key"] == "out/1" and copied.output["etag"]
    assert [(c.service, c.action) for c in copied.calls] == [
        ("s3", "listObjectsV2"),
        ("s3", "putObject"),
    ]
    assert s3.get_object(Bucket="bkt", Key="out/1-run-1")["Body"].read() == b"copied"

    for key in ("in/b", "in/c"):
        s3.put_object(Bucket="bkt", Key=key, Body=b"x")
    failed = machine.run({"bucket": "bkt"}, clients)
    assert (failed.status, failed.error, failed.cause) == ("FAILED", "TooMany", "3 objects")


def test_a_failed_call_fails_the_execution_with_the_service_error(s3: Any) -> None:
    failed = StateMachine(DEFINITION).run({"bucket": "no-such-bucket"}, clients)
    assert failed.status == "FAILED" and failed.final_state == "List"
    assert failed.error == "S3.NoSuchBucket"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"QueryLanguage": "JSONPath"}, "QueryLanguage must be JSONata"),
        ({"TimeoutSeconds": 5}, "unsupported top-level field(s) ['TimeoutSeconds']"),
        ({"StartAt": "Nowhere"}, "StartAt 'Nowhere' is not a state"),
        (
            {
                "States": {
                    **DEFINITION["States"],
                    "Wait": {"Type": "Wait", "Seconds": 1, "End": True},
                }
            },
            "state 'Wait': Type 'Wait' is not supported",
        ),
        (
            {"States": {**DEFINITION["States"], "Empty": {"Type": "Succeed", "Catch": []}}},
            "state 'Empty': unsupported field(s) ['Catch']",
        ),
        (
            {
                "States": {
                    **DEFINITION["States"],
                    "Copy": {
                        **DEFINITION["States"]["Copy"],
                        "Resource": "arn:aws:states:::lambda:invoke",
                    },
                }
            },
            "not an aws-sdk integration",
        ),
        (
            {
                "States": {
                    **DEFINITION["States"],
                    "Decide": {
                        **DEFINITION["States"]["Decide"],
                        "Choices": [{"Variable": "$.x", "Next": "Empty"}],
                    },
                }
            },
            "unsupported field(s) ['Variable']",
        ),
        (
            {"States": {**DEFINITION["States"], "Many": {"Type": "Fail", "Cause": "{% 1 + %}"}}},
            "state 'Many': cannot parse",
        ),
    ],
)
def test_what_is_not_interpreted_is_refused_up_front(change: dict[str, Any], message: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        StateMachine({**DEFINITION, **change})
    assert message in str(raised.value)
