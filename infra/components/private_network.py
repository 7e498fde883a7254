"""A VPC with private subnets for SageMaker Studio and jobs.

Without a NAT gateway the subnets reach AWS only through VPC endpoints (S3
gateway plus interface endpoints for the APIs Studio and jobs call), so data
never crosses the internet.

The VPC's default security group is stripped of every rule (Security Hub EC2.2):
nothing here uses it, and anything launched into it by mistake gets no network.
Given `FlowLogsArgs`, all traffic is recorded as VPC flow logs (EC2.6) in a
CloudWatch log group encrypted with the stack key, written by a role that the
flow-logs service can assume only for this account's flow logs and that can
write only to that log group.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.iam import Statement, policy_json

FLOW_LOG_RETENTION_DAYS = 365
"""A year, what Security Hub CloudWatch.16 asks of log groups."""
FLOW_LOGS_SERVICE = "vpc-flow-logs.amazonaws.com"

INTERFACE_ENDPOINTS = (
    "sagemaker.api",
    "sagemaker.runtime",
    "sts",
    "logs",
    "monitoring",
    "kms",
    "ecr.api",
    "ecr.dkr",
)


@dataclass(frozen=True)
class FlowLogsArgs:
    account: str
    kms_key_arn: pulumi.Input[str]
    """The stack key; its key policy must let CloudWatch Logs use it (infra/key_policy.py)."""
    permissions_boundary: str | None = None
    retention_days: int = FLOW_LOG_RETENTION_DAYS


@dataclass(frozen=True)
class PrivateNetworkArgs:
    cidr: str
    availability_zones: Sequence[str]
    nat_gateway: bool
    region: str
    tags: Mapping[str, str]
    flow_logs: FlowLogsArgs | None = None


def flow_log_group_name(network: str) -> str:
    return f"/aws/vpc-flow-logs/{network}"


def flow_logs_trust(account: str, region: str) -> pulumi.Output[str]:
    """Assumable by VPC Flow Logs for this account's flow logs only (confused deputy)."""
    return policy_json(
        Statement(
            sid="AssumedByFlowLogsOfThisAccount",
            actions=["sts:AssumeRole"],
            principals={"Service": [FLOW_LOGS_SERVICE]},
            conditions={
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:{region}:{account}:vpc-flow-log/*"},
            },
        )
    )


def flow_logs_statements(log_group_arn: str) -> list[Statement]:
    """What AWS documents the flow-logs role needs, on its own log group only."""
    return [
        Statement(
            sid="WriteFlowLogStreams",
            actions=["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=[log_group_arn, f"{log_group_arn}:log-stream:*"],
        ),
        # DescribeLogGroups has no resource form.
        Statement(sid="FindLogGroup", actions=["logs:DescribeLogGroups"], resources=["*"]),
    ]


def subnet_cidrs(cidr: str, count: int) -> list[str]:
    """Split the VPC block into `count` equal private subnets plus one public (NAT) subnet."""
    network = ipaddress.ip_network(cidr)
    subnets = list(network.subnets(prefixlen_diff=2))
    return [str(s) for s in subnets[: count + 1]]


class PrivateNetwork(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    private_subnets: list[aws.ec2.Subnet]
    workload_security_group: aws.ec2.SecurityGroup
    flow_log: aws.ec2.FlowLog | None

    def __init__(
        self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("promote:aws:PrivateNetwork", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        azs = list(args.availability_zones)[:2]
        cidrs = subnet_cidrs(args.cidr, len(azs))

        def tags(role: str) -> dict[str, str]:
            return {**args.tags, "Name": f"{name}-{role}"}

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=tags("vpc"),
            opts=child,
        )
        # Adopting the default group with no ingress or egress removes all of its rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-closed", vpc_id=self.vpc.id, tags=tags("default-closed"), opts=child
        )
        self.flow_log = (
            None
            if args.flow_logs is None
            else self._flow_logs(name, args.flow_logs, region=args.region, tags=tags("flow-logs"))
        )
        private_routes = aws.ec2.RouteTable(
            f"{name}-private-routes", vpc_id=self.vpc.id, tags=tags("private"), opts=child
        )
        self.private_subnets = []
        for index, az in enumerate(azs):
            subnet = aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidrs[index],
                availability_zone=az,
                map_public_ip_on_launch=False,
                tags=tags(f"private-{az}"),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-routes",
                subnet_id=subnet.id,
                route_table_id=private_routes.id,
                opts=child,
            )
            self.private_subnets.append(subnet)

        self.workload_security_group = aws.ec2.SecurityGroup(
            f"{name}-workloads",
            vpc_id=self.vpc.id,
            description="SageMaker Studio and jobs; HTTPS inside the VPC only",
            ingress=[
                {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_blocks": [args.cidr]},
                {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True},
            ],
            egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
            tags=tags("workloads"),
            opts=child,
        )
        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_routes.id],
            tags=tags("s3"),
            opts=child,
        )
        if args.nat_gateway:
            self._nat(
                name,
                cidr=cidrs[-1],
                az=azs[0],
                private_routes=private_routes,
                tags=tags,
                child=child,
            )
        else:
            for service in INTERFACE_ENDPOINTS:
                aws.ec2.VpcEndpoint(
                    f"{name}-{service.replace('.', '-')}",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{args.region}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[s.id for s in self.private_subnets],
                    security_group_ids=[self.workload_security_group.id],
                    tags=tags(service),
                    opts=child,
                )
        self.register_outputs(
            {"vpc_id": self.vpc.id, "private_subnet_ids": [s.id for s in self.private_subnets]}
        )

    def _flow_logs(
        self, name: str, args: FlowLogsArgs, *, region: str, tags: Mapping[str, str]
    ) -> aws.ec2.FlowLog:
        child = pulumi.ResourceOptions(parent=self)
        group_name = flow_log_group_name(name)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            retention_in_days=args.retention_days,
            kms_key_id=args.kms_key_arn,
            tags=dict(tags),
            opts=child,
        )
        # From the name (what LogGroup.arn will be), so policy and destination are known
        # at preview time.
        group_arn = f"arn:aws:logs:{region}:{args.account}:log-group:{group_name}"
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            description=f"VPC flow logs of {name} into {group_name}",
            assume_role_policy=flow_logs_trust(args.account, region),
            permissions_boundary=args.permissions_boundary,
            tags=dict(tags),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.name,
            policy=policy_json(*flow_logs_statements(group_arn)),
            opts=child,
        )
        return aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=group_arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            tags=dict(tags),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, policy]),
        )

    def _nat(
        self,
        name: str,
        *,
        cidr: str,
        az: str,
        private_routes: aws.ec2.RouteTable,
        tags: Callable[[str], dict[str, str]],
        child: pulumi.ResourceOptions,
    ) -> None:
        gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags=tags("igw"), opts=child
        )
        public = aws.ec2.Subnet(
            f"{name}-public",
            vpc_id=self.vpc.id,
            cidr_block=cidr,
            availability_zone=az,
            tags=tags("public"),
            opts=child,
        )
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-routes",
            vpc_id=self.vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            tags=tags("public"),
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-routes-assoc",
            subnet_id=public.id,
            route_table_id=public_routes.id,
            opts=child,
        )
        address = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", tags=tags("nat"), opts=child)
        nat = aws.ec2.NatGateway(
            f"{name}-nat",
            subnet_id=public.id,
            allocation_id=address.allocation_id,
            tags=tags("nat"),
            opts=child,
        )
        aws.ec2.Route(
            f"{name}-private-default",
            route_table_id=private_routes.id,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.id,
            opts=child,
        )
