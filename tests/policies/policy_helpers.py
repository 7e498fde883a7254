"""Builders of hand-made plans for the policy tests (imported by the test modules)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from offline.plan.capture import CapturedResource, StackPlan

OPS = "111111111111"
REGION = "eu-west-1"
DIGEST = "0123456789abcdef" * 4
REGISTRY = f"{OPS}.dkr.ecr.{REGION}.amazonaws.com"
TRAINING = f"{REGISTRY}/promote-code/training@sha256:{DIGEST}"
DEPLOYER = f"{REGISTRY}/promote-code/deployer@sha256:{DIGEST}"
REPOSITORY = "my-org/promote-code"
PROD_ACCOUNT = "444444444444"
PACKAGE = f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:model-package/promote-code/3"
GITHUB = "token.actions.githubusercontent.com"

PROD_IMAGE_CONFIG: dict[str, object] = {
    "opsAccountId": OPS,
    "region": REGION,
    "allowedRepositories": ["promote-code/training", "promote-code/deployer"],
    "unknownIsViolation": True,
    "stackAccountId": PROD_ACCOUNT,
}


def tags_for(stack: str) -> dict[str, str]:
    return {"project": "promote-code", "environment": stack, "managed-by": "pulumi"}


def urn(stack: str, type_: str, name: str) -> str:
    return f"urn:pulumi:{stack}::promote-code::{type_}::{name}"


def resource(
    type_: str,
    name: str,
    inputs: Mapping[str, Any],
    *,
    stack: str = "prod",
    dependencies: tuple[str, ...] = (),
    provider: str | None = None,
) -> CapturedResource:
    return CapturedResource(
        urn=urn(stack, type_, name),
        type=type_,
        name=name,
        parent=None,
        custom=True,
        provider=provider,
        inputs=dict(inputs),
        dependencies=dependencies,
    )


def trust_policy(
    sub: object = f"repo:{REPOSITORY}:ref:refs/heads/main",
    *,
    aud: object = "sts.amazonaws.com",
    operator: str = "StringEquals",
    sub_operator: str | None = None,
    principal: object = None,
) -> str:
    conditions: dict[str, dict[str, object]] = {operator: {f"{GITHUB}:aud": aud}}
    conditions.setdefault(sub_operator or operator, {})[f"{GITHUB}:sub"] = sub
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Principal": principal
                    or {"Federated": f"arn:aws:iam::{OPS}:oidc-provider/{GITHUB}"},
                    "Condition": conditions,
                }
            ],
        }
    )


def policy_document(*statements: Mapping[str, object]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def hardened_bucket(stack: str, name: str, bucket_name: str) -> list[CapturedResource]:
    """A bucket with all four companion resources of infra.components.secure_bucket."""
    bucket = resource(
        "aws:s3/bucket:Bucket", name, {"bucket": bucket_name, "tags": tags_for(stack)}, stack=stack
    )
    deps = (bucket.urn,)
    arn = f"arn:aws:s3:::{bucket_name}"
    return [
        bucket,
        resource(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            f"{name}-pab",
            {
                "bucket": bucket_name,
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketVersioning:BucketVersioning",
            f"{name}-versioning",
            {"bucket": bucket_name, "versioningConfiguration": {"status": "Enabled"}},
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            f"{name}-sse",
            {
                "bucket": bucket_name,
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": "arn:aws:kms:eu-west-1:444444444444:key/k",
                        },
                        "bucketKeyEnabled": True,
                    }
                ],
            },
            stack=stack,
            dependencies=deps,
        ),
        resource(
            "aws:s3/bucketPolicy:BucketPolicy",
            f"{name}-tls-only",
            {
                "bucket": bucket_name,
                "policy": policy_document(
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": {"AWS": ["*"]},
                        "Action": ["s3:*"],
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ),
            },
            stack=stack,
            dependencies=deps,
        ),
    ]


def plan_of(stack: str, resources: list[CapturedResource]) -> StackPlan:
    return StackPlan(project="promote-code", stack=stack, resources=tuple(resources))


Mutation = Callable[[list[CapturedResource]], list[CapturedResource]]


def set_inputs(name: str, **inputs: Any) -> Mutation:
    """A change of the resource called `name`: these inputs set (or replaced)."""

    def change(resources: list[CapturedResource]) -> list[CapturedResource]:
        return [
            CapturedResource(**{**r.__dict__, "inputs": {**r.inputs, **inputs}})
            if r.name == name
            else r
            for r in resources
        ]

    return change


def add(new: CapturedResource) -> Mutation:
    return lambda resources: [*resources, new]


def good_resources(stack: str) -> list[CapturedResource]:
    """One compliant resource of every kind the rules look at."""
    tags = tags_for(stack)
    provider_urn = f"urn:pulumi:{stack}::promote-code::pulumi:providers:aws::account"
    provider = resource(
        "pulumi:providers:aws",
        "account",
        {"region": "eu-west-1", "defaultTags": json.dumps({"tags": tags})},
        stack=stack,
    )
    definition = json.dumps(
        {
            "Steps": [
                {
                    "Name": "Train",
                    "Arguments": {"AlgorithmSpecification": {"TrainingImage": TRAINING}},
                }
            ]
        }
    )
    return [
        provider,
        resource(
            "aws:lambda/function:Function",
            "deployer",
            {"packageType": "Image", "imageUri": DEPLOYER, "tags": tags},
            stack=stack,
        ),
        resource(
            "aws:sagemaker/model:Model",
            "model",
            {"primaryContainer": {"image": TRAINING}},
            stack=stack,
            provider=f"{provider_urn}::provider-id",
        ),
        resource(
            "aws:sagemaker/pipeline:Pipeline",
            "pipeline",
            {"pipelineDefinition": definition, "tags": tags},
            stack=stack,
        ),
        resource(
            "aws:ecr/repository:Repository",
            "training",
            {
                "name": "promote-code/training",
                "imageTagMutability": "IMMUTABLE",
                "imageScanningConfiguration": {"scanOnPush": True},
                "tags": tags,
            },
            stack=stack,
        ),
        resource(
            "aws:ecr/repositoryPolicy:RepositoryPolicy",
            "training-policy",
            {
                "policy": policy_document(
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ["arn:aws:iam::444444444444:root"]},
                        "Action": ["ecr:BatchGetImage"],
                    }
                )
            },
            stack=stack,
        ),
        resource(
            "aws:iam/role:Role",
            "deploy",
            {
                "name": "promote-code-github-deploy",
                "assumeRolePolicy": trust_policy(f"repo:{REPOSITORY}:environment:prod"),
                "tags": tags,
            },
            stack=stack,
        ),
        resource(
            "aws:iam/rolePolicy:RolePolicy",
            "deploy-policy",
            {
                "policy": policy_document(
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
                )
            },
            stack=stack,
        ),
        resource(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "endpoint",
            {
                "kmsKeyArn": "arn:aws:kms:eu-west-1:444444444444:key/k",
                "dataCaptureConfig": {"enableCapture": True, "destinationS3Uri": "s3://b/capture"},
                "productionVariants": [{"variantName": "AllTraffic", "initialInstanceCount": 2}],
                "tags": tags,
            },
            stack=stack,
        ),
        *hardened_bucket(stack, "data", f"promote-code-{stack}-data"),
        *([promotion_gate()] if stack == "prod" else []),
    ]


COMMIT = "c0ffee" + "0" * 34


def promotion_gate(**changes: object) -> CapturedResource:
    """The record prod's promotion gate registers: staging runs and verified COMMIT."""
    inputs = {
        "sourceStack": "organization/promote-code/staging",
        "commit": COMMIT,
        "sourceCommit": COMMIT,
        "verifiedCommit": COMMIT,
        "images": {"training": TRAINING, "deployer": DEPLOYER},
        **changes,
    }
    return resource("promote:promotion:Gate", "promotion-gate", inputs, stack="prod")


