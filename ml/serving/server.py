"""`serve` for the training image: SageMaker's hosting contract on port 8080.

`GET /ping` answers 200 once the model is loaded; `POST /invocations` runs
input_fn -> predict_fn -> output_fn. Small on purpose (stdlib HTTP server,
threaded): the endpoint classifies short notes with a linear model.
"""

from __future__ import annotations

import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ml.serving.inference import (
    InferenceError,
    LoadedModel,
    input_fn,
    model_fn,
    output_fn,
    predict_fn,
)

MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's real-time payload limit


def make_handler(model: LoadedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: HTTPStatus, body: str, content_type: str = "text/plain") -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._reply(HTTPStatus.OK, "")
            else:
                self._reply(HTTPStatus.NOT_FOUND, "not found")

        def do_POST(self) -> None:
            if self.path != "/invocations":
                self._reply(HTTPStatus.NOT_FOUND, "not found")
                return
            raw_length = (self.headers.get("Content-Length") or "0").strip()
            # int() alone would accept "+5", " 5" or "1_0"; only plain digits are a length.
            if not raw_length.isascii() or not raw_length.isdigit():
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    f"invalid Content-Length {raw_length!r}: a non-negative integer is required",
                )
                return
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "payload too large")
                return
            body = self.rfile.read(length)
            if len(body) < length:
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    f"the body ended after {len(body)} of {length} bytes (Content-Length)",
                )
                return
            try:
                notes = input_fn(body, self.headers.get("Content-Type"))
                response, content_type = output_fn(
                    predict_fn(notes, model), self.headers.get("Accept")
                )
            except InferenceError as error:
                self._reply(HTTPStatus.BAD_REQUEST, str(error))
                return
            self._reply(HTTPStatus.OK, response, content_type)

    return Handler


def main() -> int:
    model = model_fn(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(model))  # noqa: S104
    print(f"serving {len(model.labels)} labels on :{port}", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
