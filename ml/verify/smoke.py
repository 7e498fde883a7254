"""The smoke test: a few notes, one a request, each answered with status 200 and one
well-formed prediction, the p95 latency within the budget.

`Invoke` is how a request is sent: `endpoint_invoker` to the SageMaker endpoint through
the runtime API, or any function that answers as the endpoint does (the local run's
serving code).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ml.verify.inputs import Budget, CheckFailedError

Invoke = Callable[[bytes, str], tuple[int, bytes]]
"""Send one request body with a content type; return (HTTP status, response body)."""


def _well_formed(prediction: object) -> bool:
    """A label, and a probability in [0, 1] or (for margin classifiers) a numeric score."""
    if not isinstance(prediction, dict):
        return False
    label, probability, score = (prediction.get(k) for k in ("label", "probability", "score"))
    if not isinstance(label, str) or not label:
        return False
    if isinstance(probability, int | float) and not isinstance(probability, bool):
        return 0.0 <= probability <= 1.0
    return probability is None and isinstance(score, int | float) and not isinstance(score, bool)


def smoke_test(invoke: Invoke, notes: Sequence[str], budget: Budget) -> dict[str, Any]:
    """One note per request; every answer 200, one prediction per note, p95 within budget."""
    latencies: list[float] = []
    for note in notes:
        body = json.dumps({"instances": [note]}).encode()
        started = time.perf_counter()
        status, answer = invoke(body, "application/json")
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise CheckFailedError(f"a smoke request answered {status}: {answer[:200]!r}")
        try:
            (prediction,) = json.loads(answer)["predictions"]
        except (ValueError, KeyError, TypeError) as error:
            raise CheckFailedError(
                f"a smoke answer is not one prediction: {answer[:200]!r} ({error})"
            ) from None
        if not _well_formed(prediction):
            raise CheckFailedError(f"a smoke answer is malformed: {str(prediction)[:200]}")
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    if p95 > budget.smoke_p95_ms:
        raise CheckFailedError(
            f"smoke p95 latency {p95:.0f} ms is over {budget.smoke_p95_ms:.0f} ms"
        )
    return {"requests": len(notes), "p95_ms": round(p95, 1)}


def endpoint_invoker(runtime: Any, endpoint: str) -> Invoke:
    def invoke(body: bytes, content_type: str) -> tuple[int, bytes]:
        try:
            answer = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType=content_type,
                Accept="application/json",
                Body=body,
            )
        except runtime.exceptions.ModelError as error:
            return int(error.response.get("OriginalStatusCode", 500)), str(error).encode()
        status = int(answer["ResponseMetadata"]["HTTPStatusCode"])
        return status, bytes(answer["Body"].read())

    return invoke
