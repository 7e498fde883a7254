"""The drift loop, locally: real serving code -> SageMaker-format capture in moto's S3 ->
the monitoring job as the schedule starts it -> (prod) the drift alarm and the retraining
state machine of the stack's plan.

    promote monitor --local [--stack prod]    # python -m offline.monitoring

By concern:

- `traffic`: the scenarios' notes (`unchanged`, `one specialty`, `another domain`), sent
  through ml/serving/inference.py and written as SageMaker's data capture writes them
  (JSON Lines under `data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`);
- `job`: `MonitorTarget` (the account, the endpoint and the planned schedule's
  CreateProcessingJob request) and `run_monitor_job`, one scheduled run of the image's
  `monitor` entrypoint with its output uploaded where the request's `S3Output` says;
- `demo`: `run_drift_demo`, which trains with the pipeline's step code, registers the model
  with its drift baseline behind an endpoint in local AWS, then serves and monitors one
  hour per scenario, reading the published metrics back from local CloudWatch;
- `loop`: `main`, the command: the demo on the planned stack's names, then the planned
  drift alarm and (where the stack retrains on drift) the planned state machine
  (offline/retraining.py) after each run.

Everything is seeded: the same arguments give the same capture files and the same
scores. What its modules offer callers is importable from `offline.monitoring` itself.
"""

from offline.monitoring.demo import (
    START,
    MonitorRun,
    published_scores,
    register_and_serve,
    run_drift_demo,
    train_model,
)
from offline.monitoring.job import (
    JOB_TIMEOUT_SECONDS,
    MonitorTarget,
    plan_target,
    run_monitor_job,
    scheduled_time,
)
from offline.monitoring.loop import ALARM_DELAY, LOOP_SCENARIOS, loop_problem, main
from offline.monitoring.traffic import (
    CAPTURE_PREFIX,
    RECORDS_PER_FILE,
    SCENARIOS,
    SHIFTED_SPECIALTY,
    VARIANT,
    capture_key,
    capture_record,
    foreign_notes,
    scenario_notes,
    serve,
    write_capture,
)

__all__ = [
    "ALARM_DELAY",
    "CAPTURE_PREFIX",
    "JOB_TIMEOUT_SECONDS",
    "LOOP_SCENARIOS",
    "RECORDS_PER_FILE",
    "SCENARIOS",
    "SHIFTED_SPECIALTY",
    "START",
    "VARIANT",
    "MonitorRun",
    "MonitorTarget",
    "capture_key",
    "capture_record",
    "foreign_notes",
    "loop_problem",
    "main",
    "plan_target",
    "published_scores",
    "register_and_serve",
    "run_drift_demo",
    "run_monitor_job",
    "scenario_notes",
    "scheduled_time",
    "serve",
    "train_model",
    "write_capture",
]
