"""Helpers for making and reading captured plans in tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.context import REPO_ROOT
from offline.plan.capture import CapturedResource

TEST_TAG = "0123456789abcdef0123456789abcdef01234567"
PLANNED_STACKS = ("identity", "ops", "dev", "staging", "prod")
"""What `promote plan` plans (tests/conftest.py `stack_plans`)."""
GUARD_REPORT = "guard.json"


def policy_document(resource: CapturedResource, key: str = "policy") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(resource.inputs[key])
    return document


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["Statement"]
    return body if isinstance(body, list) else [body]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verification_record(commit: str = TEST_TAG) -> dict[str, Any]:
    """A staging verification record with every check passed, as ml/verify/ writes it."""
    from infra.promotion import VERIFICATION_CHECKS  # noqa: PLC0415

    return {
        "commit": commit,
        "checks": {check: {"passed": True} for check in VERIFICATION_CHECKS},
    }


def hostile_plan(out: Path) -> None:
    """`promote plan --json --no-policies` of every stack into `out`, in a child that is
    hostile and guarded (tests.ml.guarded): another hash seed, no credentials, a stale
    profile, another default region, and every socket, DNS lookup and botocore request
    refused from interpreter start; its guard report is `out/GUARD_REPORT`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {
        "AWS_PROFILE": "no-such-profile",
        "AWS_DEFAULT_REGION": "us-west-2",
        "PYTHONHASHSEED": "random",
    }
    command = [sys.executable, "-m", "tests.ml.guarded", str(out / GUARD_REPORT), "offline.cli"]
    command += ["plan", "--json", "--no-policies", "--image-tag", TEST_TAG, "--out", str(out)]
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment, cwd=REPO_ROOT, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command[1:])} exited {done.returncode}:\n{done.stderr[-3000:]}")
