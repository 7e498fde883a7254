# The README's two commands: `make demo` and `make test`. Each sets itself up with uv.
UV ?= uv
STACKS := ops dev staging prod

.PHONY: setup demo plan test lint typecheck unit bench clean

setup:
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet --user uv
	$(UV) sync --frozen

plan: setup
	$(UV) run promote plan --json

demo: plan

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
