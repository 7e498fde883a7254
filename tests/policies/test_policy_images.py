"""prod-images-from-ops: the promotion rule, table-driven over look-alikes and near misses."""

from __future__ import annotations

import json

import pytest
from policy_helpers import (
    DEPLOYER,
    DIGEST,
    OPS,
    PACKAGE,
    PROD_ACCOUNT,
    PROD_IMAGE_CONFIG,
    REGION,
    REGISTRY,
    TRAINING,
)
from rules._props import UNKNOWN, props_of
from rules.images import image_violations
from rules.images.checks import ImageRuleConfig, image_problem, model_package_problem
from rules.images.references import LAMBDA_FUNCTION, SAGEMAKER_MODEL, SAGEMAKER_PIPELINE

from offline.plan.capture import UNKNOWN as ENGINE_UNKNOWN

PROD = ImageRuleConfig.from_config(PROD_IMAGE_CONFIG)
assert isinstance(PROD, ImageRuleConfig)
STAGING = ImageRuleConfig.from_config({**PROD_IMAGE_CONFIG, "unknownIsViolation": False})
assert isinstance(STAGING, ImageRuleConfig)
REPO = f"{REGISTRY}/promote-code/training"
WITHOUT_STACK_ACCOUNT = {k: v for k, v in PROD_IMAGE_CONFIG.items() if k != "stackAccountId"}
FOREIGN_PACKAGE = PACKAGE.replace(PROD_ACCOUNT, "999999999999")


@pytest.mark.parametrize("image", [TRAINING, DEPLOYER])
def test_ops_images_pinned_by_digest_pass(image: str) -> None:
    assert image_problem(image, PROD) is None


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (f"{REPO}:3f2c1ab", "uses the tag '3f2c1ab'"),
        (f"{REPO}:latest", "uses the tag 'latest'"),
        (f"{REPO}", "not pinned by digest"),
        (f"{REPO}:v1@sha256:{DIGEST}", "next to a digest"),
        (
            f"222222222222.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:{DIGEST}",
            "account 222222222222",
        ),
        (
            f"{OPS}.dkr.ecr.eu-central-1.amazonaws.com/promote-code/training@sha256:{DIGEST}",
            "region eu-central-1",
        ),
        (
            f"{OPS}.dkr.ecr.{REGION}.amazonaws.com.evil.io/promote-code/training@sha256:{DIGEST}",
            "look-alike",
        ),
        (
            f"{OPS}.dkr.ecr.{REGION}.amazonaws.com@evil.io/promote-code/training@sha256:{DIGEST}",
            "look-alike",
        ),
        (
            f"evil-{OPS}.dkr.ecr.{REGION}.amazonaws.com/promote-code/training@sha256:{DIGEST}",
            "look-alike",
        ),
        (
            f"{OPS}.dkr.ecr-fips.{REGION}.amazonaws.com/promote-code/training@sha256:{DIGEST}",
            "endpoint",
        ),
        (f"public.ecr.aws/promote-code/training@sha256:{DIGEST}", "other than ECR"),
        ("docker.io/library/python:3.11", "other than ECR"),
        (f"ghcr.io/my-org/training@sha256:{DIGEST}", "other than ECR"),
        ("python:3.11-slim", "Docker Hub shorthand"),
        (f"{REGISTRY}/promote-code/other@sha256:{DIGEST}", "repository 'promote-code/other'"),
        (f"{REGISTRY}/promote-code/training-evil@sha256:{DIGEST}", "repository"),
        (f"{REPO}@sha256:{DIGEST[:-1]}", "malformed digest"),
        (f"{REPO}@sha256:{DIGEST.upper()}", "malformed digest"),
        (f"{REPO}@sha256:{DIGEST}0", "malformed digest"),
        (f"{REPO}@sha512:{DIGEST}", "malformed digest"),
        (f"{REPO}@sha256:{DIGEST}\n", "malformed digest"),
        (f"https://{REPO}@sha256:{DIGEST}", "other than ECR"),
        ({"Get": "Parameters.TrainingImage"}, "not a literal image URI"),
        (None, "not a literal image URI"),
    ],
)
def test_images_that_are_not_ops_digests_fail(image: object, expected: str) -> None:
    problem = image_problem(image, PROD)
    assert problem is not None
    assert expected in problem


