"""Pulumi mocks that answer like AWS would, for the offline plan and the tests.

Outputs are realistic (ARNs in the right account and region, ECR URLs, image
digests) and derived only from names, so two runs give identical plans. Every
invoke the program uses has an answer; any other invoke raises instead of
silently returning `{}`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

PROVIDER_TYPE = "pulumi:providers:aws"
STACK_REFERENCE_TYPE = "pulumi:pulumi:StackReference"


class UnmockedInvokeError(Exception):
    pass


def digest_for(repository: str, tag: str) -> str:
    """The image digest the offline registry reports for repository:tag."""
    return "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()


def _short(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class OfflineMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and invokes for one stack."""

    def __init__(
        self,
        *,
        account: str,
        region: str,
        unbuilt_tags: frozenset[str] = frozenset(),
        stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        first_preview: bool = False,
    ) -> None:
        """`stack_outputs`: outputs of other stacks by stack name, for StackReferences.

        `first_preview`: answer as the engine does when nothing exists yet: a resource's
        outputs are only its inputs, and its ID and computed outputs (ARNs) are unknown.
        """
        self.first_preview = first_preview
        self.account = account
        self.region = region
        self.unbuilt_tags = unbuilt_tags
        self.stack_outputs = dict(stack_outputs or {})
        self._provider_accounts: dict[str, str] = {}
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:ecr/getImage:getImage": self._get_image,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._auth_token,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:servicequotas/getServiceQuota:getServiceQuota": self._quota,
            "aws:index/getCallerIdentity:getCallerIdentity": self._caller,
            "aws:kms/getKey:getKey": self._kms_key,
        }

    # invokes -----------------------------------------------------------------
    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        handler = self._invokes.get(args.token)
        if handler is None:
            raise UnmockedInvokeError(
                f"the offline mocks have no answer for invoke {args.token}; add one to "
                "offline/plan/mocks.py"
            )
        try:
            return handler(dict(args.args)), []
        except LookupError as error:
            # Reported as an invoke failure, the way the engine reports a provider error.
            return {}, [("", str(error))]

    def _get_image(self, args: dict[str, Any]) -> dict[str, Any]:
        repository, tag = args["repositoryName"], args["imageTag"]
        if tag in self.unbuilt_tags:
            raise LookupError(
                f"ImageNotFoundException: The image with imageId {{imageTag:'{tag}'}} does not "
                f"exist within the repository with name '{repository}' in the registry with id "
                f"'{args['registryId']}'"
            )
        return {
            "id": f"{args['registryId']}/{repository}:{tag}",
            "registryId": args["registryId"],
            "repositoryName": repository,
            "imageTag": tag,
            "imageDigest": digest_for(repository, tag),
            "imageTags": [tag],
            "imageUri": (
                f"{args['registryId']}.dkr.ecr.{self.region}.amazonaws.com/{repository}:{tag}"
            ),
        }

    def _auth_token(self, args: dict[str, Any]) -> dict[str, Any]:
        registry = args.get("registryId") or self.account
        return {
            "id": self.region,
            "registryId": registry,
            "userName": "AWS",
            "password": "offline-placeholder-not-a-credential",
            "authorizationToken": "QVdTOm9mZmxpbmU=",
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
            "expiresAt": "2030-01-01T00:00:00Z",
        }

    def _zones(self, _args: dict[str, Any]) -> dict[str, Any]:
        names = [f"{self.region}{suffix}" for suffix in "abc"]
        return {"id": self.region, "names": names, "zoneIds": [f"az{i}" for i in range(1, 4)]}

    def _quota(self, args: dict[str, Any]) -> dict[str, Any]:
        code = "L-" + _short(args["serviceCode"], args["quotaName"], length=8).upper()
        return {
            "id": f"{args['serviceCode']}/{code}",
            "serviceCode": args["serviceCode"],
            "quotaName": args["quotaName"],
            "quotaCode": code,
            "value": 0,
        }

    def _kms_key(self, args: dict[str, Any]) -> dict[str, Any]:
        """The key an alias names: a stable key ID derived from account and alias."""
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.account}/{args['keyId']}"))
        arn = f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"
        return {"arn": arn, "id": key_id, "keyId": args["keyId"], "keyState": "Enabled"}

    def _caller(self, _args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.account,
            "accountId": self.account,
            "arn": f"arn:aws:sts::{self.account}:assumed-role/offline/plan",
            "userId": "AROAOFFLINE:plan",
        }

    # resources ---------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == PROVIDER_TYPE:
            # Provider configuration arrives JSON-encoded, as the engine sends it.
            allowed = inputs.get("allowedAccountIds") or [self.account]
            if isinstance(allowed, str):
                allowed = json.loads(allowed)
            provider_id = f"{args.name}-{_short(args.name, length=8)}"
            self._provider_accounts[provider_id] = str(allowed[0])
            return provider_id, inputs
        if args.typ == STACK_REFERENCE_TYPE:
            # Offline there is one project, so org/project/stack resolves by its stack part.
            stack = str(inputs.get("name", args.name))
            short = stack.rsplit("/", 1)[-1]
            if short not in self.stack_outputs:
                # What the engine answers for a stack that was never created.
                raise LookupError(f"unknown stack {stack!r}")
            outputs = dict(self.stack_outputs[short])
            return stack, {"name": stack, "outputs": outputs, "secretOutputNames": []}
        if self.first_preview:
            return "", inputs
        account = self._account_of(args.provider)
        resource_id, extra = self._outputs(args.typ, args.name, inputs, account)
        return resource_id, {**inputs, **extra}

    def _account_of(self, provider: str | None) -> str:
        if provider:
            return self._provider_accounts.get(provider.rsplit("::", 1)[-1], self.account)
        return self.account

    def _outputs(
        self, typ: str, name: str, inputs: dict[str, Any], account: str
    ) -> tuple[str, dict[str, Any]]:
        facts = _Facts(typ, name, inputs, account, self.region)
        if typ.startswith("aws:ec2/"):
            return _ec2(facts)
        return _OUTPUTS.get(typ, _generic)(facts)


