"""MLflow for the step jobs: one run per pipeline execution, logged by a worker process.

train-model creates the run and evaluate-model resumes it (`mlflow_run_id` in model.json).
This module (the job's side) and tracking_worker.py (the worker) travel with both scripts
(their code bundle, ml/pipeline/code.py). This one uses only the standard library; the
worker imports mlflow (with the sagemaker-mlflow plugin in AWS, where the URI is the
tracking server's ARN) and, for the confusion matrix, matplotlib.

Why a worker: importing mlflow and opening its store costs a job seconds (measured about
2 s for the client, 1.5 s more for a SQLite store, 1 s for matplotlib) while the job's own
work leaves a core idle. The script calls `start_worker_early` before its own imports
(`TrackedRun.start` adopts that worker, or starts `python tracking_worker.py` itself);
the job trains or scores meanwhile, sends what to log without waiting, and at the end
waits only for what is left (`finish`).

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

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
        [sys.executable, str(Path(__file__).resolve().with_name("tracking_worker.py"))],
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
        atexit.register(_stop_unadopted)


def _adopt_early_worker(uri: str | None) -> subprocess.Popen[str] | None:
    """The early worker if it was started for `uri` and still runs; any other is stopped."""
    global _early
    early, _early = _early, None
    if early is None:
        return None
    if early[0] == uri and early[1].poll() is None:
        return early[1]
    early[1].kill()
    early[1].wait()
    return None


def _stop_unadopted() -> None:
    """At exit: a job that failed before its run was opened leaves no worker behind (one
    still warming up against an unreachable server would outlive it by minutes)."""
    _adopt_early_worker(None)


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