def test_unknown_image_is_a_violation_in_prod_but_not_elsewhere() -> None:
    assert image_problem(UNKNOWN, PROD) is not None
    assert "unknown during preview" in (image_problem(ENGINE_UNKNOWN, PROD) or "")
    assert image_problem(UNKNOWN, STAGING) is None


def test_missing_config_fails_closed() -> None:
    problems = image_violations(LAMBDA_FUNCTION, {"imageUri": TRAINING}, {})
    assert len(problems) == 1
    assert "opsAccountId, region, allowedRepositories" in problems[0]


@pytest.mark.parametrize("repositories", [[""], ["   "], [None], []])
def test_empty_allowed_repositories_fail_closed(repositories: list[object]) -> None:
    config = {**PROD_IMAGE_CONFIG, "allowedRepositories": repositories}
    problems = image_violations(LAMBDA_FUNCTION, {"imageUri": TRAINING}, config)
    assert len(problems) == 1
    assert "missing allowedRepositories" in problems[0]


def test_an_empty_repository_next_to_real_ones_allows_no_repository_less_image() -> None:
    rule = ImageRuleConfig.from_config(
        {**PROD_IMAGE_CONFIG, "allowedRepositories": ["", "promote-code/training"]}
    )
    assert isinstance(rule, ImageRuleConfig)
    assert rule.allowed_repositories == ("promote-code/training",)
    assert image_problem(f"{REGISTRY}/@sha256:{DIGEST}", rule) is not None
    assert image_problem(TRAINING, rule) is None


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        (PACKAGE, None),
        (f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:model-package/promote-code", None),
        (FOREIGN_PACKAGE, "account '999999999999'"),
        (PACKAGE.replace(REGION, "us-east-1"), "region 'us-east-1'"),
        ("promote-code/3", "not a model package ARN"),
        (f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:model/promote-code", "not a model package"),
        (f"arn:aws:sagemaker:{REGION}:{PROD_ACCOUNT}:model-package/x/3/evil", "not a model"),
        (f"arn:aws-cn:sagemaker:{REGION}:{PROD_ACCOUNT}:model-package/x/3", "not a model"),
        ({"Get": "Steps.Register.ModelPackageArn"}, "not a literal model package ARN"),
        (UNKNOWN, "unknown during preview"),
    ],
)
def test_model_packages_must_be_the_stacks_own(package: object, expected: str | None) -> None:
    problem = model_package_problem(package, PROD)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem


def test_a_model_package_without_the_stack_account_fails_in_prod_only() -> None:
    prod = image_violations(
        SAGEMAKER_MODEL, {"primaryContainer": {"modelPackageName": PACKAGE}}, WITHOUT_STACK_ACCOUNT
    )
    assert len(prod) == 1
    assert "no stackAccountId" in prod[0]
    staging = {**WITHOUT_STACK_ACCOUNT, "unknownIsViolation": False}
    props = {"primaryContainer": {"modelPackageName": PACKAGE}}
    assert image_violations(SAGEMAKER_MODEL, props, staging) == []


def _lambda(image: object) -> dict[str, object]:
    return {"packageType": "Image", "imageUri": image}


