"""Local AWS for the local pipeline run: moto's server on 127.0.0.1, on a free port.

`local_aws()` starts the server as a child process in its own process group
(`python -m offline.aws`), yields where it listens and how to reach it, and ends
the group on the way out, whether the body returns, raises or is interrupted.
Each server starts empty (moto's state lives in the server process, so two runs
never see each other's resources) and takes its account from its own
environment. The server also exits by itself when its parent goes away (its
stdin, a pipe from the parent, reaches end of file), so even a parent killed
with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

from offline.pipeline.processes import stop_group

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""moto accepts any credentials; these make sure real ones are never used."""

START_TIMEOUT_SECONDS = 60.0
"""How long the server may take to import moto and listen (seconds on a busy machine)."""


class LocalAwsError(RuntimeError):
    """The local AWS server could not be started; the message carries its output."""


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    region: str
    pid: int | None = None
    """The server process (its own process group), None when it runs elsewhere."""

    def client(self, service: str) -> Any:
        """A boto3 client of `service` bound to the local server (one per service: they cost
        a service-model load each, and boto3 clients are safe to share)."""
        return _client(self.endpoint_url, self.region, service)

    def environment(self) -> dict[str, str]:
        """Environment that points any boto3 in a child process at the local server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


@functools.cache
def _client(endpoint_url: str, region: str, service: str) -> Any:
    session = boto3.session.Session(region_name=region, **LOCAL_CREDENTIALS)
    return session.client(service, endpoint_url=endpoint_url)


@contextmanager
def local_aws(region: str, account_id: str | None = None) -> Iterator[LocalAws]:
    """Run moto's server on 127.0.0.1 (port chosen by the OS) for the duration of the block.

    With `account_id`, every resource lives in that account (ARNs look like the stack's).
    """
    if account_id is not None and not (len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if account_id is not None:
        environment["MOTO_ACCOUNT_ID"] = account_id
    with tempfile.TemporaryFile() as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "offline.aws"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=environment,
            start_new_session=True,
        )
        try:
            port = _read_port(server, errors)
            yield LocalAws(f"http://127.0.0.1:{port}", region, server.pid)
        finally:
            if server.stdin is not None:
                server.stdin.close()  # the server's cue to exit
            stop_group(server, grace=2.0)
            if server.stdout is not None:
                server.stdout.close()


def _read_port(server: subprocess.Popen[bytes], errors: Any) -> int:
    assert server.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(server.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = server.stdout.readline().decode().strip()
                if line.startswith("port "):
                    return int(line.split()[1])
                break  # end of output (the server exited) or something unexpected
            if server.poll() is not None:
                break
    errors.seek(0)
    output = errors.read().decode(errors="replace").strip().splitlines()
    raise LocalAwsError(
        "local AWS (moto server) did not start within "
        f"{START_TIMEOUT_SECONDS:.0f} s: {output[-1] if output else 'no output'}"
    )


def _keep_package_metadata_on_update() -> None:
    """Make moto's UpdateModelPackage keep CustomerMetadataProperties it is not given.

    SageMaker changes only what an UpdateModelPackage request names (the API reference:
    CustomerMetadataProperties "to add or update"; CustomerMetadataPropertiesToRemove
    removes); moto sets them to None when the request has none, which would erase a
    package's lineage at approval (approve-model sends only the status).
    """
    import inspect  # noqa: PLC0415

    from moto.sagemaker.models import SageMakerModelBackend  # noqa: PLC0415 - dev dependency

    original = SageMakerModelBackend.update_model_package
    signature = inspect.signature(original)

    def keeping(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs)
        if call.arguments.get("customer_metadata_properties") is None:
            arn = call.arguments["model_package_arn"]
            package = self.model_packages.get(self.model_package_name_mapping.get(arn, arn))
            if package is not None:
                call.arguments["customer_metadata_properties"] = (
                    package.customer_metadata_properties
                )
        return original(*call.args, **call.kwargs)

    SageMakerModelBackend.update_model_package = keeping


def _update_endpoint_completes_at_once() -> None:
    """Give moto the UpdateEndpoint it lacks: the endpoint moves to the new config at once.

    SageMaker runs a blue/green update (DeploymentConfig) and the endpoint is `Updating`
    until the new fleet serves; locally there is no fleet, so the update is the end state:
    the new EndpointConfigName, its variants and data capture, `InService`. A second
    approval in one local session (the demo's retrain) then deploys as it would in AWS.
    """
    from moto.core.responses import ActionResult  # noqa: PLC0415 - dev dependency
    from moto.sagemaker.exceptions import ValidationError  # noqa: PLC0415
    from moto.sagemaker.models import SageMakerModelBackend  # noqa: PLC0415
    from moto.sagemaker.responses import SageMakerResponse  # noqa: PLC0415

    def update(self: Any, endpoint_name: str, endpoint_config_name: str) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            raise ValidationError(message=f"Could not find endpoint '{endpoint_name}'.")
        config = self.describe_endpoint_config(endpoint_config_name)
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.data_capture_config = config["DataCaptureConfig"]
        endpoint.endpoint_status = "InService"
        return endpoint

    def respond(self: Any) -> Any:
        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerModelBackend.update_endpoint = update
    SageMakerResponse.update_endpoint = respond


def serve() -> int:
    """The server process: listen, say the port on stdout, serve until stdin closes."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - dev dependency, imported on use

    _keep_package_metadata_on_update()
    _update_endpoint_completes_at_once()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    sys.stdout.write(f"port {port}\n")
    sys.stdout.flush()
    sys.stdin.buffer.read()  # returns at end of file: the parent closed the pipe or died
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
