"""The tracking worker: the process that imports mlflow and logs a job's run.

Started by tracking.py (`TrackedRun.start`, `start_worker_early`) as `python
tracking_worker.py` beside the job's script, in the job's environment. Before its first
request it imports mlflow and opens the store of `MLFLOW_TRACKING_URI` (a lookup of the
experiment), the slow part, while the job is still loading; then it answers each JSON-line
request on stdin with one line on a private copy of stdout (see tracking.py for the
protocol). Anything a library prints goes to stderr, the job's log.

Part of the train and evaluate code bundles (stdlib; mlflow, matplotlib).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

if __package__:  # imported as ml.steps.tracking_worker (tests)
    from ml.steps.tracking import ENV_EXPERIMENT, ENV_TRACKING_URI, one_line
else:  # run as the worker: tracking.py is beside it
    from tracking import ENV_EXPERIMENT, ENV_TRACKING_URI, one_line  # type: ignore[no-redef]


class _Worker:
    """Runs the requests against the MLflow client (imported here, not in the job)."""

    def __init__(self) -> None:
        self.client: Any = None
        self.run_id: str | None = None
        self._warm: tuple[str, Any] | None = None

    def handle(self, request: Mapping[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "open":
            return {"ok": True, "run_id": self.open(request)}
        if self.client is None or self.run_id is None:
            return {"ok": False, "error": "no open run"}
        if op == "batch":
            self.batch(request)
        elif op == "artifact":
            self.client.log_artifact(self.run_id, request["path"], request["folder"])
        elif op == "confusion_matrix":
            path = draw_confusion_matrix(request["rows"], request["title"], Path(request["path"]))
            self.client.log_artifact(self.run_id, str(path))
        elif op == "end":
            self.client.set_terminated(self.run_id, request["status"])
        else:
            return {"ok": False, "error": f"unknown request {op!r}"}
        return {"ok": True}

    def warm_up(self, environ: Mapping[str, str]) -> None:
        """Import mlflow and open the store now; a failure is left for `open` to report."""
        uri, name = environ.get(ENV_TRACKING_URI), environ.get(ENV_EXPERIMENT) or "Default"
        if not uri:
            return
        with contextlib.suppress(Exception):
            import mlflow  # noqa: PLC0415 - the worker is the only process that pays for it

            client = mlflow.MlflowClient(tracking_uri=uri)
            client.get_experiment_by_name(name)
            self._warm = (uri, client)

    def open(self, request: Mapping[str, Any]) -> str:
        import mlflow  # noqa: PLC0415 - the worker is the only process that pays for it

        warm_uri, warm_client = self._warm or (None, None)
        same = warm_uri == request["uri"]
        self.client = warm_client if same else mlflow.MlflowClient(tracking_uri=request["uri"])
        if request.get("run_id"):
            self.client.update_run(request["run_id"], status="RUNNING")
            self.run_id = str(request["run_id"])
            return self.run_id
        name = request["experiment"]
        found = self.client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else self.client.create_experiment(name)
        run = self.client.create_run(experiment, run_name=request["run_name"], tags=request["tags"])
        self.run_id = str(run.info.run_id)
        return self.run_id

    def batch(self, request: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric, Param, RunTag  # noqa: PLC0415

        stamp = request["stamp"]
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in request["metrics"].items()],
            params=[Param(k, v) for k, v in request["params"].items()],
            tags=[RunTag(k, v) for k, v in request["tags"].items()],
        )


def draw_confusion_matrix(rows: Mapping[str, Mapping[str, int]], title: str, path: Path) -> Path:
    """The confusion matrix as a PNG (rows: reference, columns: prediction)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    labels = list(rows)
    matrix = [[float(rows[r][c]) for c in labels] for r in labels]
    size = max(6.0, 0.3 * len(labels) + 3)
    figure = Figure(figsize=(size, size), dpi=100, layout="tight")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.04)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("reference")
    axes.set_title(title)
    figure.savefig(path)
    return path


def serve(requests: IO[str], answers: IO[str]) -> int:
    """The worker's loop: one answer line per request line, until the job closes stdin.

    Before the first request, it imports mlflow and opens the store of the environment's
    URI (a lookup of its experiment), the slow part, while the job is still loading.
    """
    worker = _Worker()
    worker.warm_up(os.environ)
    for line in requests:
        try:
            answer = worker.handle(json.loads(line))
        except Exception as error:  # every failure is an answer; the job decides what it means
            answer = {"ok": False, "error": one_line(error)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:]:
        sys.exit("usage: tracking_worker.py (started by tracking.py, for train.py and evaluate.py)")
    # Answers get their own copy of stdout; anything a library prints goes to stderr (the
    # job's log) instead of into the protocol.
    answer_pipe = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(serve(sys.stdin, answer_pipe))
