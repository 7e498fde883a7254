"""`serve` for the training image: SageMaker's hosting contract on port 8080, via gunicorn.

`GET /ping` answers 200 once the model is loaded; `POST /invocations` runs
input_fn -> predict_fn -> output_fn. The app is plain WSGI (`make_app`), served by
gunicorn as SageMaker's own framework containers do: the model is loaded once
before the workers fork (copy-on-write), one worker per CPU core the container may
use, unless `SAGEMAKER_MODEL_SERVER_WORKERS` says otherwise;
`SAGEMAKER_MODEL_SERVER_TIMEOUT` (seconds, default 60) bounds a request.
`SAGEMAKER_BIND_TO_PORT` (default 8080) and `SERVING_BIND_HOST` (default 0.0.0.0)
set the address.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any

from ml.serving.inference import (
    InferenceError,
    LoadedModel,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit
DEFAULT_TIMEOUT_SECONDS = 60
BACKLOG = 2048
SHM = "/dev/shm"  # noqa: S108 - a memory filesystem, not a shared temporary path

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _reply(
    start_response: StartResponse,
    status: HTTPStatus,
    body: str,
    content_type: str = "text/plain",
) -> list[bytes]:
    data = body.encode("utf-8")
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", content_type), ("Content-Length", str(len(data)))],
    )
    return [data]


def _invoke(
    model: LoadedModel, environ: dict[str, Any], start_response: StartResponse
) -> list[bytes]:
    raw_length = str(environ.get("CONTENT_LENGTH") or "0").strip()
    # int() alone would accept "+5", " 5" or "1_0"; only plain digits are a length.
    if not raw_length.isascii() or not raw_length.isdigit():
        return _reply(
            start_response,
            HTTPStatus.BAD_REQUEST,
            f"invalid Content-Length {raw_length!r}: a non-negative integer is required",
        )
    length = int(raw_length)
    if length > MAX_BODY_BYTES:
        return _reply(start_response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload too large")
    body = environ["wsgi.input"].read(length) if length else b""
    if len(body) < length:
        return _reply(
            start_response,
            HTTPStatus.BAD_REQUEST,
            f"the body ended after {len(body)} of {length} bytes (Content-Length)",
        )
    try:
        notes = input_fn(body, environ.get("CONTENT_TYPE"))
        response, content_type = output_fn(predict_fn(notes, model), environ.get("HTTP_ACCEPT"))
    except InferenceError as error:
        return _reply(start_response, HTTPStatus.BAD_REQUEST, str(error))
    return _reply(start_response, HTTPStatus.OK, response, content_type)


def make_app(model: LoadedModel) -> WsgiApp:
    """The WSGI application of the endpoint for `model`."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/ping" and method in ("GET", "HEAD"):
            return _reply(start_response, HTTPStatus.OK, "")
        if path == "/invocations" and method == "POST":
            return _invoke(model, environ, start_response)
        return _reply(start_response, HTTPStatus.NOT_FOUND, "not found")

    return app


def worker_count(environ: Mapping[str, str]) -> int:
    """SAGEMAKER_MODEL_SERVER_WORKERS, else the CPU cores this process may run on."""
    configured = environ.get("SAGEMAKER_MODEL_SERVER_WORKERS", "").strip()
    if configured:
        if not configured.isdigit() or int(configured) < 1:
            raise ValueError(
                f"SAGEMAKER_MODEL_SERVER_WORKERS must be a positive integer, got {configured!r}"
            )
        return int(configured)
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def gunicorn_options(environ: Mapping[str, str]) -> dict[str, Any]:
    host = environ.get("SERVING_BIND_HOST", "0.0.0.0")  # noqa: S104 - the container's port
    port = environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
    return {
        "bind": f"{host}:{port}",
        "workers": worker_count(environ),
        "worker_class": "sync",
        "timeout": int(environ.get("SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)),
        "backlog": BACKLOG,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "limit_request_line": 8190,
        # The workers' heartbeat file: on a disk-backed /tmp its fchmod can stall a
        # worker (gunicorn's docs); the container's /dev/shm is memory.
        "worker_tmp_dir": SHM if Path(SHM).is_dir() else None,
    }


def main() -> int:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only the container serves

    try:
        options = gunicorn_options(os.environ)
    except ValueError as error:
        print(f"serve failed: {error}", file=sys.stderr)
        return 2
    model = model_fn(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    application = make_app(model)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> WsgiApp:
            return application

    print(
        f"serving {len(model.labels)} labels on {options['bind']} "
        f"with {options['workers']} worker(s)",
        file=sys.stderr,
    )
    Server().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
