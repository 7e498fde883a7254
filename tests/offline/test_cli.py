"""`promote plan` and `promote pipeline run --local`, as `make demo` runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offline.cli import main
from tests.plan_helpers import TEST_TAG


def test_plan_writes_every_stack_pipeline_and_diagram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "plan"
    assert main(["plan", "--json", "--out", str(out), "--image-tag", TEST_TAG]) == 0
    printed = capsys.readouterr().out
    for stack in ("ops", "dev", "staging", "prod"):
        assert f"== stack {stack}:" in printed
        assert f"{stack}: no policy violations" in printed
        document = json.loads((out / f"{stack}.json").read_text())
        assert document["stack"] == stack and document["resources"]
    for stack in ("dev", "staging", "prod"):
        definition = json.loads((out / stack / "pipeline.json").read_text())
        assert [p["Name"] for p in definition["Parameters"]]
        assert (out / stack / "pipeline.mmd").read_text().startswith("flowchart TD")
    assert not (out / "ops").exists()


def test_local_run_ends_with_a_deployed_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # The end-to-end run behind this command (plan -> every step -> deployer) is
    # tests/offline/test_local_run.py's shared `demo`; here: the command hands it over as is.
    handed: list[list[str]] = []

    def run_locally(argv: list[str]) -> int:
        handed.append(argv)
        return 75

    monkeypatch.setattr("offline.cli.run_locally", run_locally)
    code = main(
        ["pipeline", "run", "--local", "--plan-dir", "plan", "--workdir", "work", "--dataset", "d"]
    )
    assert code == 75  # the run's exit status is the command's
    assert handed == [
        ["--stack", "dev", "--plan-dir", "plan", "--deploy", "--workdir", "work", "--dataset", "d"]
    ]


def test_pipeline_run_needs_a_plan_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["pipeline", "run", "--local", "--plan-dir", str(tmp_path)])
    assert code == 2
    assert "run `promote plan --json` first" in capsys.readouterr().err


def test_pipeline_run_without_local_points_to_the_real_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["pipeline", "run", "--stack", "prod"]) == 2
    assert "aws sagemaker start-pipeline-execution" in capsys.readouterr().err


def test_an_unwritable_out_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code = main(["plan", "--stack", "dev", "--json", "--no-policies", "--out", str(blocker / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the plan under --out {blocker / 'x'}")
    assert "Traceback" not in err
