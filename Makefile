# The README's two commands: `make demo` and `make test`. Each sets itself up with uv.
# uv from PATH, else the one pip installs for this Python (run as `python3 -m uv`).
UV ?= $(shell command -v uv 2>/dev/null || echo python3 -m uv)
STACKS := ops dev staging prod

.PHONY: setup demo plan test lint typecheck unit bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet --user uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen

plan: setup
	$(UV) run promote plan --json --policies

demo: plan
	$(UV) run promote pipeline run --local --stack dev

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: setup
	$(UV) run mypy

unit: setup
	$(UV) run pytest

test: lint typecheck unit

bench: setup
	$(UV) run python benchmarks/run.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
