"""`python -m offline.mlflow_ui`: the local MLflow store's UI, and what it says without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline import mlflow_ui


@pytest.mark.parametrize("command", ["serve", "screenshot"])
def test_no_store_yet_is_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mlflow_ui.main([command, "--store", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "mlflow.db does not exist; run `make demo` first" in err
    assert len(err.strip().splitlines()) == 1


def test_the_server_serves_only_loopback_from_the_store(tmp_path: Path) -> None:
    command = mlflow_ui.serve_command(tmp_path, 5055)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--backend-store-uri") + 1] == (
        f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    )
    assert "--store" in mlflow_ui.ui_hint(tmp_path)
