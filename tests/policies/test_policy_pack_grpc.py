"""The pack end to end: a real pack process, driven over the Analyzer gRPC service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from policy_helpers import (
    DEPLOYER,
    REGISTRY,
    REPOSITORY,
    TRAINING,
    hardened_bucket,
    plan_of,
    policy_document,
    resource,
    tags_for,
    trust_policy,
)

from infra.policy_config import POLICY_NAMES
from offline.plan.capture import UNKNOWN, CapturedResource
from offline.policy.runner import (
    AnalyzerInfo,
    EnforcementLevel,
    PolicyConfig,
    PolicyConfigError,
    PolicyInfo,
    PolicyPackError,
    PolicyPackProcess,
    analyze_plan,
    analyze_plans,
    load_policy_config,
    mandatory,
    reconcile_policy_config,
)

Mutation = Callable[[list[CapturedResource]], list[CapturedResource]]


def good_resources(stack: str) -> list[CapturedResource]:
    """One compliant resource of every kind the rules look at."""
    tags = tags_for(stack)
    provider_urn = f"urn:pulumi:{stack}::promote-code::pulumi:providers:aws::account"
    provider = resource(
        "pulumi:providers:aws",
        "account",
        {"region": "eu-west-1", "defaultTags": json.dumps({"tags": tags})},
        stack=stack,
    )
    definition = json.dumps(
        {
            "Steps": [
                {
                    "Name": "Train",
                    "Arguments": {"AlgorithmSpecification": {"TrainingImage": TRAINING}},
                }
            ]
        }
    )
    return [
        provider,
        resource(
            "aws:lambda/function:Function",
            "deployer",
            {"packageType": "Image", "imageUri": DEPLOYER, "tags": tags},
            stack=stack,
        ),
        resource(
            "aws:sagemaker/model:Model",
            "model",
            {"primaryContainer": {"image": TRAINING}},
            stack=stack,
            provider=f"{provider_urn}::provider-id",
        ),
        resource(
            "aws:sagemaker/pipeline:Pipeline",
            "pipeline",
            {"pipelineDefinition": definition, "tags": tags},
            stack=stack,
        ),
        resource(
            "aws:ecr/repository:Repository",
            "training",
            {
                "name": "promote-code/training",
                "imageTagMutability": "IMMUTABLE",
                "imageScanningConfiguration": {"scanOnPush": True},
                "tags": tags,
            },
            stack=stack,
        ),
        resource(
            "aws:ecr/repositoryPolicy:RepositoryPolicy",
            "training-policy",
            {
                "policy": policy_document(
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": ["arn:aws:iam::444444444444:root"]},
                        "Action": ["ecr:BatchGetImage"],
                    }
                )
            },
            stack=stack,
        ),
        resource(
            "aws:iam/role:Role",
            "deploy",
            {
                "name": "promote-code-github-deploy",
                "assumeRolePolicy": trust_policy(f"repo:{REPOSITORY}:environment:prod"),
                "tags": tags,
            },
            stack=stack,
        ),
        resource(
            "aws:iam/rolePolicy:RolePolicy",
            "deploy-policy",
            {
                "policy": policy_document(
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
                )
            },
            stack=stack,
        ),
        resource(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "endpoint",
            {
                "kmsKeyArn": "arn:aws:kms:eu-west-1:444444444444:key/k",
                "dataCaptureConfig": {"enableCapture": True, "destinationS3Uri": "s3://b/capture"},
                "productionVariants": [{"variantName": "AllTraffic", "initialInstanceCount": 2}],
                "tags": tags,
            },
            stack=stack,
        ),
        *hardened_bucket(stack, "data", f"promote-code-{stack}-data"),
    ]


def _set(name: str, **inputs: Any) -> Mutation:
    def change(resources: list[CapturedResource]) -> list[CapturedResource]:
        return [
            CapturedResource(**{**r.__dict__, "inputs": {**r.inputs, **inputs}})
            if r.name == name
            else r
            for r in resources
        ]

    return change


def _add(new: CapturedResource) -> Mutation:
    return lambda resources: [*resources, new]


@pytest.mark.parametrize("stack", ["ops", "dev", "staging", "prod"])
def test_compliant_resources_pass_under_every_stack_config(
    pack: PolicyPackProcess, stack: str
) -> None:
    violations = pack.analyze(plan_of(stack, good_resources(stack)), load_policy_config(stack))
    assert violations == []


FOREIGN_ALGORITHM = "arn:aws:sagemaker:eu-west-1:999999999999:algorithm/a"

FAILURES: list[tuple[str, Mutation, str]] = [
    (
        "tag",
        _set("deployer", imageUri=f"{REGISTRY}/promote-code/deployer:latest"),
        "prod-images-from-ops",
    ),
    (
        "public",
        _set("model", primaryContainer={"image": "public.ecr.aws/x/y:1"}),
        "prod-images-from-ops",
    ),
    ("unknown", _set("deployer", imageUri=UNKNOWN), "prod-images-from-ops"),
    (
        "pipeline-in-s3",
        _set("pipeline", pipelineDefinitionS3Location={"bucket": "b", "objectKey": "p.json"}),
        "prod-images-from-ops",
    ),
    (
        "pipeline-not-an-object",
        _set("pipeline", pipelineDefinition=json.dumps([{"Steps": []}])),
        "prod-images-from-ops",
    ),
    (
        "algorithm-resource",
        _set(
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
        "prod-images-from-ops",
    ),
    (
        "foreign-model-package",
        _set(
            "model",
            primaryContainer={
                "modelPackageName": "arn:aws:sagemaker:eu-west-1:999999999999:model-package/m/1"
            },
        ),
        "prod-images-from-ops",
    ),
    (
        "image-version",
        _add(
            resource(
                "aws:sagemaker/imageVersion:ImageVersion",
                "kernel",
                {"imageName": "kernel", "baseImage": "jupyter/base-notebook"},
            )
        ),
        "prod-images-from-ops",
    ),
    ("mutable", _set("training", imageTagMutability="MUTABLE"), "ecr-repository-hardening"),
    (
        "ecr-star",
        _set(
            "training-policy",
            policy=policy_document({"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}),
        ),
        "ecr-policy-no-wildcard-principal",
    ),
    (
        "oidc-wildcard",
        _set("deploy", assumeRolePolicy=trust_policy("repo:my-org/*")),
        "github-oidc-trust",
    ),
    (
        "oidc-pr",
        _set("deploy", assumeRolePolicy=trust_policy(f"repo:{REPOSITORY}:pull_request")),
        "github-oidc-trust",
    ),
    (
        "admin",
        _add(
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
        _set(
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
    ("no-kms", _set("endpoint", kmsKeyArn=""), "sagemaker-endpoint-encryption-and-capture"),
    (
        "one-instance",
        _set("endpoint", productionVariants=[{"initialInstanceCount": 1}]),
        "sagemaker-endpoint-min-instances",
    ),
    ("untagged", _set("training", tags={"project": "promote-code"}), "required-tags"),
    ("wrong-env", _set("model", tags=tags_for("dev")), "required-tags"),
]


@pytest.mark.parametrize(("case", "mutate", "policy"), FAILURES, ids=[f[0] for f in FAILURES])
def test_each_rule_blocks_prod_through_the_pack(
    pack: PolicyPackProcess, case: str, mutate: Mutation, policy: str
) -> None:
    violations = pack.analyze(
        plan_of("prod", mutate(good_resources("prod"))), load_policy_config("prod")
    )
    assert {v.policy for v in violations} == {policy}, violations
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
    unknown = _set("deployer", imageUri=UNKNOWN)
    prod = pack.analyze(
        plan_of("prod", unknown(good_resources("prod"))), load_policy_config("prod")
    )
    assert [v.policy for v in mandatory(prod)] == ["prod-images-from-ops"]
    assert "unknown during preview" in prod[0].message
    staging = pack.analyze(
        plan_of("staging", unknown(good_resources("staging"))), load_policy_config("staging")
    )
    # Staging leaves an unknown image to `pulumi up`, where the value is known.
    assert staging == []


def test_dev_reports_foreign_images_as_advisory(pack: PolicyPackProcess) -> None:
    mutate = _set("deployer", imageUri="docker.io/library/python:3.11")
    violations = pack.analyze(
        plan_of("dev", mutate(good_resources("dev"))), load_policy_config("dev")
    )
    assert [(v.policy, v.enforcement_level) for v in violations] == [
        ("prod-images-from-ops", EnforcementLevel.ADVISORY)
    ]
    assert mandatory(violations) == []


def test_the_pack_reports_the_policies_the_configs_name(pack: PolicyPackProcess) -> None:
    info = pack.info
    assert info.name == "promote-code-guardrails"
    assert tuple(p.name for p in info.policies) == POLICY_NAMES
    assert {p.enforcement_level for p in info.policies} == {EnforcementLevel.MANDATORY}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.pop("prod-images-from-ops"), "opsAccountId"),
        (lambda c: c["prod-images-from-ops"].update(opsAccountId="1234"), "does not match"),
        (lambda c: c["prod-images-from-ops"].update(stackAccountId="prod"), "does not match"),
        (lambda c: c["sagemaker-endpoint-min-instances"].update(minInstanceCount=0), "minimum"),
        (lambda c: c.update({"prod-image-from-ops": "mandatory"}), "does not have"),
        (lambda c: c.update({"required-tags": "blocking"}), "not a valid enforcement level"),
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
    own = _set("model", primaryContainer={"modelPackageName": package})
    assert pack.analyze(plan_of("prod", own(good_resources("prod"))), config) == []
    del images["stackAccountId"]
    violations = pack.analyze(plan_of("prod", own(good_resources("prod"))), config)
    assert [v.policy for v in mandatory(violations)] == ["prod-images-from-ops"]
    assert "no stackAccountId" in violations[0].message


def test_a_blank_allowed_repository_fails_closed_through_the_pack(pack: PolicyPackProcess) -> None:
    config: dict[str, Any] = json.loads(json.dumps(load_policy_config("prod")))
    config["prod-images-from-ops"]["allowedRepositories"] = [" "]
    empty_repository = _set("deployer", imageUri=f"{REGISTRY}/ @sha256:{'0' * 64}")
    violations = pack.analyze(plan_of("prod", empty_repository(good_resources("prod"))), config)
    assert {v.policy for v in mandatory(violations)} == {"prod-images-from-ops"}
    assert all("missing allowedRepositories" in v.message for v in violations)


def test_one_process_serves_several_stacks(pack: PolicyPackProcess) -> None:
    port = pack.port
    for stack in ("dev", "prod", "dev"):
        pack.analyze(plan_of(stack, good_resources(stack)), load_policy_config(stack))
    assert pack.running
    assert pack.port == port


def _info(*policies: PolicyInfo) -> AnalyzerInfo:
    return AnalyzerInfo("pack", "0.0.1", policies, {})


SCHEMA = {"properties": {"limit": {"type": "integer", "default": 3}}, "required": ["limit"]}


def test_reconcile_applies_defaults_all_and_per_policy_levels() -> None:
    info = _info(
        PolicyInfo("a", "", EnforcementLevel.MANDATORY, SCHEMA),
        PolicyInfo("b", "", EnforcementLevel.MANDATORY, None),
    )
    result = reconcile_policy_config(
        info, {"all": "advisory", "b": {"enforcementLevel": "disabled"}}
    )
    assert result["a"] == PolicyConfig(EnforcementLevel.ADVISORY, {"limit": 3})
    assert result["b"].enforcement_level is EnforcementLevel.DISABLED
    assert reconcile_policy_config(info, {"a": {"limit": 5}})["a"].properties == {"limit": 5}
    with pytest.raises(PolicyConfigError, match="a: limit"):
        reconcile_policy_config(info, {"a": {"limit": "five"}})


def test_the_process_is_stopped_after_use_and_after_errors() -> None:
    plan = plan_of("prod", good_resources("prod"))
    with PolicyPackProcess(project="promote-code") as process:
        child = process._process
        assert child is not None and process.running
    assert child.poll() is not None
    with pytest.raises(RuntimeError, match="boom"), PolicyPackProcess() as process:
        child = process._process
        raise RuntimeError("boom")
    assert child is not None and child.poll() is not None
    assert [v.policy for v in analyze_plan(plan, load_policy_config("prod"))] == []


def _broken_pack(tmp_path: Path, main: str) -> Path:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: python\n")
    (tmp_path / "__main__.py").write_text(main)
    return tmp_path


@pytest.mark.parametrize(
    ("main", "expected"),
    [
        (
            "raise SystemExit('the pack is broken')",
            "(?s)exited before printing its port.*the pack is broken",
        ),
        ("print('hello')\nimport time\ntime.sleep(30)", "printed 'hello'"),
    ],
)
def test_a_pack_that_does_not_start_is_reported_and_stopped(
    tmp_path: Path, main: str, expected: str
) -> None:
    process = PolicyPackProcess(_broken_pack(tmp_path, main), startup_timeout=10)
    with pytest.raises(PolicyPackError, match=expected):
        process.start()
    assert not process.running


def test_a_directory_without_pulumipolicy_yaml_is_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyPackError, match="not a policy pack"):
        PolicyPackProcess(tmp_path).start()


def test_the_pack_is_launched_like_the_engine_launches_it(pack: PolicyPackProcess) -> None:
    command = pack.command("127.0.0.1:4242")
    assert command[1:] == ["-u", "-m", "pulumi.policy", "127.0.0.1:4242", "."]
    environment = PolicyPackProcess(project="promote-code", stack="prod").environment()
    assert environment["PULUMI_PROJECT"] == "promote-code"
    assert environment["PULUMI_STACK"] == "prod"
    assert environment["PULUMI_DRY_RUN"] == "true"


SIGINT_CHILD = """
import sys, time
try:
    print("ready", flush=True)
    time.sleep(30)