TEST_PACK_MAIN = """
import os
import signal
import time

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy


def validate(args, report_violation):
    marker = os.environ.get("TEST_PACK_MARKER")
    if marker:
        open(marker, "w").close()
{body}


# Quick to stop: a validator still sleeping would otherwise hold the exit.
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
PolicyPack(
    name="test-pack",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(name="test-rule", description="A test rule.", validate=validate)
    ],
)
"""

VALIDATORS = {
    "pass": "    pass",
    "slow": "    time.sleep(60)",
    "crash": "    raise RuntimeError('boom in the validator')",
    "violate": "    report_violation('always wrong')",
}


def write_pack(directory: Path, validator: str = "pass", *, main: str | None = None) -> Path:
    """A policy pack of one rule, `test-rule`, whose validator does `validator`.

    `main` replaces the whole `__main__.py` (a pack that does not start properly).
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "PulumiPolicy.yaml").write_text("runtime: python\n")
    text = main if main is not None else TEST_PACK_MAIN.format(body=VALIDATORS[validator])
    (directory / "__main__.py").write_text(text)
    return directory


def write_config(directory: Path, stack: str, config: object) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stack}.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    return path


def one_resource_plan(stack: str = "prod") -> StackPlan:
    bucket = resource("aws:s3/bucket:Bucket", "data", {"bucket": "b"}, stack=stack)
    return plan_of(stack, [bucket])


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie nobody reaps has stopped running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int, *, containing: str = "") -> list[int]:
    """Running children of `pid` whose command line contains `containing`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z" and containing in command:
            found.append(int(entry.name))
    return found
