"""Pulumi entry point: load settings, build the stack, export its outputs."""

import pulumi

from infra.context import StackContext
from infra.program import (
    build,
    resolve_image_tag,
    settings_from_config,
    verification_record,
)

stack = pulumi.get_stack()
settings = settings_from_config(stack)
image_tag = resolve_image_tag()
context = StackContext(
    project=pulumi.get_project(),
    stack=stack,
    image_tag=image_tag,
    verification=verification_record(image_tag),
)
for key, value in build(settings, context).items():
    pulumi.export(key, value)
