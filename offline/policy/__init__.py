"""The engine side of CrossGuard, offline: the policy pack run over captured plans.

| module | holds |
|---|---|
| `runner.py` | `PolicyPackProcess` (the RPCs, one deadline) and `analyze_plans` |
| `process.py` | starting the pack as the engine does, in its own process group, and ending it |
| `protocol.py` | engine-style value marshalling, Analyze/AnalyzeStack/Configure messages |
| `config.py` | the `--policy-pack-config` file: loading, parsing, reconciling, refusing weakening |
| `report.py` | violations and the per-stack report |
| `errors.py` | the failures (with their exit codes) and the deadline |
"""
