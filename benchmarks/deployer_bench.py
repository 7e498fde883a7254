"""Benchmark: the deployer's time from an approval event to its UpdateEndpoint call.

    uv run python benchmarks/deployer_bench.py [--repeat N]

Against a moto server on 127.0.0.1, wired as the ModelDeployer component
wires AWS: an EventBridge rule with the deployer's pattern -> an SQS FIFO
queue (message group = endpoint) created with `ml.deployer.delivery`'s
attributes -> one receive (batch size 1, as the event source mapping) ->
`ml.deployer.handler.handle_invocation`. moto lacks UpdateEndpoint, so a thin
wrapper validates the request against botocore's service model, records the
time and answers as SageMaker does; everything before it is moto.

Each run approves a new version of an endpoint that serves the previous one;
the clock starts at PutEvents and stops when UpdateEndpoint is called. The
Lambda's own start-up, EventBridge's and the event source mapping's polling
delays in AWS are not part of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from typing import Any

import boto3
from botocore.validate import validate_parameters
from moto.server import ThreadedMotoServer

from ml.deployer import delivery
from ml.deployer.config import DeployerConfig, RolloutConfig
from ml.deployer.events import DETAIL_TYPE, SOURCE, deployer_event_pattern
from ml.deployer.handler import handle_invocation
from ml.deployer.logs import deployer_logger
from offline.aws import LOCAL_CREDENTIALS

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "bench-models"
ENDPOINT = "bench-endpoint"
BUCKET = f"bench-artifacts-{ACCOUNT}"
IMAGE = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/promote-code/training@sha256:" + "a" * 64


class UpdateEndpoint:
    """moto's SageMaker plus the UpdateEndpoint call it lacks, timestamped."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.called_at: float | None = None
        self._config: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def describe_endpoint(self, **kwargs: Any) -> Any:
        return {**self._client.describe_endpoint(**kwargs), **self._config}

    def update_endpoint(self, **kwargs: Any) -> dict[str, str]:
        self.called_at = time.perf_counter()
        shape = self._client.meta.service_model.operation_model("UpdateEndpoint").input_shape
        validate_parameters(kwargs, shape)
        # The rollout finishes at once, so the next run updates an InService endpoint.
        self._config = {"EndpointConfigName": kwargs["EndpointConfigName"]}
        return {"EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"}


def wire(sqs: Any, events: Any, config: DeployerConfig) -> tuple[str, str, str]:
    """The rule, the FIFO queue and its dead-letter queue, as the component sets them."""
    settings = delivery.QueueSettings.for_rollout(config.rollout)
    dlq = sqs.create_queue(
        QueueName="bench-dlq.fifo", Attributes=settings.dead_letter_attributes("alias/bench")
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    queue = sqs.create_queue(
        QueueName="bench.fifo",
        Attributes=settings.queue_attributes(dlq_arn["Attributes"]["QueueArn"], "alias/bench"),
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
    queue_arn_value = queue_arn["Attributes"]["QueueArn"]
    events.put_rule(Name="bench", EventPattern=json.dumps(deployer_event_pattern(GROUP)))
    events.put_targets(
        Rule="bench",
        Targets=[
            {"Id": "q", "Arn": queue_arn_value, "SqsParameters": {"MessageGroupId": ENDPOINT}}
        ],
    )
    return queue, queue_arn_value, dlq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    repeat = parser.parse_args().repeat
    # The decision lines (one per approval) would drown the figure; failures still print.
    deployer_logger().setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        session = boto3.session.Session(region_name=REGION, **LOCAL_CREDENTIALS)

        def client(service: str) -> Any:
            return session.client(service, endpoint_url=url)

        sm, s3, sqs, events = client("sagemaker"), client("s3"), client("sqs"), client("events")
        sagemaker = UpdateEndpoint(sm)
        config = DeployerConfig(
            endpoint_name=ENDPOINT,
            model_package_group_name=GROUP,
            execution_role_arn=f"arn:aws:iam::{ACCOUNT}:role/bench-execution",
            data_capture_s3_uri=f"s3://{BUCKET}/data-capture",
            instance_count=2,
            rollout=RolloutConfig(mode="canary", canary_percent=10),
            rollback_alarm_names=(f"{ENDPOINT}-invocation-5xx",),
        )
        queue, queue_arn_value, dlq = wire(sqs, events, config)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        sm.create_model_package_group(ModelPackageGroupName=GROUP)
        env = {
            **config.to_env(),
            delivery.QUEUE_URL_ENV: queue,
            delivery.DEAD_LETTER_QUEUE_URL_ENV: dlq,
        }
        clients = {"sagemaker": sagemaker, "s3": s3, "sqs": sqs}

        def approve_and_deliver(version: int) -> float:
            key = f"models/{version}/model.tar.gz"
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"model")
            arn = sm.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus="PendingManualApproval",
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
            sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
            detail = {
                "ModelPackageGroupName": GROUP,
                "ModelPackageVersion": version,
                "ModelPackageArn": arn,
                "ModelApprovalStatus": "Approved",
            }
            sagemaker.called_at = None
            started = time.perf_counter()
            events.put_events(
                Entries=[
                    {"Source": SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}
                ]
            )
            (message,) = sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=1, AttributeNames=["All"]
            )["Messages"]
            record = {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message["Attributes"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn_value,
            }
            response = handle_invocation({"Records": [record]}, env, clients.__getitem__)
            if response["batchItemFailures"]:
                raise SystemExit(f"version {version} was not deployed: {response}")
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            return (sagemaker.called_at or float("nan")) - started

        approve_and_deliver(1)  # the first deployment creates the endpoint
        if sagemaker.called_at is not None:
            raise SystemExit("the first deployment should create, not update")
        timings = [approve_and_deliver(version) for version in range(2, repeat + 2)]
    finally:
        server.stop()
    if any(math.isnan(t) for t in timings):  # NaN: UpdateEndpoint was not called
        raise SystemExit("UpdateEndpoint was not called for every approval")
    print(
        f"approval event -> UpdateEndpoint call (moto, {repeat} runs): "
        f"median {statistics.median(timings) * 1000:.0f} ms, "
        f"min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
