"""Where moto's SageMaker differs from AWS, and a Lambda SQS event source mapping stand-in.

`SageMakerEmulator` wraps a moto client: Create* calls refuse a name that
exists, as AWS does ("Cannot create already existing ..."; moto overwrites),
atomically, so concurrent deployments race as they would in AWS; and
UpdateEndpoint, which moto lacks, is validated against botocore's service
model, recorded, and puts the endpoint in `Updating` until `finish_rollout()`.

`Poller` plays the event source mapping: batch size 1, partial batch
responses, messages deleted only when the handler did not report them. It
also holds back a message whose group has one in flight, as SQS FIFO queues
do ("no more messages for the same message group ID are returned unless you
delete the message or it becomes visible"): moto forgets the in-flight
message once its visibility is changed, which the handler's back-off does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from botocore.validate import validate_parameters


def _duplicate(kind: str, name: str, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {
                "Code": "ValidationException",
                "Message": f'Cannot create already existing {kind} "{name}".',
            },
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


class SageMakerEmulator:
    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.meta = client.meta
        self.updates: list[dict[str, Any]] = []
        self._endpoint_state: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _create_once(
        self, kind: str, name: str, exists: Callable[[], object], create: Callable[[], Any]
    ) -> Any:
        with self._lock:
            try:
                exists()
            except ClientError:
                return create()
            raise _duplicate(kind, name, f"Create{kind.title().replace(' ', '')}")

    def create_model(self, **kwargs: Any) -> Any:
        name = kwargs["ModelName"]
        return self._create_once(
            "model",
            name,
            lambda: self._client.describe_model(ModelName=name),
            lambda: self._client.create_model(**kwargs),
        )

    def create_endpoint_config(self, **kwargs: Any) -> Any:
        name = kwargs["EndpointConfigName"]
        return self._create_once(
            "endpoint configuration",
            name,
            lambda: self._client.describe_endpoint_config(EndpointConfigName=name),
            lambda: self._client.create_endpoint_config(**kwargs),
        )

    def create_endpoint(self, **kwargs: Any) -> Any:
        name = kwargs["EndpointName"]
        return self._create_once(
            "endpoint",
            name,
            lambda: self._client.describe_endpoint(EndpointName=name),
            lambda: self._client.create_endpoint(**kwargs),
        )

    def describe_endpoint(self, **kwargs: Any) -> Any:
        response = dict(self._client.describe_endpoint(**kwargs))
        response.update(self._endpoint_state.get(kwargs["EndpointName"], {}))
        return response

    def update_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        shape = self._client.meta.service_model.operation_model("UpdateEndpoint").input_shape
        validate_parameters(kwargs, shape)  # raises ParamValidationError like a real client
        name = kwargs["EndpointName"]
        with self._lock:
            if self.describe_endpoint(EndpointName=name)["EndpointStatus"] != "InService":
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ValidationException",
                            "Message": f"Cannot update in-progress endpoint {name}",
                        },
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "UpdateEndpoint",
                )
            self.updates.append(kwargs)
            self._endpoint_state[name] = {
                **self._endpoint_state.get(name, {}),
                "EndpointStatus": "Updating",
                "PendingDeploymentSummary": {"EndpointConfigName": kwargs["EndpointConfigName"]},
            }
        return {"EndpointArn": f"arn:aws:sagemaker:eu-west-1:123456789012:endpoint/{name}"}

    def finish_rollout(self, name: str) -> None:
        state = self._endpoint_state[name]
        pending = state.pop("PendingDeploymentSummary")["EndpointConfigName"]
        state.update(EndpointStatus="InService", EndpointConfigName=pending)


@dataclass
class Poller:
    """Receives one message at a time, as an event source mapping with batch size 1."""

    sqs: Any
    queue_url: str
    queue_arn: str
    handler: Callable[[dict[str, Any]], dict[str, Any]]
    in_flight: dict[str, str] = field(default_factory=dict)
    """Receipt handle of the message in flight, by message group."""

    def poll_once(self) -> str | None:
        """Deliver one message; its id, or None if the queue offered none."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=1, AttributeNames=["All"]
        )
        messages = response.get("Messages", [])
        if not messages:
            return None
        (message,) = messages
        group = message["Attributes"].get("MessageGroupId", "")
        if group in self.in_flight:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
            return None
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message["Attributes"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
        }
        failed = {
            f["itemIdentifier"] for f in self.handler({"Records": [record]})["batchItemFailures"]
        }
        if message["MessageId"] in failed:
            self.in_flight[group] = message["ReceiptHandle"]
        else:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return str(message["MessageId"])

    def time_passes(self) -> None:
        """Every message waiting out its back-off becomes visible again."""
        for handle in self.in_flight.values():
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=handle, VisibilityTimeout=0
            )
        self.in_flight.clear()

    def drain(self, limit: int = 20) -> int:
        delivered = 0
        while delivered < limit and self.poll_once() is not None:
            delivered += 1
        return delivered
