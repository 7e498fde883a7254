"""A VPC with private subnets for SageMaker Studio and jobs.

Without a NAT gateway the subnets reach AWS only through VPC endpoints (S3
gateway plus interface endpoints for the APIs Studio and jobs call), so data
never crosses the internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

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
class PrivateNetworkArgs:
    cidr: str
    availability_zones: Sequence[str]
    nat_gateway: bool
    region: str
    tags: Mapping[str, str]


def subnet_cidrs(cidr: str, count: int) -> list[str]:
    """Split the VPC block into `count` equal private subnets plus one public (NAT) subnet."""
    network = ipaddress.ip_network(cidr)
    subnets = list(network.subnets(prefixlen_diff=2))
    return [str(s) for s in subnets[: count + 1]]


class PrivateNetwork(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    private_subnets: list[aws.ec2.Subnet]
    workload_security_group: aws.ec2.SecurityGroup

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
