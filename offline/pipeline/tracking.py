"""The MLflow store local jobs log to in place of the stack's SageMaker tracking server.

A job whose environment names the stack's SageMaker MLflow tracking server
(`MLFLOW_TRACKING_URI` = its ARN) gets the local store instead (`LocalTracking.apply`);
nothing else of its environment changes, so the step code is the code that runs in AWS
and only the URI differs. A file-backed store gets its experiments created first, with
their artifacts where the run keeps them (`prepare_in_background` starts that while the
first jobs run).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
_TRACKING_SERVER_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-tracking-server/[A-Za-z0-9-]+$"
)


@dataclass
class LocalTracking:
    """The MLflow store that stands in for the stack's tracking server in local jobs.

    `uri` None: jobs run untracked (the variable is removed, as a stack without a
    tracking server passes none), which is how the cost of tracking is measured.
    `artifact_root`: for a file-backed store (SQLite), where experiments keep their
    artifacts; the experiment is created there before the first job logs to it,
    because a store opened by URI alone would put them under the job's working
    directory (`./mlruns`). A server URI (http://...) leaves that to the server.
    """

    uri: str | None
    artifact_root: Path | None = None
    _prepared: set[str] = field(default_factory=set)
    _pending: threading.Thread | None = None
    _failure: BaseException | None = None

    def prepare_in_background(self, experiment: str) -> None:
        """Create `experiment` while the first jobs run: importing mlflow and opening the
        store take the runner seconds it would otherwise spend before the first tracked job."""

        def prepare() -> None:
            try:
                self._prepare(experiment)
            except BaseException as error:  # re-raised by apply(), in the runner's thread
                self._failure = error

        self._pending = threading.Thread(target=prepare, name="mlflow-experiment", daemon=True)
        self._pending.start()

    def apply(self, environment: dict[str, str]) -> None:
        """Point a job that names a SageMaker tracking server at this store."""
        if not _TRACKING_SERVER_ARN.match(environment.get(TRACKING_URI_ENV, "")):
            return
        if self.uri is None:
            environment.pop(TRACKING_URI_ENV)
            return
        environment[TRACKING_URI_ENV] = self.uri
        if self._pending is not None:
            self._pending.join()
            self._pending, failure, self._failure = None, self._failure, None
            if failure is not None:
                raise failure
        self._prepare(environment.get(EXPERIMENT_ENV) or "Default")

    def _prepare(self, experiment: str) -> None:
        if self.artifact_root is None or self.uri is None or experiment in self._prepared:
            return
        import mlflow  # noqa: PLC0415 - only a tracked local run needs it

        self.artifact_root.mkdir(parents=True, exist_ok=True)
        client = mlflow.MlflowClient(tracking_uri=self.uri)
        if client.get_experiment_by_name(experiment) is None:
            location = self.artifact_root / experiment
            client.create_experiment(experiment, artifact_location=str(location))
        self._prepared.add(experiment)