except KeyboardInterrupt:  # what pulumi_policy's serve loop waits for
    sys.exit(42)
sys.exit(0)
"""


def test_stop_ends_the_pack_with_sigint_first() -> None:
    """stop() interrupts the process (pulumi_policy's serve loop stops on KeyboardInterrupt)."""
    child = subprocess.Popen(
        [sys.executable, "-c", SIGINT_CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        process = PolicyPackProcess()
        process._process = child
        process.stop()
        # 42 only if the child saw SIGINT; a SIGKILL would give -9, SIGTERM -15.
        assert child.returncode == 42
        assert not process.running
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_pack_virtualenv_option_picks_the_interpreter_like_the_shim(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text(
        "runtime:\n  name: python\n  options:\n    virtualenv: venv\n"
    )
    with pytest.raises(PolicyPackError, match="doesn't appear to be a virtual environment"):
        PolicyPackProcess(tmp_path).command("127.0.0.1:1")
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    command = PolicyPackProcess(tmp_path).command("127.0.0.1:1")
    assert command[0] == str(tmp_path / "venv" / "bin" / "python")
    assert PolicyPackProcess().command("127.0.0.1:1")[0] == sys.executable


def test_analyze_plans_runs_each_stack_under_its_own_config() -> None:
    bad = _set("deployer", imageUri="docker.io/library/python:3.11")
    plans = {stack: plan_of(stack, bad(good_resources(stack))) for stack in ("dev", "prod")}
    results = analyze_plans(plans)
    assert [v.enforcement_level for v in results["dev"]] == [EnforcementLevel.ADVISORY]
    assert [v.enforcement_level for v in results["prod"]] == [EnforcementLevel.MANDATORY]
    assert "other than ECR" in str(results["prod"][0])


def test_a_pack_that_dies_mid_run_is_reported() -> None:
    with PolicyPackProcess() as process:
        assert process._process is not None
        process._process.kill()
        process._process.wait()
        with pytest.raises(PolicyPackError, match="is not running"):
            process.analyze(plan_of("prod", good_resources("prod")), load_policy_config("prod"))
