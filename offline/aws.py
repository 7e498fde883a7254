"""Local AWS for the local pipeline run: moto's server on 127.0.0.1, on a free port.

`local_aws()` starts it, yields where it listens and how to reach it, and stops
it on the way out, whether the body returns, raises or is interrupted (Ctrl-C
raises KeyboardInterrupt in the main thread, which unwinds through the
`finally`). The server thread is a daemon too, so a hard exit cannot hang on it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
"""moto accepts any credentials; these make sure real ones are never used."""


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    region: str

    def client(self, service: str) -> Any:
        """A boto3 client of `service` bound to the local server."""
        return boto3.session.Session(region_name=self.region, **LOCAL_CREDENTIALS).client(
            service, endpoint_url=self.endpoint_url
        )

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


@contextmanager
def local_aws(region: str, account_id: str | None = None) -> Iterator[LocalAws]:
    """Run moto's server on 127.0.0.1 (port chosen by the OS) for the duration of the block.

    With `account_id`, every resource lives in that account (ARNs look like the
    stack's); the server runs in this process, so moto reads it from here.
    """
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - dev dependency, imported on use

    if account_id is not None and not (len(account_id) == 12 and account_id.isdigit()):
        raise ValueError(f"account_id must be 12 digits, got {account_id!r}")
    request_log = logging.getLogger("werkzeug")  # one INFO line per request otherwise
    previous_level = request_log.level
    previous_account = os.environ.get("MOTO_ACCOUNT_ID")
    request_log.setLevel(logging.WARNING)
    if account_id is not None:
        os.environ["MOTO_ACCOUNT_ID"] = account_id
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield LocalAws(endpoint_url=f"http://{host}:{port}", region=region)
    finally:
        server.stop()
        request_log.setLevel(previous_level)
        if previous_account is None:
            os.environ.pop("MOTO_ACCOUNT_ID", None)
        else:
            os.environ["MOTO_ACCOUNT_ID"] = previous_account
