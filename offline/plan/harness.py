"""Run the real Pulumi program of one stack under mocks and capture every resource.

The stack's own `Pulumi.<stack>.yaml` is loaded as its Pulumi config, so the
offline plan sees exactly what `pulumi up --stack <stack>` would be given.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2

from infra.context import StackContext
from infra.program import build, settings_from_config
from infra.promotion import VERIFICATION_CHECKS
from infra.settings import SettingsError
from infra.stack_files import load_stack_settings, read_stack_config, settings_of
from offline.plan.capture import CapturedResource, StackPlan
from offline.plan.mocks import OfflineMocks

PROJECT = "promote-code"
OFFLINE_IMAGE_TAG = "0" * 40
"""The tag offline runs use unless told otherwise; any 40-hex commit works."""


def _plain(value: Any) -> Any:
    """Wire-form inputs made readable: secrets redacted, whole numbers as ints."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return "[secret]"
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class CapturingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, recording each registration as the engine would see it."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.captured: list[CapturedResource] = []

    def RegisterResource(self, request: resource_pb2.RegisterResourceRequest) -> Any:  # noqa: N802
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = json_format.MessageToDict(request.object)
            self.captured.append(
                CapturedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    custom=request.custom,
                    provider=request.provider or None,
                    inputs=_plain(inputs),
                    dependencies=tuple(sorted(request.dependencies)),
                )
            )
        return response


def plan_stack(
    stack: str,
    *,
    image_tag: str = OFFLINE_IMAGE_TAG,
    preview: bool = False,
    config: Mapping[str, Any] | None = None,
    unbuilt_tags: frozenset[str] = frozenset(),
    stack_outputs: Mapping[str, Mapping[str, Any]] | None = None,
    verification: Mapping[str, Any] | None = None,
    first_preview: bool = False,
) -> StackPlan:
    """Run the program for `stack` under mocks; raise SettingsError on bad settings.

    `verification`: the staging promotion job's record, as `PROMOTE_VERIFICATION` gives it.
    `first_preview`: `pulumi preview` of a stack that does not exist yet (implies `preview`):
    every computed output is unknown.
    """
    config = dict(config if config is not None else read_stack_config(stack))
    settings = settings_of(stack, config)
    mocks = OfflineMocks(
        account=settings.accounts.for_stack(stack),
        region=settings.region,
        unbuilt_tags=unbuilt_tags,
        stack_outputs=stack_outputs,
        first_preview=first_preview,
    )
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    )
    monitor = CapturingMonitor(mocks)
    preview = preview or first_preview
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> pulumi.Output[None]:
        exports = build(
            settings_from_config(stack),
            StackContext(
                project=PROJECT,
                stack=stack,
                image_tag=image_tag,
                verification=verification,
            ),
        )
        return pulumi.Output.from_input(exports).apply(outputs.update)

    program()
    # Registration order follows async scheduling; URN order is stable across runs.
    resources = tuple(sorted(monitor.captured, key=lambda r: r.urn))
    return StackPlan(PROJECT, stack, resources, outputs)


def simulated_verification(commit: str) -> dict[str, Any]:
    """A verification record for an offline plan, marked as simulated in every check."""
    return {
        "commit": commit,
        "simulated": True,
        "checks": {
            check: {"passed": True, "detail": "simulated by the offline plan"}
            for check in VERIFICATION_CHECKS
        },
    }


def _source_stack(stack: str) -> str | None:
    settings = load_stack_settings(stack)
    source = getattr(settings, "promotion", None)
    if source is None or source.source_stack is None:
        return None
    return str(source.source_stack).rsplit("/", 1)[-1]


def plan_stacks(
    stacks: Iterable[str],
    *,
    image_tag: str = OFFLINE_IMAGE_TAG,
    verifications: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, StackPlan]:
    """Plan `stacks`, each after the stack it promotes from (prod after staging).

    Prod's StackReference to staging then reads the staging plan's outputs (commit, images,
    verification), exactly as `pulumi up --stack prod` reads the deployed staging stack.
    `verifications`: stack -> the record its promotion job wrote (the attesting `pulumi up`);
    a source stack without one is planned with `simulated_verification`, as the mocks
    simulate every other part of a deployed stack (`promote pipeline run --local --stack
    staging` writes a real one).
    """
    wanted = list(dict.fromkeys(stacks))
    verified = dict(verifications or {})
    for stack in wanted:
        if (source := _source_stack(stack)) is not None:
            verified.setdefault(source, simulated_verification(image_tag))
    plans: dict[str, StackPlan] = {}

    def plan(stack: str, chain: tuple[str, ...]) -> StackPlan:
        if stack in chain:
            raise SettingsError(f"promotion.source_stack forms a cycle: {' -> '.join(chain)}")
        if stack not in plans:
            source = _source_stack(stack)
            outputs = {}
            if source is not None:
                outputs[source] = plan(source, (*chain, stack)).outputs
            plans[stack] = plan_stack(
                stack,
                image_tag=image_tag,
                stack_outputs=outputs,
                verification=verified.get(stack),
            )
        return plans[stack]

    return {stack: plan(stack, ()) for stack in wanted}
