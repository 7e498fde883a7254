"""Run the CrossGuard policy pack over an offline plan through the engine's own protocol.

The pack is started the way the Pulumi engine starts a Python policy pack
(`pulumi-analyzer-policy-python <engine address> .` from the pack directory,
which runs `python -u -m pulumi.policy <engine address> .`); the first line the
process prints is the port of its Analyzer gRPC server. The runner then makes
the engine's calls with the stubs shipped in `pulumi.runtime.proto`:
Handshake (optional for analyzers), ConfigureStack, GetAnalyzerInfo, Configure
with the stack's policy config reconciled against the pack's schemas the way
`pulumi preview --policy-pack-config` does it, Analyze for every resource and
AnalyzeStack once. Policy evaluation itself is entirely the pack's.

    with PolicyPackProcess() as pack:          # one process for many stacks
        for plan in plans:
            violations = pack.analyze(plan, load_policy_config(plan.stack))
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeAlias, cast

import grpc
import yaml
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi import asset
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2_grpc

from infra.context import REPO_ROOT
from infra.settings import STACKS
from offline.plan.capture import CapturedResource, StackPlan

DEFAULT_PACK_DIR = REPO_ROOT / "policies"
POLICY_CONFIG_DIR = DEFAULT_PACK_DIR / "config"

# Same limit the engine and pulumi_policy use: plans with large pipeline definitions fit.
_MAX_MESSAGE = 400 * 1024 * 1024
_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
]

# pulumi's property-map signatures (sdk/go/common/resource/properties.go).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"


class EnforcementLevel(StrEnum):
    ADVISORY = "advisory"
    MANDATORY = "mandatory"
    REMEDIATE = "remediate"
    DISABLED = "disabled"


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


@dataclass(frozen=True)
class Violation:
    """One diagnostic of the pack, as the engine would print it."""

    policy: str
    resource_urn: str
    """URN of the offending resource; empty for a stack-wide diagnostic."""
    resource_name: str
    message: str
    enforcement_level: EnforcementLevel

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.REMEDIATE)

    def __str__(self) -> str:
        where = self.resource_name or self.resource_urn or "stack"
        detail = self.message.replace("\n", " - ")
        return f"[{self.enforcement_level}] {self.policy} on {where}: {detail}"


class PolicyPackError(RuntimeError):
    """The policy pack could not be started or answered an RPC with an error."""


class PolicyConfigError(PolicyPackError):
    """The policy config does not fit the pack (unknown policy, schema violation)."""


@dataclass(frozen=True)
class PolicyConfig:
    enforcement_level: EnforcementLevel | None = None
    properties: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    enforcement_level: EnforcementLevel
    config_schema: Mapping[str, Any] | None


@dataclass(frozen=True)
class AnalyzerInfo:
    name: str
    version: str
    policies: tuple[PolicyInfo, ...]
    initial_config: Mapping[str, PolicyConfig]

    def policy(self, name: str) -> PolicyInfo:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)


# --- policy config: the `--policy-pack-config` file format and the engine's reconciliation ---


def load_policy_config(stack: str, directory: Path = POLICY_CONFIG_DIR) -> dict[str, object]:
    """The committed `policies/config/<stack>.json`."""
    path = directory / f"{stack}.json"
    if not path.is_file():
        raise PolicyConfigError(
            f"{path} is missing; run `uv run python -m infra.policy_config --write`"
        )
    loaded = json.loads(path.read_text())
    if not isinstance(loaded, dict):
        raise PolicyConfigError(f"{path}: a policy pack config is a JSON object")
    return cast(dict[str, object], loaded)


def _level(value: object, where: str) -> EnforcementLevel:
    try:
        return EnforcementLevel(str(value))
    except ValueError:
        raise PolicyConfigError(
            f"parsing enforcement level for {where!r}: {value!r} is not a valid enforcement level"
        ) from None


def parse_policy_pack_config(raw: Mapping[str, object]) -> dict[str, PolicyConfig]:
    """Parse the JSON of `--policy-pack-config` like the engine (a level, or an object)."""
    parsed: dict[str, PolicyConfig] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            parsed[name] = PolicyConfig(_level(value, name))
        elif isinstance(value, Mapping):
            properties = {str(k): v for k, v in value.items() if k != "enforcementLevel"}
            level = _level(value["enforcementLevel"], name) if "enforcementLevel" in value else None
            if level is not None or properties:
                parsed[name] = PolicyConfig(level, properties)
        else:
            raise PolicyConfigError(f"parsing {name!r}: {value!r} must be a string or object")
    return parsed


def _apply(
    result: dict[str, PolicyConfig], given: Mapping[str, PolicyConfig]
) -> dict[str, PolicyConfig]:
    everything = given.get("all")
    if everything is not None and everything.enforcement_level is not None:
        result = {
            name: PolicyConfig(everything.enforcement_level, config.properties)
            for name, config in result.items()
        }
    for name, config in given.items():
        current = result.get(name, PolicyConfig())
        properties = {**current.properties, **config.properties}
        result[name] = PolicyConfig(
            config.enforcement_level or current.enforcement_level, properties
        )
    return result


def reconcile_policy_config(
    info: AnalyzerInfo, config: Mapping[str, object]
) -> dict[str, PolicyConfig]:
    """Defaults from the schemas, then the pack's initial config, then `config`; validated.

    Mirrors the engine's ReconcilePolicyPackConfig, and additionally rejects
    config for a policy the pack does not have (a typo would otherwise leave
    that policy at its default level without a word).
    """
    import jsonschema  # noqa: PLC0415 - only needed once per configuration

    given = parse_policy_pack_config(config)
    known = {policy.name for policy in info.policies}
    unknown = sorted(set(given) - known - {"all"})
    if unknown:
        raise PolicyConfigError(
            f"policy config names policies the pack {info.name!r} does not have: "
            f"{', '.join(unknown)} (it has {', '.join(sorted(known))})"
        )
    result: dict[str, PolicyConfig] = {}
    for policy in info.policies:
        schema_properties = (policy.config_schema or {}).get("properties", {})
        defaults = {
            key: prop["default"]
            for key, prop in schema_properties.items()
            if isinstance(prop, Mapping) and "default" in prop
        }
        result[policy.name] = PolicyConfig(policy.enforcement_level, defaults)
    result = _apply(result, info.initial_config)
    result = _apply(result, given)
    errors: list[str] = []
    for policy in info.policies:
        if policy.config_schema is None:
            continue
        schema: dict[str, Any] = {"type": "object"}
        if policy.config_schema.get("properties"):
            schema["properties"] = policy.config_schema["properties"]
        if policy.config_schema.get("required"):
            schema["required"] = policy.config_schema["required"]
        validator = jsonschema.Draft7Validator(schema)
        document = dict(result[policy.name].properties)
        for error in sorted(validator.iter_errors(document), key=str):
            location = ".".join(str(p) for p in error.absolute_path) or "(root)"
            errors.append(f"{policy.name}: {location}: {error.message}")
    if errors:
        raise PolicyConfigError("invalid policy pack config:\n  " + "\n  ".join(errors))
    return result


# --- marshalling captured resources the way the engine does (KeepUnknowns, KeepSecrets) ---


_FILE_LIKE: tuple[tuple[type, str, str], ...] = (
    (asset.FileAsset, _ASSET_SIG, "path"),
    (asset.StringAsset, _ASSET_SIG, "text"),
    (asset.RemoteAsset, _ASSET_SIG, "uri"),
    (asset.FileArchive, _ARCHIVE_SIG, "path"),
    (asset.RemoteArchive, _ARCHIVE_SIG, "uri"),
)


def _marshal(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _marshal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_marshal(v) for v in value]
    if isinstance(value, asset.AssetArchive):
        return {_SIG_KEY: _ARCHIVE_SIG, "assets": _marshal(dict(value.assets))}
    for kind, signature, attribute in _FILE_LIKE:
        if isinstance(value, kind):
            return {_SIG_KEY: signature, attribute: str(getattr(value, attribute))}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    return str(value)


def _struct(values: Mapping[str, object]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(cast(dict[str, Any], _marshal(values)))
    return message


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    # urn:pulumi:<stack>::<project>::<parent$type>::<name>
    parts = urn.split("::", 3)
    if len(parts) != 4:
        return "", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


class _Plan:
    """A plan indexed for the requests: resources by URN, providers by reference."""

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
            properties=_struct(known.inputs if known else {}),
        )

    def analyze_request(self, resource: CapturedResource) -> analyzer_pb2.AnalyzeRequest:
        return analyzer_pb2.AnalyzeRequest(
            urn=resource.urn,
            type=resource.type,
            name=resource.name,
            properties=_struct(resource.inputs),
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
                    properties=_struct(r.inputs),
                    options=analyzer_pb2.AnalyzerResourceOptions(parent=r.parent or ""),
                    provider=self.provider(r),
                    parent=r.parent or "",
                    dependencies=list(r.dependencies),
                )
                for r in self.plan.resources
            ]
        )


# --- the engine side: a minimal Engine service whose address the pack is given ---


class _Engine(engine_pb2_grpc.EngineServicer):
    """Collects what the pack logs to the engine (the pack SDK rarely does)."""

    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, _context: Any) -> empty_pb2.Empty:  # noqa: N802 - gRPC name
        self.logs.append(str(request.message))
        return empty_pb2.Empty()


def _drain(stream: Any, sink: deque[str]) -> None:
    for line in iter(stream.readline, b""):
        sink.append(line.decode(errors="replace").rstrip())


class PolicyPackProcess:
    """The policy pack as a child process, connected over the Analyzer gRPC service.

    Use as a context manager; the process is stopped on exit, errors included.
    One process can analyze several stacks: each `analyze` call sends that
    stack's ConfigureStack and Configure before its resources.
    """

    def __init__(
        self,
        pack_dir: Path = DEFAULT_PACK_DIR,
        *,
        python: str | None = None,
        project: str | None = None,
        stack: str | None = None,
        organization: str = "organization",
        dry_run: bool = True,
        stack_config: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        call_timeout: float = 60.0,
    ) -> None:
        self.pack_dir = pack_dir.resolve()
        self.python = python
        """The interpreter; by default the pack's `virtualenv` option, else this interpreter."""
        self.project = project
        self.stack = stack
        self.organization = organization
        self.dry_run = dry_run
        self.stack_config = dict(stack_config or {})
        self.startup_timeout = startup_timeout
        self.call_timeout = call_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._engine_server: grpc.Server | None = None
        self._engine = _Engine()
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._stderr: deque[str] = deque(maxlen=200)
        self._stdout: deque[str] = deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._info: AnalyzerInfo | None = None
        self.port: int | None = None

    # -- lifecycle --

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
        return self._process is not None and self._process.poll() is None

    @property
    def engine_logs(self) -> list[str]:
        return list(self._engine.logs)

    def interpreter(self) -> str:
        """The Python the shim would pick: the pack's `virtualenv` option, else `python3`.

        The engine hands the shim `-<option>=<value>` for each runtime option of
        PulumiPolicy.yaml; the shim only acts on `virtualenv`. In place of
        "python3 on PATH" the runner uses its own interpreter (the project's env).
        """
        if self.python is not None:
            return self.python
        document = yaml.safe_load((self.pack_dir / "PulumiPolicy.yaml").read_text()) or {}
        runtime = document.get("runtime") if isinstance(document, dict) else None
        options = runtime.get("options") if isinstance(runtime, dict) else None
        virtualenv = options.get("virtualenv") if isinstance(options, dict) else None
        if not virtualenv:
            return sys.executable
        python = (self.pack_dir / str(virtualenv)) / "bin" / "python"
        if not python.is_file():
            raise PolicyPackError(
                f'"{python.parent.parent}" doesn\'t appear to be a virtual environment'
            )
        return str(python)

    def command(self, engine_address: str) -> list[str]:
        """What `pulumi-analyzer-policy-python <engine> .` runs, from the pack directory."""
        return [self.interpreter(), "-u", "-m", "pulumi.policy", engine_address, "."]

    def environment(self) -> dict[str, str]:
        """The engine's environment for policy packs (constructEnv in analyzer_plugin.go)."""
        env = dict(os.environ)
        extra = {
            "PULUMI_CONFIG": json.dumps(self.stack_config) if self.stack_config else "",
            "PULUMI_ORGANIZATION": self.organization,
            "PULUMI_PROJECT": self.project or "",
            "PULUMI_STACK": self.stack or "",
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
        }
        env.update({key: value for key, value in extra.items() if value})
        return env

    def start(self) -> None:
        if self._process is not None:
            raise PolicyPackError("the policy pack process is already started")
        if not (self.pack_dir / "PulumiPolicy.yaml").is_file():
            raise PolicyPackError(f"{self.pack_dir} is not a policy pack (no PulumiPolicy.yaml)")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(self._engine, self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()
        engine_address = f"127.0.0.1:{engine_port}"

        self._process = subprocess.Popen(
            self.command(engine_address),
            cwd=self.pack_dir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self._process.stdout is not None and self._process.stderr is not None
        self._spawn(_drain, self._process.stderr, self._stderr)
        self.port = self._read_port(self._process.stdout)
        self._spawn(_drain, self._process.stdout, self._stdout)

        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=_CHANNEL_OPTIONS)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        except grpc.FutureTimeoutError:
            raise PolicyPackError(self._failure("did not accept connections")) from None
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._handshake(engine_address)
        self._info = self._analyzer_info()

    def _spawn(self, target: Any, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _read_port(self, stdout: Any) -> int:
        first: list[bytes] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.startup_timeout)
        if reader.is_alive():
            raise PolicyPackError(
                self._failure(f"printed no port within {self.startup_timeout:.0f}s")
            )
        line = first[0].decode(errors="replace").strip() if first else ""
        if not line:
            self._wait_exit(5.0)
            raise PolicyPackError(self._failure("exited before printing its port"))
        try:
            return int(line)
        except ValueError:
            raise PolicyPackError(
                self._failure(f"printed {line!r} where the engine expects a port number")
            ) from None

    def _wait_exit(self, timeout: float) -> None:
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout)
        for thread in self._threads:
            thread.join(0.5)

    def _failure(self, what: str) -> str:
        code = self._process.poll() if self._process is not None else None
        status = f" (exit code {code})" if code is not None else ""
        stderr = "\n".join(self._stderr)
        tail = f"\n--- policy pack stderr ---\n{stderr}" if stderr else ""
        return f"policy pack {self.pack_dir} {what}{status}{tail}"

    def stop(self) -> None:
        """Close the connection and end the process (SIGINT, then SIGKILL); idempotent."""
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._stub = None
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                # pulumi_policy serves until KeyboardInterrupt, then stops its server.
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            for thread in self._threads:
                thread.join(timeout=1)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self._threads = []
        if self._engine_server is not None:
            self._engine_server.stop(grace=None)
            self._engine_server = None

    # -- RPCs --

    def _require_stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        if self._stub is None or not self.running:
            raise PolicyPackError(self._failure("is not running"))
        return self._stub

    def _call(self, method: str, request: object) -> Any:
        stub = self._require_stub()
        try:
            return getattr(stub, method)(request, timeout=self.call_timeout)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise PolicyPackError(self._failure(f"failed {method}: {code} {details}")) from None

    def _handshake(self, engine_address: str) -> None:
        request = analyzer_pb2.AnalyzerHandshakeRequest(
            engine_address=engine_address,
            root_directory=str(self.pack_dir),
            program_directory=str(self.pack_dir),
        )
        try:
            self._require_stub().Handshake(request, timeout=self.call_timeout)
        except grpc.RpcError as error:
            # As in the engine: an analyzer without Handshake keeps the legacy behaviour.
            if not (isinstance(error, grpc.Call) and error.code() == grpc.StatusCode.UNIMPLEMENTED):
                raise PolicyPackError(self._failure(f"failed Handshake: {error}")) from None

    def _analyzer_info(self) -> AnalyzerInfo:
        response = self._call("GetAnalyzerInfo", empty_pb2.Empty())
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

    @property
    def info(self) -> AnalyzerInfo:
        if self._info is None:
            raise PolicyPackError("the policy pack process is not started")
        return self._info

    def configure(self, plan: StackPlan, config: Mapping[str, object]) -> dict[str, PolicyConfig]:
        """ConfigureStack + Configure for one stack; returns the reconciled config sent."""
        reconciled = reconcile_policy_config(self.info, config)
        self._call(
            "ConfigureStack",
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=plan.stack,
                project=plan.project,
                organization=self.organization,
                dry_run=self.dry_run,
                config=self.stack_config,
            ),
        )
        request = analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(
                    enforcementLevel=_TO_PROTO[
                        value.enforcement_level or EnforcementLevel.ADVISORY
                    ],
                    properties=_struct(value.properties),
                )
                for name, value in reconciled.items()
            }
        )
        self._call("Configure", request)
        return reconciled

    def analyze(self, plan: StackPlan, config: Mapping[str, object]) -> list[Violation]:
        """Every violation the pack reports for `plan` under the policy `config`."""
        self.configure(plan, config)
        indexed = _Plan(plan)
        violations: list[Violation] = []
        for resource in plan.resources:
            response = self._call("Analyze", indexed.analyze_request(resource))
            violations.extend(_violations(response.diagnostics, indexed, default_urn=resource.urn))
        response = self._call("AnalyzeStack", indexed.stack_request())
        violations.extend(_violations(response.diagnostics, indexed, default_urn=""))
        return violations


