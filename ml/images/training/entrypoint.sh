#!/bin/sh
# SageMaker starts a training container with "train" and an endpoint container with "serve";
# processing jobs set their own entrypoint (python3 /opt/ml/processing/input/code/<step>.py);
# the drift monitoring schedule's job definition passes "monitor" (ml/monitoring/job.py).
set -eu
case "${1:-}" in
  train)
    # The step script and its modules arrive as the job's "code" channel (a content-addressed
    # S3 prefix, ml/pipeline/code.py).
    exec python /opt/ml/input/data/code/train.py train
    ;;
  serve)
    exec python -m ml.serving.server
    ;;
  monitor)
    exec python -m ml.monitoring.job
    ;;
  *)
    exec "$@"
    ;;
esac
