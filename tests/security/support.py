"""Components built on their own under the offline plan's mocks, captured like a stack plan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pulumi
from pulumi.runtime import settings as pulumi_settings

from infra.components.access_logs import AccessLogBucket, AccessLogBucketArgs
from infra.components.private_network import FlowLogsArgs, PrivateNetwork, PrivateNetworkArgs
from infra.components.secure_bucket import ARTIFACTS_LIFECYCLE_RULES, SecureBucket, SecureBucketArgs
from offline.plan.capture import StackPlan
from offline.plan.harness import PROJECT, CapturingMonitor
from offline.plan.mocks import OfflineMocks

ACCOUNT = "222222222222"
REGION = "eu-west-1"
PREFIX = "promote-code-dev"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/608c9bf9-a73a-53e5-80ff-1327559b80c9"
BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/{PREFIX}-workload-boundary"
TAGS = {"project": "promote-code", "environment": "dev", "managed-by": "pulumi"}
LOGS = f"{PREFIX}-access-logs-{ACCOUNT}"
DATA = f"{PREFIX}-data-{ACCOUNT}"
ARTIFACTS = f"{PREFIX}-artifacts-{ACCOUNT}"
NETWORK = f"{PREFIX}-network"
FLOW_LOGS = FlowLogsArgs(account=ACCOUNT, kms_key_arn=KEY_ARN, permissions_boundary=BOUNDARY)


def capture(declare: Callable[[], None], *, stack: str = "dev") -> StackPlan:
    """Run `declare` as a Pulumi program under the offline mocks; return what it registered."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi_settings.ROOT.set(None)
    monitor = CapturingMonitor(OfflineMocks(account=ACCOUNT, region=REGION))
    pulumi.runtime.set_mocks(
        monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor
    )

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> None:
        declare()

    program()
    resources = tuple(sorted(monitor.captured, key=lambda r: r.urn))
    return StackPlan(PROJECT, stack, resources, {})


def stack_buckets() -> StackPlan:
    """The log bucket and the two buckets that log into it, wired as an environment stack would."""

    def declare() -> None:
        logs = AccessLogBucket(
            f"{PREFIX}-access-logs",
            AccessLogBucketArgs(
                bucket_name=LOGS, account=ACCOUNT, source_buckets=[DATA, ARTIFACTS], tags=TAGS
            ),
        )
        SecureBucket(
            f"{PREFIX}-data", SecureBucketArgs(DATA, KEY_ARN, TAGS, access_log=logs.target(DATA))
        )
        SecureBucket(
            f"{PREFIX}-artifacts",
            SecureBucketArgs(
                ARTIFACTS,
                KEY_ARN,
                TAGS,
                access_log=logs.target(ARTIFACTS),
                lifecycle_rules=ARTIFACTS_LIFECYCLE_RULES,
            ),
        )

    return capture(declare)


def network(flow_logs: FlowLogsArgs | None) -> StackPlan:
    """The dev VPC as the dev stack configures it (two zones, no NAT gateway)."""

    def declare() -> None:
        PrivateNetwork(
            NETWORK,
            PrivateNetworkArgs(
                cidr="10.42.0.0/16",
                availability_zones=[f"{REGION}a", f"{REGION}b"],
                nat_gateway=False,
                region=REGION,
                tags=TAGS,
                flow_logs=flow_logs,
            ),
        )

    return capture(declare)