@pytest.mark.parametrize(
    ("resource_type", "props", "violations"),
    [
        (LAMBDA_FUNCTION, _lambda(DEPLOYER), 0),
        (LAMBDA_FUNCTION, _lambda(f"{REPO}:latest"), 1),
        (LAMBDA_FUNCTION, _lambda(ENGINE_UNKNOWN), 1),
        (LAMBDA_FUNCTION, {"packageType": "Zip", "runtime": "python3.12"}, 0),
        (LAMBDA_FUNCTION, {"packageType": "Image"}, 1),
        (SAGEMAKER_MODEL, {"primaryContainer": {"image": TRAINING}}, 0),
        (SAGEMAKER_MODEL, {"primaryContainer": {"image": "python:3.11"}}, 1),
        (SAGEMAKER_MODEL, {"primaryContainer": ENGINE_UNKNOWN}, 1),
        (SAGEMAKER_MODEL, {"containers": [{"image": TRAINING}, {"image": f"{REPO}:x"}]}, 1),
        (SAGEMAKER_MODEL, {"primaryContainer": {"modelPackageName": "arn:..."}}, 1),
        (SAGEMAKER_MODEL, {"primaryContainer": {"modelPackageName": PACKAGE}}, 0),
        (SAGEMAKER_MODEL, {"primaryContainer": {"modelPackageName": FOREIGN_PACKAGE}}, 1),
        (SAGEMAKER_MODEL, {"containers": [{"modelPackageName": FOREIGN_PACKAGE}]}, 1),
        (SAGEMAKER_MODEL, {"containers": [{"modelPackageName": PACKAGE}]}, 0),
        (
            "aws:sagemaker/imageVersion:ImageVersion",
            {"imageName": "custom", "baseImage": "python:3.11"},
            1,
        ),
        ("aws:sagemaker/imageVersion:ImageVersion", {"imageName": "c", "baseImage": TRAINING}, 0),
        (
            "aws:sagemaker/trainingJob:TrainingJob",
            {"algorithmSpecification": {"algorithmName": "arn:aws:sagemaker:x:999999999999:a/b"}},
            1,
        ),
        (
            "aws:sagemaker/trainingJob:TrainingJob",
            {"algorithmSpecification": {"trainingImage": f"{REPO}:latest"}},
            1,
        ),
        (
            "aws:sagemaker/trainingJob:TrainingJob",
            {
                "algorithmSpecification": {"trainingImage": TRAINING},
                "debugRuleConfigurations": [{"ruleEvaluatorImage": "evil.io/rules"}],
            },
            1,
        ),
        (
            "aws:sagemaker/algorithm:Algorithm",
            {
                "algorithmName": "promote-code",
                "trainingSpecification": {"trainingImage": TRAINING},
            },
            0,
        ),
        (
            "aws:batch/jobDefinition:JobDefinition",
            {"containerProperties": json.dumps({"image": "busybox"})},
            1,
        ),
        (
            "aws:batch/jobDefinition:JobDefinition",
            {
                "containerProperties": json.dumps({"image": TRAINING}),
                "ecsProperties": json.dumps(
                    {"taskProperties": [{"containers": [{"image": "nginx"}]}]}
                ),
                "eksProperties": {"podProperties": {"containers": [{"image": "nginx"}]}},
            },
            2,
        ),
        ("aws:batch/jobDefinition:JobDefinition", {"containerProperties": "{bad"}, 1),
        (
            "aws:apprunner/service:Service",
            {"sourceConfiguration": {"imageRepository": {"imageIdentifier": "nginx:latest"}}},
            1,
        ),
        (
            "aws:apprunner/service:Service",
            {"sourceConfiguration": {"imageRepository": {"imageIdentifier": DEPLOYER}}},
            0,
        ),
        ("aws:codebuild/project:Project", {"environment": {"image": "aws/codebuild/std:7"}}, 1),
        ("aws:codebuild/project:Project", {"environment": {"image": TRAINING}}, 0),
        ("aws:s3/bucket:Bucket", {"bucket": "python:3.11"}, 0),
        (
            "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
            {"dataQualityAppSpecification": {"imageUri": f"{REPO}:monitor"}},
            1,
        ),
        (
            "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition",
            {"dataQualityAppSpecification": {"imageUri": TRAINING}},
            0,
        ),
        ("aws:sagemaker/modelPackageGroup:ModelPackageGroup", {"modelPackageGroupName": "x"}, 0),
        (
            "aws:ecs/taskDefinition:TaskDefinition",
            {"containerDefinitions": json.dumps([{"image": TRAINING}, {"image": "nginx"}])},
            1,
        ),
    ],
)
def test_images_are_found_in_lambdas_and_models(
    resource_type: str, props: dict[str, object], violations: int
) -> None:
    found = image_violations(resource_type, props_of(props), PROD_IMAGE_CONFIG)
    assert len(found) == violations, found


def pipeline_document(**images: object) -> dict[str, object]:
    """A SageMaker pipeline definition with a processing, training, model and register step."""
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "TrainingImage", "Type": "String", "DefaultValue": TRAINING}],
        "Steps": [
            {
                "Name": "Preprocess",
                "Type": "Processing",
                "Arguments": {"AppSpecification": {"ImageUri": images.get("process", TRAINING)}},
            },
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "AlgorithmSpecification": {
                        "TrainingImage": images.get("train", TRAINING),
                        "TrainingInputMode": "File",
                    }
                },
            },
            {
                "Name": "CreateModel",
                "Type": "Model",
                "Arguments": {"PrimaryContainer": {"Image": images.get("model", TRAINING)}},
            },
            {
                "Name": "Register",
                "Type": "RegisterModel",
                "Arguments": {
                    "InferenceSpecification": {
                        "Containers": [{"Image": images.get("register", TRAINING)}]
                    }
                },
            },
        ],
    }


