"""Resolve this commit's images in the ops registry to digest-pinned URIs."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

NOT_FOUND = "ImageNotFoundException"
"""The ECR error code of a tag that does not exist."""


class ImagesNotBuiltError(pulumi.RunError):
    """The commit being deployed has no image in the ops registry."""


def pinned_uri(ops_account: str, region: str, repository: str, digest: str) -> str:
    return f"{ops_account}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}"


def resolve_image(ops_account: str, region: str, repository: str, tag: str) -> str:
    """`<ops>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<digest>` of `repository:tag`."""
    try:
        image = aws.ecr.get_image(
            registry_id=ops_account, repository_name=repository, image_tag=tag
        )
    except Exception as error:
        if NOT_FOUND not in str(error):
            raise pulumi.RunError(
                f"could not look up {repository}:{tag} in the ops registry ({ops_account}, "
                f"{region}): {error}. The deploy role needs ecr:DescribeImages there, and "
                "the repository policy must name this account (pulumi up --stack ops)."
            ) from None
        raise ImagesNotBuiltError(
            f"image {repository}:{tag} was not found in the ops registry "
            f"({ops_account}, {region}): commit {tag} was never built in ops. Merge it to "
            f"main (CI runs `pulumi up --stack ops`), or build it by hand with "
            f"`PROMOTE_IMAGE_TAG={tag} pulumi up --stack ops`, then deploy again."
        ) from None
    return pinned_uri(ops_account, region, repository, image.image_digest)
