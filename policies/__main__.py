"""CrossGuard policy pack of promote-code: prod runs only ops-built images, plus guardrails.

The engine starts this file as `python -u -m pulumi.policy <engine> .` from
this directory; `PolicyPack(...)` serves the Analyzer gRPC service and prints
its port. Per-stack settings come from `policies/config/<stack>.json`
(`pulumi preview --policy-pack policies --policy-pack-config policies/config/prod.json`).
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import ALL_POLICIES

PolicyPack(
    name="promote-code-guardrails",
    description=__doc__,
    # Every rule also sets its own level; this is the fail-closed default for any new one.
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=list(ALL_POLICIES),
)
