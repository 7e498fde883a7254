"""Fixtures of the policy tests.

The pack's rules are the top-level package `rules` inside `policies/` (the
engine runs the pack from that directory), so the tests import them the same
way; `policy_helpers` sits next to this file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from offline.policy.process import DEFAULT_PACK_DIR
from offline.policy.runner import PolicyPackProcess

for _path in (DEFAULT_PACK_DIR, Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    """One policy pack process per test module (start-up is the expensive part).

    Its deadline covers every call of the module's tests, hence longer than the CLI's.
    """
    with PolicyPackProcess(DEFAULT_PACK_DIR, project="promote-code", timeout=600) as process:
        yield process


@pytest.fixture(scope="session")
def committed_config() -> dict[str, dict[str, dict[str, object]]]:
    directory = Path(DEFAULT_PACK_DIR) / "config"
    return {
        stack: json.loads((directory / f"{stack}.json").read_text())
        for stack in ("ops", "dev", "staging", "prod")
    }
