"""Run the CrossGuard policy pack over offline plans through the engine's own protocol.

The pack is started as the engine starts it (`process.py`) and driven with the
stubs shipped in `pulumi.runtime.proto`: Handshake (optional for analyzers),
GetAnalyzerInfo, then per stack ConfigureStack, Configure with the stack's
policy config reconciled against the pack's schemas (`config.py`), Analyze for
every resource and AnalyzeStack once (messages built in `protocol.py`). Policy
evaluation itself is entirely the pack's. Start-up and every call share one
deadline.

    with PolicyPackProcess(project="promote-code") as pack:   # one process, many stacks
        for plan in plans:
            violations = pack.analyze(plan, load_policy_config(plan.stack))
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from offline.plan.capture import StackPlan
from offline.policy.config import (
    POLICY_CONFIG_DIR,
    AnalyzerInfo,
    PolicyConfig,
    config_path,
    load_policy_config,
    reconcile_policy_config,
    shown,
)
from offline.policy.errors import Deadline, PolicyConfigError, PolicyPackError
from offline.policy.process import DEFAULT_PACK_DIR, PackProcess
from offline.policy.protocol import (
    PlanMessages,
    analyzer_info,
    configure_request,
    stack_configure_request,
)
from offline.policy.report import Violation

DEFAULT_TIMEOUT = 120.0
"""Seconds for a whole analysis, start-up included (all four stacks take about 2 s)."""

# Same limit the engine and pulumi_policy use: plans with large pipeline definitions fit.
_MAX_MESSAGE = 400 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]


class PolicyPackProcess:
    """The policy pack as a child process, connected over the Analyzer gRPC service.

    Use as a context manager; the process group is ended on exit, errors and
    interrupts included. One process can analyze several stacks: each `analyze`
    sends that stack's ConfigureStack and Configure before its resources.
    `timeout` is one budget for start-up and every call until `stop`.
    """

    def __init__(
        self,
        pack_dir: Path = DEFAULT_PACK_DIR,
        *,
        project: str | None = None,
        stack: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.process = PackProcess(pack_dir, project=project, stack=stack)
        self.timeout = timeout
        self.port: int | None = None
        self._deadline: Deadline | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._info: AnalyzerInfo | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process.running

    def start(self) -> None:
        self._deadline = deadline = Deadline(self.timeout)
        try:
            self.port, engine_address = self.process.start(deadline)
            self._channel = grpc.insecure_channel(
                f"127.0.0.1:{self.port}", options=_CHANNEL_OPTIONS
            )
            doing = "the connection to the policy pack"
            try:
                grpc.channel_ready_future(self._channel).result(timeout=deadline.remaining(doing))
            except grpc.FutureTimeoutError:
                raise deadline.expired(doing) from None
            self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
            self._handshake(engine_address)
            self._info = analyzer_info(self._call("GetAnalyzerInfo", empty_pb2.Empty()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close the connection and end the pack's process group; idempotent."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._stub = None
        self.process.stop()

    def _call(self, method: str, request: object, on: str = "", *, optional: bool = False) -> Any:
        """One RPC within the deadline; `optional`: an UNIMPLEMENTED method returns None."""
        if self._stub is None or self._deadline is None or not self.running:
            raise PolicyPackError(self.process.failure("is not running"))
        doing = f"{method}{on}"
        try:
            return getattr(self._stub, method)(request, timeout=self._deadline.remaining(doing))
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self._deadline.expired(doing) from None
            if optional and code == grpc.StatusCode.UNIMPLEMENTED:
                return None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            first = (details or "").strip().splitlines()[0:1] or [""]
            name = code.name if code is not None else "error"
            raise PolicyPackError(
                self.process.failure(f"failed {doing}: {name} {first[0][:300]}".rstrip())
            ) from None

    def _handshake(self, engine_address: str) -> None:
        pack_dir = str(self.process.pack_dir)
        request = analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address=engine_address, root_directory=pack_dir, program_directory=pack_dir
        )
        # As in the engine: an analyzer without Handshake keeps the legacy behaviour.
        self._call("Handshake", request, optional=True)

    @property
    def info(self) -> AnalyzerInfo:
        if self._info is None:
            raise PolicyPackError("the policy pack process is not started")
        return self._info

    def configure(self, plan: StackPlan, config: Mapping[str, object]) -> dict[str, PolicyConfig]:
        """ConfigureStack + Configure for one stack; returns the reconciled config sent."""
        reconciled = reconcile_policy_config(self.info, config, stack=plan.stack)
        self._call("ConfigureStack", stack_configure_request(plan))
        self._call("Configure", configure_request(reconciled))
        return reconciled

    def analyze(self, plan: StackPlan, config: Mapping[str, object]) -> list[Violation]:
        """Every violation the pack reports for `plan` under the policy `config`."""
        self.configure(plan, config)
        messages = PlanMessages(plan)
        violations: list[Violation] = []
        for resource in plan.resources:
            response = self._call(
                "Analyze", messages.analyze_request(resource), f" of {resource.urn}"
            )
            violations.extend(messages.violations(response.diagnostics, default_urn=resource.urn))
        response = self._call("AnalyzeStack", messages.stack_request(), f" of stack {plan.stack}")
        violations.extend(messages.violations(response.diagnostics, default_urn=""))
        return violations


def analyze_plans(
    plans: Mapping[str, StackPlan],
    *,
    pack_dir: Path = DEFAULT_PACK_DIR,
    config_dir: Path = POLICY_CONFIG_DIR,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, list[Violation]]:
    """Each stack's plan under its `policies/config/<stack>.json`, one pack process.

    Every config is read before the pack starts, so a broken file fails fast;
    a config error names the file.
    """
    if not plans:
        return {}
    configs = {stack: load_policy_config(stack, config_dir) for stack in plans}
    project = next(iter(plans.values())).project
    results: dict[str, list[Violation]] = {}
    with PolicyPackProcess(pack_dir, project=project, timeout=timeout) as pack:
        for stack, plan in plans.items():
            try:
                results[stack] = pack.analyze(plan, configs[stack])
            except PolicyConfigError as error:
                raise PolicyConfigError(
                    f"{shown(config_path(stack, config_dir))}: {error}"
                ) from None
    return results