def _violations(diagnostics: Iterable[Any], plan: _Plan, *, default_urn: str) -> list[Violation]:
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
                resource_name=plan.name_of(urn) if urn else "",
                message=message,
                enforcement_level=_FROM_PROTO[diagnostic.enforcementLevel],
            )
        )
    return found


def analyze_plan(
    plan: StackPlan, config: Mapping[str, object], *, pack_dir: Path = DEFAULT_PACK_DIR
) -> list[Violation]:
    """Start the pack for this one stack, analyze the plan, stop the pack."""
    with PolicyPackProcess(pack_dir, project=plan.project, stack=plan.stack) as pack:
        return pack.analyze(plan, config)


def mandatory(violations: Sequence[Violation]) -> list[Violation]:
    return [v for v in violations if v.mandatory]


def format_report(stack: str, violations: Sequence[Violation]) -> str:
    """The per-stack lines the offline plan prints."""
    if not violations:
        return f"{stack}: no policy violations"
    blocking = len(mandatory(violations))
    lines = [f"{stack}: {len(violations)} policy violation(s), {blocking} mandatory"]
    lines.extend(f"  {violation}" for violation in violations)
    return "\n".join(lines)


def analyze_plans(
    plans: Mapping[str, StackPlan],
    *,
    pack_dir: Path = DEFAULT_PACK_DIR,
    config_dir: Path = POLICY_CONFIG_DIR,
) -> dict[str, list[Violation]]:
    """Each stack's plan under its committed `policies/config/<stack>.json`, one pack process."""
    if not plans:
        return {}
    project = next(iter(plans.values())).project
    with PolicyPackProcess(pack_dir, project=project) as pack:
        return {
            stack: pack.analyze(plan, load_policy_config(stack, config_dir))
            for stack, plan in plans.items()
        }


def check_stacks(stacks: Sequence[str]) -> int:
    """Plan `stacks` offline, run the pack over them once, print the report; 1 on mandatory."""
    from offline.plan.harness import plan_stacks  # noqa: PLC0415 - the program is heavy to import

    results = analyze_plans(plan_stacks(stacks))
    for stack, violations in results.items():
        print(format_report(stack, violations))
    return 1 if any(mandatory(v) for v in results.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m offline.policy.runner",
        description="Run the policy pack over the offline plans of the given stacks "
        "(default: all); exit 1 on any mandatory violation.",
    )
    parser.add_argument("stacks", nargs="*", metavar="stack", help=", ".join(STACKS))
    options = parser.parse_args(argv)
    unknown = sorted(set(options.stacks) - set(STACKS))
    if unknown:
        parser.error(f"unknown stack(s) {', '.join(unknown)}; choose from {', '.join(STACKS)}")
    return check_stacks(options.stacks or list(STACKS))


if __name__ == "__main__":
    sys.exit(main())
