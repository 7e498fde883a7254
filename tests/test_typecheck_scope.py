"""mypy analyses exactly the pulumi_aws services the program uses (pyproject overrides).

pulumi_aws is skipped as a whole (3,140 modules: a cold mypy run took 80 s) except the
provider's top-level modules and the services named in the override. A service the
program starts to use without being named there would type-check as `Any`, silently; this
test fails instead, naming the module to add.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pulumi_aws

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("infra", "ml", "policies", "offline")
SERVICES = {p.name for p in Path(pulumi_aws.__file__).parent.iterdir() if p.is_dir()} - {
    "__pycache__"
}


def analysed_modules() -> set[str]:
    """The modules the mypy override sets back to `follow_imports = "normal"`."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    overrides = config["tool"]["mypy"]["overrides"]
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }


def services_used(source: str) -> Iterator[str]:
    """pulumi_aws services named in `source`: `aws.<service>.X`, `from pulumi_aws import
    <service>`, `import pulumi_aws.<service>`."""
    tree = ast.parse(source)
    aliases = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "pulumi_aws"
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in aliases and node.attr in SERVICES:
                yield node.attr
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pulumi_aws"):
            parts = (node.module or "").split(".")
            if len(parts) > 1:
                yield parts[1]
            else:
                yield from (a.name for a in node.names if a.name in SERVICES)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "pulumi_aws" and len(parts) > 1:
                    yield parts[1]


def test_every_service_the_program_uses_is_type_checked() -> None:
    used = {
        service: path.relative_to(REPO_ROOT)
        for package in PRODUCT
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        for service in services_used(path.read_text())
    }
    assert used, "no pulumi_aws service found: the scan is broken"
    analysed = analysed_modules()
    missing = {
        f"pulumi_aws.{service} (used in {where})"
        for service, where in used.items()
        if f"pulumi_aws.{service}" not in analysed or f"pulumi_aws.{service}.*" not in analysed
    }
    assert not missing, f"add to pyproject's mypy override (normal): {sorted(missing)}"


def test_the_scan_sees_each_way_of_naming_a_service() -> None:
    source = (
        "import pulumi_aws as aws\nimport pulumi_aws.sns\nfrom pulumi_aws import kms\n"
        "from pulumi_aws.ecs import Cluster\naws.iam.Role('r')\n"
    )
    assert set(services_used(source)) == {"sns", "kms", "ecs", "iam"}


def test_every_analysed_module_exists() -> None:
    root = Path(pulumi_aws.__file__).parent
    for module in analysed_modules():
        parts = module.removesuffix(".*").split(".")[1:]
        path = root.joinpath(*parts)
        assert path.is_dir() or path.with_suffix(".py").is_file(), f"{module}: no such module"
