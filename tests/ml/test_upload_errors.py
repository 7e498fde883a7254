"""ml.data.upload against AWS that says no: one line and a documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from moto import mock_aws

from infra.context import REPO_ROOT
from ml.data import upload


def test_a_bucket_that_does_not_exist_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        code = upload.main(["--bucket", "no-such-bucket", "--region", "eu-west-1"])
    assert code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("upload failed: s3://no-such-bucket: NoSuchBucket")


def test_unreachable_s3_says_retry_later() -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "ml.data.upload", "--bucket", "b", "--region", "eu-west-1"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == upload.EXIT_RETRY
    assert "S3 is unreachable" in result.stderr and "Traceback" not in result.stderr
