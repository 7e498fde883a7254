"""The training pipeline: `contract` (steps, parameters, paths, PipelineConfig), `steps` (built with
the sagemaker SDK v3), `definition` (the canonical JSON), `sdk_isolation` (the SDK kept away from
AWS while it builds), `code` (the step scripts, content-addressed)."""
