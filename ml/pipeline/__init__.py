"""The training pipeline: definition builder (sagemaker SDK v3, offline), step code, DAG helpers."""
