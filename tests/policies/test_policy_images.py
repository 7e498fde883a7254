"""prod-images-from-ops: the promotion rule, table-driven over look-alikes and near misses."""

from __future__ import annotations

import json

import pytest
from policy_helpers import DEPLOYER, DIGEST, OPS, PROD_IMAGE_CONFIG, REGION, REGISTRY, TRAINING
from rules._props import UNKNOWN, props_of
from rules.images import (
    LAMBDA_FUNCTION,
    SAGEMAKER_MODEL,
    SAGEMAKER_PIPELINE,
    ImageRuleConfig,
    image_problem,
    image_violations,
)

from infra.offline.capture import UNKNOWN as ENGINE_UNKNOWN

PROD = ImageRuleConfig.from_config(PROD_IMAGE_CONFIG)
assert isinstance(PROD, ImageRuleConfig)
STAGING = ImageRuleConfig.from_config({**PROD_IMAGE_CONFIG, "unknownIsViolation": False})
assert isinstance(STAGING, ImageRuleConfig)
REPO = f"{REGISTRY}/promote-code/training"


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
        (SAGEMAKER_MODEL, {"primaryContainer": {"modelPackageName": "arn:..."}}, 0),
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


def pipeline_definition(**images: object) -> str:
    """A SageMaker pipeline definition with a processing, training, model and register step."""
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": "TrainingImage", "Type": "String", "DefaultValue": TRAINING}],
            "Steps": [
                {
                    "Name": "Preprocess",
                    "Type": "Processing",
                    "Arguments": {
                        "AppSpecification": {"ImageUri": images.get("process", TRAINING)}
                    },
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
    )


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
