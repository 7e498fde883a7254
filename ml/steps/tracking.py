"""MLflow for the step jobs: one run per pipeline execution, logged by a worker process.

train-model creates the run and evaluate-model resumes it (`mlflow_run_id` in model.json).
This module travels with both scripts (their code bundle, ml/pipeline/code.py) and uses
only the standard library itself; the worker imports mlflow (with the sagemaker-mlflow
plugin in AWS, where the URI is the tracking server's ARN) and, for the confusion matrix,
matplotlib.

Why a worker: importing mlflow and opening its store costs a job seconds (measured about
2 s for the client, 1.5 s more for a SQLite store, 1 s for matplotlib) while the job's own
work leaves a core idle. `TrackedRun.start` starts `python tracking.py --worker` first
thing; the job trains or scores meanwhile, sends what to log without waiting, and at the
end waits only for what is left (`finish`).

Protocol: JSON lines. The job writes requests to the worker's stdin, the worker answers
each, in order, with one line on stdout: `{"ok": true, ...}` or `{"ok": false, "error":
"<one line>"}`. The first request opens the run (`open`); then `batch` (metrics, params,
tags), `artifact` (a file, into a folder), `confusion_matrix` (rendered to a PNG, then
logged) and `end` (the run's status).

Failures: a run that cannot be opened fails the job (`TrackingError`, raised by `run_id`
or `check`); a logging call that fails after that is a warning line, never a lost model.
Without `MLFLOW_TRACKING_URI`, nothing starts and mlflow is never imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"
ENV_EXPERIMENT = "MLFLOW_EXPERIMENT_NAME"
ENV_COMMIT = "PROMOTE_COMMIT"
ENV_TRAINING_IMAGE = "PROMOTE_TRAINING_IMAGE"
ENV_EXECUTION_ARN = "PROMOTE_PIPELINE_EXECUTION_ARN"
ABSENT = "none"
"""The value of a tag (or package metadata) whose fact is unknown: never empty."""


DATA_REPORT_FILE = "data_report.json"


def data_sha256(train_dir: Path | None) -> str:
    """The dataset hash preprocess-data wrote beside the train split ("none" if unknown)."""
    report = None if train_dir is None else train_dir / DATA_REPORT_FILE
    if report is None or not report.is_file():
        return ABSENT
    value = json.loads(report.read_text()).get("input_sha256")
    return str(value) if value else ABSENT


class TrackingError(RuntimeError):
    """The MLflow run cannot be opened; the message names the server and why."""


def one_line(error: BaseException | str) -> str:
    """The first line of an error, at most 300 characters."""
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0][:300]


def run_tags(environ: Mapping[str, str], data_hash: str) -> dict[str, str]:
    """The run's lineage tags: commit, training image and digest, dataset hash, execution
    and stack ("none" for what the job's environment does not say)."""
    image = environ.get(ENV_TRAINING_IMAGE, "")
    return {
        "commit": environ.get(ENV_COMMIT) or ABSENT,
        "training_image": image or ABSENT,
        "training_image_digest": image.rpartition("@")[2] if "@" in image else ABSENT,
        "data_sha256": data_hash or ABSENT,
        "pipeline_execution_arn": environ.get(ENV_EXECUTION_ARN) or ABSENT,
        "stack": environ.get(ENV_EXPERIMENT) or ABSENT,
    }


def _spawn(environment: Mapping[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(environment),
        text=True,
    )


_early: tuple[str, subprocess.Popen[str]] | None = None


def start_worker_early() -> None:
    """Start the worker for this job's environment now, if it is tracked.

    A step script calls this before its own heavy imports (numpy, pandas, scikit-learn:
    about a second), so the worker imports mlflow and opens the store meanwhile, on the
    other core; `TrackedRun.start` adopts it.
    """
    global _early  # noqa: PLW0603 - one worker per job process
    uri = os.environ.get(ENV_TRACKING_URI)
    if uri and _early is None:
        _early = (uri, _spawn(os.environ))


def _adopt_early_worker(uri: str) -> subprocess.Popen[str] | None:
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if early[0] == uri and early[1].poll() is None:
        return early[1]
    early[1].kill()  # started for another store (or already gone): not this run's
    early[1].wait()
    return None


class TrackedRun:
    """The job's side of the worker: requests go out at once, answers are read when needed."""

    def __init__(self, process: subprocess.Popen[str], uri: str, opening: str) -> None:
        self._process = process
        self.uri = uri
        self._opening = opening
        self._sent: list[str] = []  # what each request logs, in order, for warnings
        self._answered = 0
        self._run_id: str | None = None
        self._open_error: str | None = None
        self.warnings: list[str] = []

    @classmethod
    def start(
        cls,
        environ: Mapping[str, str],
        *,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        untracked_hint: str = "run untracked",
    ) -> TrackedRun | None:
        """Start the worker and ask it to open the run; None without a tracking URI.

        `run_id`: resume that run (evaluate-model); else create one named after the
        pipeline execution in the experiment `MLFLOW_EXPERIMENT_NAME`, with `tags`.
        """
        uri = environ.get(ENV_TRACKING_URI)
        if not uri:
            return None
        process = _adopt_early_worker(uri) or _spawn({**os.environ, **environ})
        which = f"open run {run_id}" if run_id else "create the run"
        run = cls(
            process,
            uri,
            f"MLflow {uri}: cannot {which} ({{}}); unset {ENV_TRACKING_URI} to {untracked_hint}",
        )
        run._send(
            "the run",
            op="open",
            uri=uri,
            experiment=environ.get(ENV_EXPERIMENT) or "Default",
            run_name=environ.get(ENV_EXECUTION_ARN, "").rpartition("/")[2] or None,
            run_id=run_id,
            tags=dict(tags or {}),
        )
        return run

    # -- the run ---------------------------------------------------------------------------
    def check(self) -> None:
        """Raise TrackingError now if the worker has already failed to open the run."""
        if self._answered == 0 and self._readable():
            self._read_open()
        if self._open_error is not None:
            raise TrackingError(self._opening.format(self._open_error))

    def run_id(self) -> str:
        """The run's id, once the worker has opened it (waits); TrackingError if it cannot."""
        if self._answered == 0:
            self._read_open()
        if self._open_error is not None:
            raise TrackingError(self._opening.format(self._open_error))
        assert self._run_id is not None
        return self._run_id

    # -- what to log (sent now, answered at `finish`) --------------------------------------
    def log_batch(
        self,
        what: str,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Metrics (one value each, now), params (as text) and tags, in one call."""
        self._send(
            what,
            op="batch",
            metrics={k: float(v) for k, v in sorted((metrics or {}).items())},
            params={k: str(v) for k, v in sorted((params or {}).items())},
            tags={k: str(v) for k, v in sorted((tags or {}).items())},
            stamp=int(time.time() * 1000),
        )

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        """A file (it must exist until `finish`), into `folder` of the run's artifacts."""
        self._send(path.name, op="artifact", path=str(path.resolve()), folder=folder)

    def log_confusion_matrix(
        self, rows: Mapping[str, Mapping[str, int]], title: str, path: Path
    ) -> None:
        """The matrix (reference -> prediction -> count), drawn as the PNG `path`, logged."""
        self._send(path.name, op="confusion_matrix", rows=rows, title=title, path=str(path))

    def finish(self, status: str = "FINISHED") -> list[str]:
        """End the run with `status`, wait for every answer, stop the worker; the warnings
        (also printed to stderr), one per request that failed."""
        if self._open_error is None:
            self._send("the run's end", op="end", status=status)
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # a worker that died: `_answer` says so
                self._process.stdin.close()
        if self._answered == 0:
            self._read_open()
        if self._open_error is None:
            while self._answered < len(self._sent):
                what = self._sent[self._answered]
                answer = self._answer()
                if not answer.get("ok"):
                    self._warn(what, str(answer.get("error")))
        self._process.wait()
        return self.warnings

    # -- the pipe --------------------------------------------------------------------------
    def _send(self, what: str, **request: Any) -> None:
        if self._open_error is not None or self._process.stdin is None:
            return
        self._sent.append(what)
        try:
            self._process.stdin.write(json.dumps(request, sort_keys=True) + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the worker is gone: `_answer` reports it

    def _answer(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        self._answered += 1
        if not line:
            code = self._process.wait()
            return {"ok": False, "error": f"the tracking worker exited with status {code}"}
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _read_open(self) -> None:
        answer = self._answer()
        if answer.get("ok"):
            self._run_id = str(answer["run_id"])
        else:
            self._open_error = str(answer.get("error"))

    def _readable(self) -> bool:
        stdout = self._process.stdout
        return stdout is not None and bool(select.select([stdout], [], [], 0)[0])

    def _warn(self, what: str, error: str) -> None:
        line = f"warning: MLflow {self.uri}: could not log {what} to run {self._run_id}: {error}"
        self.warnings.append(line)
        print(line, file=sys.stderr)


# -- the worker ------------------------------------------------------------------------------
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

        warm = self._warm
        same = warm is not None and warm[0] == request["uri"]
        self.client = (
            warm[1]
            if warm is not None and same
            else mlflow.MlflowClient(tracking_uri=request["uri"])
        )
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
    if sys.argv[1:] != ["--worker"]:
        sys.exit("usage: tracking.py --worker (started by train.py and evaluate.py)")
    # Answers get their own copy of stdout; anything a library prints goes to stderr (the
    # job's log) instead of into the protocol.
    answer_pipe = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(serve(sys.stdin, answer_pipe))
