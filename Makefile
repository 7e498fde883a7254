# The README's two commands: `make demo` and `make test`. Each sets itself up with uv.
# uv from PATH, else the one pip installs for this Python (run as `python3 -m uv`).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
# Let Python cache bytecode: without it every process recompiles the sagemaker SDK (~3 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo plan test lint typecheck warm unit bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen

plan: setup
	$(UV) run promote plan --json --policies

# Plan every stack; prove a commit in staging locally (train, deploy, ml.verify); plan prod
# with that real record instead of the simulated one; run prod's drift loop (monitor, alarm,
# retraining trigger) on local AWS; then run dev's pipeline twice (the retrain meets the first
# run's model as its champion), tracked in build/local/mlflow, ending with the lineage chain.
demo: plan
	$(UV) run promote pipeline run --local --stack staging --verify
	$(UV) run promote plan --stack prod --json --policies
	$(UV) run promote monitor --local --stack prod
	$(UV) run promote pipeline run --local --stack dev --runs 2

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run lint-imports

typecheck: setup
	$(UV) run mypy

# What every test process imports (pytest's collection), imported once so that its bytecode
# is compiled: on a fresh venv both workers and the jobs would each compile it (measured
# 10 s of `make test`). `make test` runs it beside mypy, which uses one core.
warm: setup
	$(UV) run pytest --collect-only -q -p no:cacheprovider >/dev/null

# Two workers, whole modules each (a module's fixtures, such as the demo run, run once);
# tests/conftest.py sends the longest modules out first.
unit: setup
	$(UV) run pytest -n 2 --dist loadfile --no-loadscope-reorder

test: lint
	$(MAKE) --no-print-directory -j2 typecheck warm
	$(MAKE) --no-print-directory unit

bench: setup
	$(UV) run python benchmarks/plan_bench.py
	$(UV) run python benchmarks/policy_bench.py
	$(UV) run python benchmarks/ml_bench.py
	$(UV) run python benchmarks/deployer_bench.py
	$(UV) run python benchmarks/monitor_bench.py
	$(UV) run promote plan --stack dev --json --no-policies
	$(UV) run python benchmarks/tracking_bench.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
