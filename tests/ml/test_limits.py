"""The stack settings and the ML configs accept exactly the same values (one source: ml.limits).

The settings models are the reference: for every field an ML config shares
with them (same name), the ranges read from the settings' JSON schema are
probed just inside and just outside on both sides, and so are the defaults and
the patterns. A range or default edited on one side only fails here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from infra.settings import EndpointSettings, PipelineSettings, RolloutSettings, TrainerSettings
from ml import limits
from ml.deployer.config import DeployerConfig, RolloutConfig
from ml.pipeline.contract import PipelineConfig, TrainerConfig
from ml.steps import train
from tests.deployer.support import deployer_config
from tests.ml.conftest import make_config

PAIRS: dict[str, tuple[type[BaseModel], type[Any], Callable[..., object]]] = {
    "pipeline": (PipelineSettings, PipelineConfig, make_config),
    "rollout": (RolloutSettings, RolloutConfig, RolloutConfig),
    "endpoint": (EndpointSettings, DeployerConfig, deployer_config),
    "trainer": (
        TrainerSettings,
        TrainerConfig,
        lambda **fields: make_config(trainer=TrainerConfig(**fields)),
    ),
}
NESTED = {"rollout", "trainer"}
"""Fields that are a nested model: compared as their own pair."""


def shared_fields(pair: str) -> dict[str, dict[str, Any]]:
    """Field name -> its settings JSON schema, for the fields both sides have."""
    settings, config, _ = PAIRS[pair]
    properties: dict[str, dict[str, Any]] = settings.model_json_schema()["properties"]
    names = {f.name for f in dataclasses.fields(config)}
    return {name: schema for name, schema in properties.items() if name in names}


def accepts(build: Callable[..., object], name: str, value: object) -> bool:
    try:
        build(**{name: value})
    except ValueError:  # pydantic's ValidationError and the configs' errors both are
        return False
    return True


def probes(schema: dict[str, Any]) -> list[float]:
    step = 1 if schema.get("type") == "integer" else 1e-9
    values: list[float] = [-(10**9), 10**9]
    if "minimum" in schema:
        values += [schema["minimum"] - step, schema["minimum"]]
    if "maximum" in schema:
        values += [schema["maximum"], schema["maximum"] + step]
    if "exclusiveMinimum" in schema:
        values += [schema["exclusiveMinimum"], schema["exclusiveMinimum"] + step]
    return values


NUMERIC = [
    (pair, name)
    for pair in PAIRS
    for name, schema in shared_fields(pair).items()
    if schema.get("type") in ("integer", "number")
]


@pytest.mark.parametrize(("pair", "name"), NUMERIC, ids=[f"{p}.{n}" for p, n in NUMERIC])
def test_numeric_ranges_agree_at_their_edges(pair: str, name: str) -> None:
    settings, _, build = PAIRS[pair]
    schema = shared_fields(pair)[name]
    edges = [v for v in probes(schema) if v not in (-(10**9), 10**9)]
    assert edges, f"{pair}.{name} has no range in the settings"
    for value in probes(schema):
        in_settings = accepts(settings, name, value)
        assert accepts(build, name, value) is in_settings, (
            f"{name}={value}: settings {'accept' if in_settings else 'refuse'} it, "
            f"the ML config does not; both must take the range from ml.limits"
        )


@pytest.mark.parametrize("pair", PAIRS)
def test_defaults_agree(pair: str) -> None:
    settings, config, _ = PAIRS[pair]
    defaults = settings()
    ml_defaults = {f.name: f.default for f in dataclasses.fields(config)}
    for name in shared_fields(pair):
        if name in NESTED:
            continue
        assert getattr(defaults, name) == ml_defaults[name], name


STRING_PROBES = {
    "instance_type": ["ml.m5.large", "ml.g4dn.xlarge", "m5.large", "ml.m5", "ML.M5.LARGE", ""],
    "cache_expire_after": ["P30D", "PT12H", "P1Y2M3W4DT5H6M7S", "30 days", "P", "PT"],
    "mode": ["canary", "linear", "all_at_once", "shadow", "Canary"],
    "approval_metric": ["macro_f1", "accuracy", "weighted_f1", "auc", "Macro_F1", ""],
    "conflicts": ["most-frequent", "drop", "keep-all", "first", "keep_all"],
    "name": ["tfidf-linear", "bert", ""],
    "class_weight": ["balanced", "none", "auto", "None"],
}


def string_cases() -> list[tuple[str, str, str]]:
    cases = []
    for pair in PAIRS:
        for name, schema in shared_fields(pair).items():
            kind = "instance_type" if name.endswith("instance_type") else name
            if name in NESTED:
                continue
            if kind in STRING_PROBES:
                cases += [(pair, name, value) for value in STRING_PROBES[kind]]
            else:
                assert schema.get("type") != "string", f"{pair}.{name}: add probes for it"
    return cases


@pytest.mark.parametrize(("pair", "name", "value"), string_cases())
def test_patterns_and_choices_agree(pair: str, name: str, value: str) -> None:
    settings, _, build = PAIRS[pair]
    assert accepts(build, name, value) is accepts(settings, name, value)


TRAIN_RANGES = [
    ("hash-bits", limits.HASH_BITS, 1),
    ("ngram-max", limits.NGRAM_MAX, 1),
    ("max-features", limits.MAX_FEATURES, 1),
    ("c", limits.REGULARIZATION_C, 1e-9),
]


@pytest.mark.parametrize(
    ("name", "bounds", "step"), TRAIN_RANGES, ids=[n for n, _, _ in TRAIN_RANGES]
)
def test_train_script_accepts_the_same_ranges(
    name: str, bounds: limits.Bounds[Any], step: float
) -> None:
    def train_accepts(value: float) -> bool:
        try:
            train.Hyperparameters.from_mapping({name: str(value)})
        except train.TrainingError:
            return False
        return True

    edges = [e for e in (bounds.minimum, bounds.maximum, bounds.exclusive_minimum) if e is not None]
    for edge in edges:
        for value in (edge - step, edge, edge + step):
            assert train_accepts(value) is bounds.contains(value), f"{name}={value}"