def pipeline_definition(**images: object) -> str:
    return json.dumps(pipeline_document(**images))


def _with_step(arguments: dict[str, object], step_type: str = "Training") -> str:
    document = pipeline_document()
    steps = document["Steps"]
    assert isinstance(steps, list)
    steps.append({"Name": "Extra", "Type": step_type, "Arguments": arguments})
    return json.dumps(document)


@pytest.mark.parametrize("step", ["process", "train", "model", "register"])
def test_every_image_inside_the_pipeline_definition_is_checked(step: str) -> None:
    good = image_violations(
        SAGEMAKER_PIPELINE, {"pipelineDefinition": pipeline_definition()}, PROD_IMAGE_CONFIG
    )
    assert good == []
    bad = image_violations(
        SAGEMAKER_PIPELINE,
        {"pipelineDefinition": pipeline_definition(**{step: f"{REPO}:latest"})},
        PROD_IMAGE_CONFIG,
    )
    assert len(bad) == 1
    assert "latest" in bad[0]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (pipeline_definition(train={"Get": "Parameters.TrainingImage"}), "not a literal"),
        (ENGINE_UNKNOWN, "unknown during preview"),
        (pipeline_definition().replace(TRAINING, ENGINE_UNKNOWN, 1), "unknown during preview"),
        ("{not json", "not a readable definition"),
        (json.dumps([pipeline_document()]), "not a readable pipeline definition"),
        (json.dumps({"Version": "2020-12-01"}), "not a readable pipeline definition"),
        (json.dumps({"Steps": {"Name": "Train"}}), "not a readable pipeline definition"),
        (json.dumps({"Steps": ["Train"]}), "not a readable pipeline definition"),
        (json.dumps("Steps"), "not a readable pipeline definition"),
        (
            _with_step({"AlgorithmSpecification": {"AlgorithmName": "arn:aws:x:999999999999:a"}}),
            "names an algorithm resource",
        ),
        (
            _with_step(
                {"SourceAlgorithmSpecification": {"SourceAlgorithms": [{"AlgorithmName": "a"}]}},
                "RegisterModel",
            ),
            "names an algorithm resource",
        ),
        (
            _with_step({"PrimaryContainer": {"ModelPackageName": FOREIGN_PACKAGE}}, "Model"),
            "account '999999999999'",
        ),
        (
            _with_step({"ModelPackageName": "someone-elses-package"}, "RegisterModel"),
            "not a model package ARN",
        ),
        (
            _with_step(
                {
                    "AlgorithmSpecification": {"TrainingImage": TRAINING},
                    "DebugRuleConfigurations": [{"RuleEvaluatorImage": "evil.io/r"}],
                }
            ),
            "other than ECR",
        ),
    ],
)
def test_pipeline_definitions_that_cannot_be_shown_safe_fail(
    definition: str, expected: str
) -> None:
    found = image_violations(
        SAGEMAKER_PIPELINE, {"pipelineDefinition": definition}, PROD_IMAGE_CONFIG
    )
    assert len(found) >= 1
    assert expected in found[0]


def test_a_model_step_with_the_stacks_own_package_passes() -> None:
    definition = _with_step({"PrimaryContainer": {"ModelPackageName": PACKAGE}}, "Model")
    props = {"pipelineDefinition": definition}
    assert image_violations(SAGEMAKER_PIPELINE, props, PROD_IMAGE_CONFIG) == []


def test_a_pipeline_definition_kept_in_s3_cannot_be_verified() -> None:
    props = {"pipelineDefinitionS3Location": {"bucket": "b", "objectKey": "definition.json"}}
    found = image_violations(SAGEMAKER_PIPELINE, props, PROD_IMAGE_CONFIG)
    assert len(found) == 1
    assert "cannot be verified at preview time" in found[0]
    both = {**props, "pipelineDefinition": pipeline_definition()}
    assert len(image_violations(SAGEMAKER_PIPELINE, both, PROD_IMAGE_CONFIG)) == 1
