"""The README's settings table is generated from the settings models and must not drift."""

from __future__ import annotations

from infra.context import REPO_ROOT
from infra.settings_reference import embed


def test_readme_settings_table_matches_the_models() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert embed(readme) == readme, "run: uv run python -m infra.settings_reference --write"
