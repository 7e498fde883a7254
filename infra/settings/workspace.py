"""What an environment offers beyond the pipeline: the private network, the Studio domain
for notebooks, and GPU service-quota requests."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, model_validator

from infra.settings.base import StrictModel, shown
from ml import limits


class NetworkSettings(StrictModel):
    enabled: bool = Field(default=False, description="Create a VPC with private subnets.")
    cidr: str = Field(default="10.42.0.0/16", description="VPC CIDR block.")
    nat_gateway: bool = Field(
        default=False, description="Add a NAT gateway; without one, VPC endpoints give access."
    )

    @model_validator(mode="after")
    def _cidr(self) -> NetworkSettings:
        try:
            network = ipaddress.IPv4Network(self.cidr)
        except ValueError:
            network = None
        if network is None or not 16 <= network.prefixlen <= 24:
            raise ValueError(
                f"cidr must be an IPv4 network block from /16 to /24 such as 10.42.0.0/16, "
                f"got {shown(self.cidr)}"
            )
        return self


class StudioSettings(StrictModel):
    enabled: bool = Field(default=False, description="Create a SageMaker Studio domain.")
    user_profiles: tuple[str, ...] = Field(
        default=("data-scientist",), description="Studio user profiles to create."
    )


class GpuQuotaRequest(StrictModel):
    instance_type: str = Field(description="SageMaker instance type, e.g. ml.g4dn.xlarge.")
    usage: Literal["training job", "processing job", "endpoint"] = Field(
        description="Which SageMaker quota: training job, processing job or endpoint usage."
    )
    value: int = Field(ge=1, le=100, description="Requested number of instances.")

    @model_validator(mode="after")
    def _instance(self) -> GpuQuotaRequest:
        problem = limits.instance_type_problem(
            "instance_type", self.instance_type, "ml.g4dn.xlarge"
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def quota_name(self) -> str:
        return f"{self.instance_type} for {self.usage} usage"
