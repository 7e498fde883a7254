"""Drift monitoring of an endpoint's captured traffic against its model's baseline.

- `capture`: SageMaker data-capture JSONL -> the notes the endpoint classified and what it
  answered (the request bodies are split by the serving code's own `input_fn`);
- `baseline`: the drift baseline evaluate-model writes with every model
  (`drift_baseline.json`) and the text features both sides compute from it;
- `drift`: the comparison (Jensen-Shannon distance per component, one score, a verdict);
- `report`: the JSON report and its PNG plot;
- `metrics`: the CloudWatch metrics the drift alarm watches;
- `config`: the job's configuration, read and checked from its environment;
- `window`: a scheduled run's window and the capture objects in it, read from S3;
- `job`: the monitoring job (`docker run <training image> monitor`, Model Monitor's
  bring-your-own-container contract).

Baked into the training image (ml/images/training/Dockerfile), so it may import
`ml.serving`; it never imports `offline` or `infra`.
"""
