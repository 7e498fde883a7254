"""The pack end to end: a real pack process, driven over the Analyzer gRPC service.

What each rule decides, under each stack's committed config. How the runner starts,
configures and stops the pack is tested in tests/offline/test_policy_*.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from policy_helpers import (
    REGISTRY,
    REPOSITORY,
    Mutation,
    add,
    good_resources,
    plan_of,
    policy_document,
    resource,
    set_inputs,
    tags_for,
    trust_policy,
)

from offline.plan.capture import UNKNOWN
from offline.policy.config import EnforcementLevel, load_policy_config
from offline.policy.errors import PolicyConfigError
from offline.policy.report import mandatory
from offline.policy.runner import PolicyPackProcess
from policies.enforcement import rule_names


@pytest.mark.parametrize("stack", ["ops", "dev", "staging", "prod"])
def test_compliant_resources_pass_under_every_stack_config(
    pack: PolicyPackProcess, stack: str
) -> None:
    violations = pack.analyze(plan_of(stack, good_resources(stack)), load_policy_config(stack))
    assert violations == []


FOREIGN_ALGORITHM = "arn:aws:sagemaker:eu-west-1:999999999999:algorithm/a"

IMAGE = "prod-images-from-ops"
_GATE = load_policy_config("prod").get("promotion-gate")
# Where prod's config names its source stack, an image the promotion gate did not record
# from staging also breaks promotion-gate.
PROD_IMAGE = (
    (IMAGE, "promotion-gate") if isinstance(_GATE, dict) and _GATE.get("sourceStack") else (IMAGE,)
)

FAILURES: list[tuple[str, Mutation, str | tuple[str, ...]]] = [
    (
        "tag",
        set_inputs("deployer", imageUri=f"{REGISTRY}/promote-code/deployer:latest"),
        PROD_IMAGE,
    ),
    (
        "public",
        set_inputs("model", primaryContainer={"image": "public.ecr.aws/x/y:1"}),
        PROD_IMAGE,
    ),
    ("unknown", set_inputs("deployer", imageUri=UNKNOWN), PROD_IMAGE),
    (
        "pipeline-in-s3",
        set_inputs("pipeline", pipelineDefinitionS3Location={"bucket": "b", "objectKey": "p.json"}),
        PROD_IMAGE,
    ),
    (
        "pipeline-not-an-object",
        set_inputs("pipeline", pipelineDefinition=json.dumps([{"Steps": []}])),
        PROD_IMAGE,
    ),
    (
        "algorithm-resource",
        set_inputs(
            "pipeline",
            pipelineDefinition=json.dumps(
                {
                    "Steps": [
                        {
                            "Name": "Train",
                            "Arguments": {
                                "AlgorithmSpecification": {"AlgorithmName": FOREIGN_ALGORITHM}
                            },
                        }
                    ]
                }
            ),
        ),
        IMAGE,
    ),
    (
        "foreign-model-package",
        set_inputs(
            "model",
            primaryContainer={
                "modelPackageName": "arn:aws:sagemaker:eu-west-1:999999999999:model-package/m/1"
            },
        ),
        IMAGE,
    ),
    (
        "image-version",
        add(
            resource(
                "aws:sagemaker/imageVersion:ImageVersion",
                "kernel",
                {"imageName": "kernel", "baseImage": "jupyter/base-notebook"},
            )
        ),
        PROD_IMAGE,
    ),
    ("mutable", set_inputs("training", imageTagMutability="MUTABLE"), "ecr-repository-hardening"),
    (
        "ecr-star",
        set_inputs(
            "training-policy",
            policy=policy_document({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}),
        ),
        "ecr-policy-no-wildcard-principal",
    ),
    (
        "oidc-wildcard",
        set_inputs("deploy", assumeRolePolicy=trust_policy("repo:my-org/*")),
        "github-oidc-trust",
    ),
    (
        "oidc-pr",
        set_inputs("deploy", assumeRolePolicy=trust_policy(f"repo:{REPOSITORY}:pull_request")),
        "github-oidc-trust",
    ),
    (
        "admin",
        add(
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "admin",
                {"policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            )
        ),
        "iam-no-broad-managed-policies",
    ),
    (
        "s3-star",
        set_inputs(
            "deploy-policy",
            policy=policy_document({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        ),
        "iam-no-wildcard-statements",
    ),
    (
        "no-versioning",
        lambda rs: [r for r in rs if "Versioning" not in r.type],
        "s3-bucket-hardening",
    ),
    ("no-kms", set_inputs("endpoint", kmsKeyArn=""), "sagemaker-endpoint-encryption-and-capture"),
    (
        "one-instance",
        set_inputs("endpoint", productionVariants=[{"initialInstanceCount": 1}]),
        "sagemaker-endpoint-min-instances",
    ),
    ("untagged", set_inputs("training", tags={"project": "promote-code"}), "required-tags"),
    ("wrong-env", set_inputs("model", tags=tags_for("dev")), "required-tags"),
]


@pytest.mark.parametrize(("case", "mutate", "policy"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_rule_blocks_prod_through_the_pack(
    pack: PolicyPackProcess, case: str, mutate: Mutation, policy: str | tuple[str, ...]
) -> None:
    violations = pack.analyze(
        plan_of("prod", mutate(good_resources("prod"))), load_policy_config("prod")
    )
    expected = {policy} if isinstance(policy, str) else set(policy)
    assert {v.policy for v in violations} == expected, violations
    assert all(v.enforcement_level is EnforcementLevel.MANDATORY for v in violations)
    assert all(v.resource_urn and v.resource_name for v in violations)


def test_retraining_schedule_is_blocked_where_settings_do_not_allow_it(
    pack: PolicyPackProcess,
) -> None:
    schedule = {
        "name": "promote-code-retraining",
        "target": {
            "arn": "arn:aws:sagemaker:eu-west-1:3:pipeline/p",
            "sagemakerPipelineParameters": {},
        },
        "state": "ENABLED",
    }
    for stack, blocked in (("staging", True), ("prod", False)):
        resources = [
            *good_resources(stack),
            resource("aws:scheduler/schedule:Schedule", "retrain", schedule, stack=stack),
        ]
        violations = pack.analyze(plan_of(stack, resources), load_policy_config(stack))
        assert [v.policy for v in violations] == (
            ["retraining-schedule-allowed"] if blocked else []
        )


def test_unknown_image_is_mandatory_in_prod_and_not_a_silent_skip(pack: PolicyPackProcess) -> None:
    unknown = set_inputs("deployer", imageUri=UNKNOWN)
    prod = pack.analyze(
        plan_of("prod", unknown(good_resources("prod"))), load_policy_config("prod")
    )
    assert sorted(v.policy for v in mandatory(prod)) == sorted(PROD_IMAGE)
    assert any(v.policy == IMAGE and "unknown during preview" in v.message for v in prod)
    staging = pack.analyze(
        plan_of("staging", unknown(good_resources("staging"))), load_policy_config("staging")
    )
    # Staging leaves an unknown image to `pulumi up`, where the value is known.
    assert staging == []


def test_dev_reports_foreign_images_as_advisory(pack: PolicyPackProcess) -> None:
    mutate = set_inputs("deployer", imageUri="docker.io/library/python:3.11")
    violations = pack.analyze(
        plan_of("dev", mutate(good_resources("dev"))), load_policy_config("dev")
    )
    assert [(v.policy, v.enforcement_level) for v in violations] == [
        ("prod-images-from-ops", EnforcementLevel.ADVISORY)
    ]
    assert mandatory(violations) == []


def test_the_pack_and_every_config_name_the_same_rules(
    pack: PolicyPackProcess, committed_config: dict[str, dict[str, dict[str, object]]]
) -> None:
    """The served pack has exactly the rules policies/enforcement.py derives from its list,
    each fails closed (mandatory) without config, every stack's config sets each one,
    and prod makes every rule mandatory."""
    info = pack.info
    assert info.name == "promote-code-guardrails"
    assert tuple(p.name for p in info.policies) == rule_names()
    assert {p.enforcement_level for p in info.policies} == {EnforcementLevel.MANDATORY}
    for stack, config in committed_config.items():
        assert tuple(config) == rule_names(), stack
    assert {rule["enforcementLevel"] for rule in committed_config["prod"].values()} == {"mandatory"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("prod-images-from-ops"), "opsAccountId"),
        (lambda c: c["prod-images-from-ops"].update(opsAccountId="1234"), "does not match"),
        (lambda c: c["prod-images-from-ops"].update(stackAccountId="prod"), "does not match"),
        (lambda c: c["sagemaker-endpoint-min-instances"].update(minInstanceCount=0), "minimum"),
        (lambda c: c.update({"prod-image-from-ops": "mandatory"}), "does not have"),
        (lambda c: c.update({"required-tags": "blocking"}), "not a valid enforcement level"),
        # A config may not overrule the reviewed matrix (policies/enforcement.py).
        (lambda c: (c.clear(), c.update({"all": "disabled"})), "lowers rules .* mandatory there"),
        (lambda c: c["prod-images-from-ops"].update(enforcementLevel="advisory"), "lowers rules"),
    ],
)
def test_invalid_config_is_rejected_before_analysis(
    pack: PolicyPackProcess, change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    config: dict[str, Any] = json.loads(json.dumps(load_policy_config("prod")))
    change(config)
    with pytest.raises(PolicyConfigError, match=expected):
        pack.analyze(plan_of("prod", good_resources("prod")), config)


def test_the_stacks_own_model_package_passes_through_the_pack(pack: PolicyPackProcess) -> None:
    config = load_policy_config("prod")
    images = config["prod-images-from-ops"]
    assert isinstance(images, dict)
    package = f"arn:aws:sagemaker:eu-west-1:{images['stackAccountId']}:model-package/m/1"
    own = set_inputs("model", primaryContainer={"modelPackageName": package})
    assert pack.analyze(plan_of("prod", own(good_resources("prod"))), config) == []
    del images["stackAccountId"]
    violations = pack.analyze(plan_of("prod", own(good_resources("prod"))), config)
    assert [v.policy for v in mandatory(violations)] == ["prod-images-from-ops"]
    assert "no stackAccountId" in violations[0].message


def test_a_blank_allowed_repository_fails_closed_through_the_pack(pack: PolicyPackProcess) -> None:
    config: dict[str, Any] = json.loads(json.dumps(load_policy_config("prod")))
    config["prod-images-from-ops"]["allowedRepositories"] = [" "]
    empty_repository = set_inputs("deployer", imageUri=f"{REGISTRY}/ @sha256:{'0' * 64}")
    violations = pack.analyze(plan_of("prod", empty_repository(good_resources("prod"))), config)
    assert {v.policy for v in mandatory(violations)} == set(PROD_IMAGE)
    found = [v for v in violations if v.policy == IMAGE]
    assert found and all("missing allowedRepositories" in v.message for v in found)
