"""Local AWS (moto's server) behaves as SageMaker does where the pipeline relies on it."""

from __future__ import annotations

from offline.aws import local_aws


def test_approving_a_package_keeps_its_lineage_metadata() -> None:
    # approve-model sends only the status; SageMaker keeps the package's metadata.
    with local_aws("eu-west-1", "555555555555") as aws:
        sagemaker = aws.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="g",
            InferenceSpecification={
                "Containers": [{"Image": "555555555555.dkr.ecr.eu-west-1.amazonaws.com/i:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            CustomerMetadataProperties={"commit": "a" * 40},
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        assert package["ModelApprovalStatus"] == "Approved"
        assert package["CustomerMetadataProperties"] == {"commit": "a" * 40}
        sagemaker.update_model_package(
            ModelPackageArn=arn, CustomerMetadataPropertiesToRemove=["commit"]
        )
        package = sagemaker.describe_model_package(ModelPackageName=arn)
        assert not package.get("CustomerMetadataProperties")


def test_update_endpoint_moves_the_endpoint_to_the_new_config() -> None:
    # moto has no UpdateEndpoint; the local server's stand-in completes the update at once.
    with local_aws("eu-west-1", "555555555555") as aws:
        sagemaker = aws.client("sagemaker")
        image = "555555555555.dkr.ecr.eu-west-1.amazonaws.com/i:1"
        role = "arn:aws:iam::555555555555:role/r"
        for version in ("1", "2"):
            sagemaker.create_model(
                ModelName=f"m{version}", PrimaryContainer={"Image": image}, ExecutionRoleArn=role
            )
            sagemaker.create_endpoint_config(
                EndpointConfigName=f"c{version}",
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": f"m{version}",
                        "InitialInstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                    }
                ],
            )
        sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c1")
        sagemaker.update_endpoint(EndpointName="e", EndpointConfigName="c2")
        endpoint = sagemaker.describe_endpoint(EndpointName="e")
        assert (endpoint["EndpointConfigName"], endpoint["EndpointStatus"]) == ("c2", "InService")
