"""The Analyzer protocol's messages, built and read the way the Pulumi engine does.

Resource inputs are marshalled as the engine marshals them for analyzers
(KeepUnknowns, KeepSecrets): assets and archives become pulumi's signature
objects, unknowns stay the engine's unknown sentinel strings. Requests carry the
URN, type, name, parent, provider and dependencies the engine sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias, cast

from google.protobuf import json_format, struct_pb2
from pulumi import asset
from pulumi.runtime.proto import analyzer_pb2

from offline.plan.capture import CapturedResource, StackPlan
from offline.policy.config import AnalyzerInfo, EnforcementLevel, PolicyConfig, PolicyInfo
from offline.policy.report import Violation

ORGANIZATION = "organization"
"""The organization of a self-managed backend, the only one an offline plan has."""

# pulumi's property-map signatures (sdk/go/common/resource/properties.go).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"

_ProtoLevel: TypeAlias = analyzer_pb2.EnforcementLevel.ValueType
_FROM_PROTO: Mapping[_ProtoLevel, EnforcementLevel] = {
    analyzer_pb2.ADVISORY: EnforcementLevel.ADVISORY,
    analyzer_pb2.MANDATORY: EnforcementLevel.MANDATORY,
    analyzer_pb2.REMEDIATE: EnforcementLevel.REMEDIATE,
    analyzer_pb2.DISABLED: EnforcementLevel.DISABLED,
}
_TO_PROTO: Mapping[EnforcementLevel, _ProtoLevel] = {
    level: value for value, level in _FROM_PROTO.items()
}

_FILE_LIKE: tuple[tuple[type, str, str], ...] = (
    (asset.FileAsset, _ASSET_SIG, "path"),
    (asset.StringAsset, _ASSET_SIG, "text"),
    (asset.RemoteAsset, _ASSET_SIG, "uri"),
    (asset.FileArchive, _ARCHIVE_SIG, "path"),
    (asset.RemoteArchive, _ARCHIVE_SIG, "uri"),
)


def marshal(value: object) -> object:
    """A captured input as the engine's property value (JSON-like, with asset signatures)."""
    if isinstance(value, Mapping):
        return {str(k): marshal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [marshal(v) for v in value]
    if isinstance(value, asset.AssetArchive):
        return {_SIG_KEY: _ARCHIVE_SIG, "assets": marshal(dict(value.assets))}
    for kind, signature, attribute in _FILE_LIKE:
        if isinstance(value, kind):
            return {_SIG_KEY: signature, attribute: str(getattr(value, attribute))}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def struct(values: Mapping[str, object]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(cast(dict[str, Any], marshal(values)))
    return message


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    # urn:pulumi:<stack>::<project>::<parent$type>::<name>
    parts = urn.split("::", 3)
    if len(parts) != 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


class PlanMessages:
    """A plan's Analyze and AnalyzeStack requests; resources indexed by URN for providers."""

    def __init__(self, plan: StackPlan) -> None:
        self.plan = plan
        self.by_urn = {r.urn: r for r in plan.resources}

    def name_of(self, urn: str) -> str:
        resource = self.by_urn.get(urn)
        return resource.name if resource is not None else _urn_type_and_name(urn)[1]

    def provider(self, resource: CapturedResource) -> analyzer_pb2.AnalyzerProviderResource | None:
        if not resource.provider:
            return None
        # A provider reference is "<provider urn>::<provider id>".
        urn = resource.provider.rsplit("::", 1)[0]
        known = self.by_urn.get(urn)
        provider_type, name = _urn_type_and_name(urn)
        return analyzer_pb2.AnalyzerProviderResource(
            urn=urn,
            type=known.type if known else provider_type,
            name=known.name if known else name,
            properties=struct(known.inputs if known else {}),
        )

    def analyze_request(self, resource: CapturedResource) -> analyzer_pb2.AnalyzeRequest:
        return analyzer_pb2.AnalyzeRequest(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            properties=struct(resource.inputs),
            options=analyzer_pb2.AnalyzerResourceOptions(parent=resource.parent or ""),
            provider=self.provider(resource),
        )

    def stack_request(self) -> analyzer_pb2.AnalyzeStackRequest:
        return analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    properties=struct(r.inputs),
                    options=analyzer_pb2.AnalyzerResourceOptions(parent=r.parent or ""),
                    provider=self.provider(r),
                    parent=r.parent or "",
                    dependencies=list(r.dependencies),
                )
                for r in self.plan.resources
            ]
        )

    def violations(self, diagnostics: Iterable[Any], *, default_urn: str) -> list[Violation]:
        found = []
        for diagnostic in diagnostics:
            urn = diagnostic.urn or default_urn
            # pulumi_policy sends "<policy description>\n<message>"; keep the specific part.
            message = str(diagnostic.message)
            prefix = f"{diagnostic.description}\n"
            if diagnostic.description and message.startswith(prefix):
                message = message[len(prefix) :]
            found.append(
                Violation(
                    policy=diagnostic.policyName,
                    resource_urn=urn,
                    resource_name=self.name_of(urn) if urn else "",
                    message=message,
                    enforcement_level=_FROM_PROTO[diagnostic.enforcementLevel],
                )
            )
        return found


def stack_configure_request(plan: StackPlan) -> analyzer_pb2.AnalyzerStackConfigureRequest:
    # An offline plan is a preview (dry run) of a stack with no engine-side config values.
    return analyzer_pb2.AnalyzerStackConfigureRequest(
        stack=plan.stack, project=plan.project, organization=ORGANIZATION, dry_run=True
    )


def configure_request(
    reconciled: Mapping[str, PolicyConfig],
) -> analyzer_pb2.ConfigureAnalyzerRequest:
    return analyzer_pb2.ConfigureAnalyzerRequest(
        policyConfig={
            name: analyzer_pb2.PolicyConfig(
                enforcementLevel=_TO_PROTO[value.enforcement_level or EnforcementLevel.ADVISORY],
                properties=struct(value.properties),
            )
            for name, value in reconciled.items()
        }
    )


def analyzer_info(response: analyzer_pb2.AnalyzerInfo) -> AnalyzerInfo:
    """GetAnalyzerInfo's answer: the pack's policies, their levels, schemas and initial config."""
    policies = []
    for policy in response.policies:
        schema: dict[str, Any] | None = None
        if response.supportsConfig:
            schema = {
                "properties": json_format.MessageToDict(policy.configSchema.properties),
                "required": list(policy.configSchema.required),
            }
        policies.append(
            PolicyInfo(
                name=policy.name,
                description=policy.description,
                enforcement_level=_FROM_PROTO[policy.enforcementLevel],
                config_schema=schema,
            )
        )
    initial = {
        name: PolicyConfig(
            _FROM_PROTO[config.enforcementLevel],
            json_format.MessageToDict(config.properties),
        )
        for name, config in response.initialConfig.items()
    }
    return AnalyzerInfo(
        name=response.name,
        version=response.version,
        policies=tuple(sorted(policies, key=lambda p: p.name)),
        initial_config=initial,
    )