@dataclass(frozen=True)
class _Facts:
    typ: str
    name: str
    inputs: dict[str, Any]
    account: str
    region: str

    @property
    def arn_base(self) -> str:
        service = self.typ.split(":")[1].split("/")[0]
        return f"arn:aws:{service}:{self.region}:{self.account}"

    @property
    def physical(self) -> str:
        for key in _NAME_KEYS:
            if key in self.inputs:
                return str(self.inputs[key])
        return self.name


_NAME_KEYS = (
    "name",
    "bucket",
    "modelPackageGroupName",
    "pipelineName",
    "userProfileName",
    "endpointName",
    "alarmName",
    "functionName",
)
Built = tuple[str, dict[str, Any]]


def _kms_key(f: _Facts) -> Built:
    key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{f.account}/{f.name}"))
    return key_id, {"keyId": key_id, "arn": f"{f.arn_base}:key/{key_id}"}


def _bucket(f: _Facts) -> Built:
    bucket = f.physical
    return bucket, {
        "bucket": bucket,
        "arn": f"arn:aws:s3:::{bucket}",
        "bucketRegionalDomainName": f"{bucket}.s3.{f.region}.amazonaws.com",
    }


def _role(f: _Facts) -> Built:
    return f.physical, {
        "name": f.physical,
        "arn": f"arn:aws:iam::{f.account}:role/{f.physical}",
        "uniqueId": "AROA" + _short(f.account, f.physical).upper(),
    }


def _oidc_provider(f: _Facts) -> Built:
    host = str(f.inputs["url"]).removeprefix("https://")
    return host, {"arn": f"arn:aws:iam::{f.account}:oidc-provider/{host}"}


def _repository(f: _Facts) -> Built:
    return f.physical, {
        "name": f.physical,
        "arn": f"{f.arn_base}:repository/{f.physical}",
        "registryId": f.account,
        "repositoryUrl": f"{f.account}.dkr.ecr.{f.region}.amazonaws.com/{f.physical}",
    }


def _docker_image(f: _Facts) -> Built:
    image_name = str(f.inputs["imageName"])
    repository, tag = image_name.rsplit(":", 1)
    short_repo = repository.split("/", 1)[1]
    return image_name, {"repoDigest": f"{repository}@{digest_for(short_repo, tag)}"}


def _domain(f: _Facts) -> Built:
    domain_id = f"d-{_short(f.account, f.name, length=12)}"
    return domain_id, {
        "arn": f"{f.arn_base}:domain/{domain_id}",
        "url": f"https://{domain_id}.studio.{f.region}.sagemaker.aws",
    }


def _ec2(f: _Facts) -> Built:
    kind = f.typ.rsplit(":", 1)[1]
    resource_id = f"{kind.lower()[:4]}-{_short(f.account, f.name)}"
    extra: dict[str, Any] = {"arn": f"{f.arn_base}:{kind.lower()}/{resource_id}"}
    if kind == "Eip":
        extra["allocationId"] = f"eipalloc-{_short(f.account, f.name)}"
    return resource_id, extra


def _queue(f: _Facts) -> Built:
    url = f"https://sqs.{f.region}.amazonaws.com/{f.account}/{f.physical}"
    return url, {"url": url, "arn": f"arn:aws:sqs:{f.region}:{f.account}:{f.physical}"}


def _generic(f: _Facts) -> Built:
    kind = f.typ.rsplit(":", 1)[1]
    resource = "".join("-" + c.lower() if c.isupper() else c for c in kind).lstrip("-")
    return f.physical, {"arn": f"{f.arn_base}:{resource}/{f.physical}"}


def _log_group(f: _Facts) -> Built:
    return f.physical, {"arn": f"arn:aws:logs:{f.region}:{f.account}:log-group:{f.physical}"}


_OUTPUTS: dict[str, Callable[[_Facts], Built]] = {
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:kms/key:Key": _kms_key,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:iam/role:Role": _role,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": _oidc_provider,
    "aws:ecr/repository:Repository": _repository,
    "docker:index/image:Image": _docker_image,
    "aws:sagemaker/domain:Domain": _domain,
    "aws:sqs/queue:Queue": _queue,
}
