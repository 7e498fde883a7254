"""Parliament (github.com/duo-labs/parliament) over every IAM document the stacks would create.

Every document is found by walking the captured inputs of every resource of the
offline plans (role trust and inline policies, role policies, managed policies,
bucket, repository, queue and key policies, or anything else carrying a
`Statement`), of the four stacks the suite plans plus the identity bootstrap
(where the GitHub deploy and preview roles live), plus the documents of
components built on their own here (the log bucket and the flow logs)
so they are checked before a stack wires them in.

The check fails on a finding that means privilege escalation or a malformed
document, unless `ALLOWED` lists it with its reason. Parliament reads actions and
resources only, never `Condition`, so some findings are false positives by
construction; others are real and accepted (and handed to the file's owner).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.context import REPO_ROOT
from offline.plan.capture import UNKNOWN, CapturedResource, StackPlan
from offline.plan.harness import plan_stack
from tests.security.support import FLOW_LOGS, network, stack_buckets

with warnings.catch_warnings():
    # parliament 1.6.4 imports pkg_resources (setuptools < 82 is pinned for it).
    warnings.simplefilter("ignore", UserWarning)
    import parliament
    from parliament import analyze_policy_string, enhance_finding, override_config
    from parliament.policy import Policy

override_config(
    str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
)

ESCALATION = {"PRIVILEGE_ESCALATION", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"}
MALFORMED = {
    # parliament's ERROR and MALFORMED groups
    "EXCEPTION",
    "MALFORMED_JSON",
    "MALFORMED",
    "DUPLICATE_SID",
    "RESOURCE_EFFECTIVELY_STAR",
    "RESOURCE_MISMATCH",
    # INVALID group: a name AWS would not recognise, so the statement is not what it says
    "INVALID_ARN",
    "INVALID_VERSION",
    "INVALID_SID",
    "UNKNOWN_ACTION",
    "UNKNOWN_PREFIX",
    "UNKNOWN_OPERATOR",
    "UNKNOWN_PRINCIPAL",
    "UNKNOWN_FEDERATION_SOURCE",
    "MISMATCHED_TYPE",
    "MISMATCHED_TYPE_OPERATION_TO_NULL",
}
IAM_POLICY_WRITES = frozenset(
    {
        "iam:addusertogroup",
        "iam:attachgrouppolicy",
        "iam:attachrolepolicy",
        "iam:attachuserpolicy",
        "iam:createaccesskey",
        "iam:createloginprofile",
        "iam:createpolicyversion",
        "iam:deleterolepermissionsboundary",
        "iam:deleteuserpermissionsboundary",
        "iam:putgrouppolicy",
        "iam:putrolepermissionsboundary",
        "iam:putrolepolicy",
        "iam:putuserpermissionsboundary",
        "iam:putuserpolicy",
        "iam:setdefaultpolicyversion",
        "iam:updateassumerolepolicy",
        "iam:updateloginprofile",
    }
)
"""Allowed actions that rewrite what an IAM identity may do or who may be it. Parliament's
escalation auditor needs a second action next to them (e.g. sts:AssumeRole), so on their own
(`iam:PutRolePolicy` + `iam:PassRole` on `*`) it reports only PERMISSIONS_MANAGEMENT_ACTIONS:
this check counts such a finding as escalation when it holds any of these."""


@dataclass(frozen=True)
class Finding:
    stack: str
    resource_type: str
    resource: str
    key: str
    issue: str
    what: str
    """The escalation method, the offending actions, or parliament's detail."""


@dataclass(frozen=True)
class Allowed:
    issue: str
    resource_type: str
    key: str
    resource: str
    """Regex the resource name must match in full."""
    what: str
    """Regex `Finding.what` must match in full."""
    kind: str
    """`false positive`, or `accepted` (real by parliament's rules, kept on purpose)."""
    reason: str

    def matches(self, finding: Finding) -> bool:
        return (
            finding.issue == self.issue
            and finding.resource_type == self.resource_type
            and finding.key == self.key
            and re.fullmatch(self.resource, finding.resource) is not None
            and re.fullmatch(self.what, finding.what) is not None
        )


ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
DEPLOY_POLICY = r"promote-code-identity-(dev|staging|prod)-identity-github-deploy-policy"
PREVIEW_POLICY = r"promote-code-identity-(ops|dev|staging|prod)-identity-github-preview-policy"

ALLOWED: tuple[Allowed, ...] = (
    Allowed(
        "RESOURCE_MISMATCH",
        ROLE_POLICY,
        "policy",
        DEPLOY_POLICY,
        r"lambda:(Create|Delete|Get|Update)EventSourceMapping|lambda:ListEventSourceMappings",
        "false positive",
        "Parliament reads the `lambda:*` on the stack's functions (DeployerAndEvents) as also "
        "naming the mapping actions on a function ARN; the mapping actions themselves are "
        "granted in CreateDeployerMappings/ManageDeployerMappings/ListDeployerMappings on the "
        "resource types the Service Authorization Reference gives them.",
    ),
    Allowed(
        "MALFORMED",
        ROLE,
        "assumeRolePolicy",
        r".*",
        r"Statement contains neither Resource nor NotResource",
        "false positive",
        "A trust policy has no Resource: the role it is attached to is the resource.",
    ),
    Allowed(
        "MALFORMED",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "policy",
        r"promote-code-ops-registry-(training|deployer)-policy",
        r"Statement contains neither Resource nor NotResource",
        "false positive",
        "A repository policy has no Resource: the repository it is set on is the resource "
        "(ECR rejects other resources).",
    ),
    Allowed(
        "UNKNOWN_FEDERATION_SOURCE",
        ROLE,
        "assumeRolePolicy",
        r"promote-code-identity-(ops|dev|staging|prod)-identity-github-(deploy|preview)",
        r"arn:aws:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com",
        "false positive",
        "Parliament knows Cognito, Amazon, Facebook, Google and SAML providers only; an IAM "
        "OIDC provider ARN (GitHub Actions) is a valid Federated principal.",
    ),
    Allowed(
        "PRIVILEGE_ESCALATION",
        ROLE_POLICY,
        "policy",
        DEPLOY_POLICY,
        r"CreateEC2WithExistingIP",
        "false positive",
        "iam:PassRole is conditioned on iam:PassedToService lambda, sagemaker and scheduler; "
        "an EC2 instance profile needs ec2.amazonaws.com, which no statement passes to.",
    ),
    Allowed(
        "PRIVILEGE_ESCALATION",
        ROLE_POLICY,
        "policy",
        DEPLOY_POLICY,
        r"PassExistingRoleToNewLambdaThenInvoke|EditExistingLambdaFunctionWithRole"
        r"|PassExistingRoleToNewLambdaThenTriggerWithExistingDynamo",
        "accepted",
        "The deploy role deploys the stack's deployer Lambda (fed by its approval queue through "
        "an event source mapping), so it creates and updates "
        "functions and passes roles to them; the functions are <prefix>-* and the roles it can "
        "pass are <prefix>-* roles that must carry the workload boundary, so running code as "
        "them reaches at most the boundary (its breadth: see /work/handoff/H6-wiring.md).",
    ),
    Allowed(
        "PRIVILEGE_ESCALATION",
        ROLE_POLICY,
        "policy",
        DEPLOY_POLICY,
        r"iam:putrolepolicy|iam:putrolepermissionsboundary",
        "accepted",
        "IamRolesOnlyWithBoundary: iam:PutRolePolicy and PutRolePermissionsBoundary only on "
        "<prefix>-* roles and only with iam:PermissionsBoundary = the workload boundary (a "
        "condition parliament does not read); removing the boundary and re-trusting are "
        "denied outright.",
    ),
    Allowed(
        "MISMATCHED_TYPE",
        "aws:kms/key:Key",
        "policy",
        r"promote-code-identity-(dev|staging|prod)-data-key",
        r"Type mismatch: ArnLike requires a value of type Arn but given String",
        "false positive",
        "kms:EncryptionContext:aws:logs:arn holds the log group's ARN; parliament types every "
        "encryption-context key as String, AWS's CloudWatch Logs guide matches it with ArnLike.",
    ),
    Allowed(
        "UNKNOWN_ACTION",
        ROLE_POLICY,
        "policy",
        PREVIEW_POLICY,
        r"Unknown action (events:Get\*|iam:Describe\*|lambda:Describe\*|scheduler:Describe\*"
        r"|servicequotas:Describe\*|sqs:Describe\*)",
        "accepted",
        "Read-only wildcards generated per service (Describe/Get/List) that match no action of "
        "that service: they grant nothing. To trim in infra/deploy_permissions.py.",
    ),
    Allowed(
        "RESOURCE_MISMATCH",
        ROLE_POLICY,
        "policy",
        DEPLOY_POLICY,
        r"logs:DescribeLogGroups|servicequotas:(GetRequestedServiceQuotaChange|GetServiceQuota"
        r"|ListRequestedServiceQuotaChangeHistoryByQuota)",
        "accepted",
        "Named on a resource ARN where parliament's IAM data knows only Resource '*': if AWS "
        "agrees, these statements grant nothing (a preview fails, no privilege is gained). "
        "Handed to infra/deploy_permissions.py to check against the Service Authorization "
        "Reference.",
    ),
)


def policy_documents(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(input path, value) of every input that is an IAM document, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from policy_documents(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from policy_documents(item, f"{path}[{index}]")
    elif isinstance(value, str):
        if value == UNKNOWN and re.search(r"(?i)polic(y|ies)", path):
            yield path, value
        elif '"Statement"' in value:
            try:
                document = json.loads(value)
            except ValueError:
                yield path, value
            else:
                if isinstance(document, dict) and "Statement" in document:
                    yield path, value


def analyze(stack: str, resource: CapturedResource, key: str, text: str) -> list[Finding]:
    if text == UNKNOWN:
        return [Finding(stack, resource.type, resource.name, key, "UNKNOWN_AT_PREVIEW", "")]
    found: list[Finding] = []
    for raw in analyze_policy_string(text, include_community_auditors=True).findings:
        issue = enhance_finding(raw).issue
        location = raw.location if isinstance(raw.location, dict) else {}
        if issue == "PRIVILEGE_ESCALATION":
            found.append(Finding(stack, resource.type, resource.name, key, issue, location["type"]))
        elif issue == "PERMISSIONS_MANAGEMENT_ACTIONS":
            for action in sorted(IAM_POLICY_WRITES & set(location.get("actions", ()))):
                found.append(
                    Finding(
                        stack, resource.type, resource.name, key, "PRIVILEGE_ESCALATION", action
                    )
                )
        elif issue == "RESOURCE_MISMATCH":
            # A `service:*` wildcard always includes actions of other resource types; only an
            # action the statement names itself on the wrong resource is a mistake.
            named = explicit_actions(text)
            for detail in raw.detail:
                if detail["action"].lower() in named:
                    found.append(
                        Finding(stack, resource.type, resource.name, key, issue, detail["action"])
                    )
        elif issue in ESCALATION | MALFORMED:
            found.append(Finding(stack, resource.type, resource.name, key, issue, str(raw.detail)))
    return found


def explicit_actions(text: str) -> set[str]:
    document = json.loads(text)
    body = document["Statement"]
    actions: set[str] = set()
    for statement in body if isinstance(body, list) else [body]:
        listed = statement.get("Action", [])
        for action in listed if isinstance(listed, list) else [listed]:
            if "*" not in action:
                actions.add(action.lower())
    return actions


def findings_of(plans: dict[str, StackPlan]) -> list[Finding]:
    found: list[Finding] = []
    for stack, plan in plans.items():
        for resource in plan.resources:
            for key, text in policy_documents(resource.inputs):
                found += analyze(stack, resource, key, text)
    return found


@pytest.fixture(scope="module")
def all_plans(stack_plans: dict[str, StackPlan]) -> dict[str, StackPlan]:
    """The suite's plans, the identity bootstrap and the components not yet wired in."""
    plans = dict(stack_plans)
    if "identity" not in plans and (REPO_ROOT / "Pulumi.identity.yaml").exists():
        plans["identity"] = plan_stack("identity")
    plans["component:access-logs"] = stack_buckets()
    plans["component:network"] = network(FLOW_LOGS)
    return plans


def once_per_policy(method: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """`method`, answered once per policy and arguments. parliament's community auditors
    each recompute what a document allows (four times a document; `findings_of` over the
    five plans took 5.06 s so, 2.06 s with this, with the same 114 findings), and the
    answer depends only on the document's statements."""

    @functools.wraps(method)
    def once(policy: Policy, *args: Any, **kwargs: Any) -> list[str]:
        memo = policy.__dict__.setdefault("_answers", {})
        key = (method.__name__, args, tuple(sorted(kwargs.items())))
        if key not in memo:
            memo[key] = method(policy, *args, **kwargs)
        return list(memo[key])

    return once


@pytest.fixture(scope="module")
def findings(all_plans: dict[str, StackPlan]) -> list[Finding]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("get_allowed_actions", "get_allowed_resources"):
            patch.setattr(Policy, name, once_per_policy(getattr(Policy, name)))
        return findings_of(all_plans)


def test_every_kind_of_document_is_found(all_plans: dict[str, StackPlan]) -> None:
    kinds = {
        (resource.type, key)
        for plan in all_plans.values()
        for resource in plan.resources
        for key, _ in policy_documents(resource.inputs)
    }
    assert {
        (ROLE, "assumeRolePolicy"),
        (ROLE_POLICY, "policy"),
        ("aws:iam/policy:Policy", "policy"),
        ("aws:s3/bucketPolicy:BucketPolicy", "policy"),
        ("aws:ecr/repositoryPolicy:RepositoryPolicy", "policy"),
        ("aws:sqs/queuePolicy:QueuePolicy", "policy"),
        ("aws:kms/key:Key", "policy"),
    } <= kinds


def test_no_escalation_or_malformed_finding_beyond_the_documented_ones(
    findings: list[Finding],
) -> None:
    unexplained = [f for f in findings if not any(a.matches(f) for a in ALLOWED)]
    assert not unexplained, "\n".join(map(str, unexplained))


def test_every_documented_finding_still_occurs(findings: list[Finding]) -> None:
    """An entry whose finding is gone (fixed) must leave the list, or it hides a regression."""
    stale = [a for a in ALLOWED if not any(a.matches(f) for f in findings)]
    assert not stale, "\n".join(f"{a.issue} {a.resource}: {a.what}" for a in stale)


def document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def inline_policy(name: str, text: str, key: str = "policy") -> list[Finding]:
    resource = CapturedResource(
        urn=f"urn:pulumi:dev::promote-code::{ROLE_POLICY}::{name}",
        type=ROLE_POLICY,
        name=name,
        parent=None,
        custom=True,
        provider=None,
        inputs={"role": "r", key: text},
    )
    found = findings_of({"dev": StackPlan("promote-code", "dev", (resource,))})
    return [f for f in found if not any(a.matches(f) for a in ALLOWED)]


@pytest.mark.parametrize(
    ("actions", "what"),
    [
        (["iam:PutRolePolicy", "iam:PassRole"], "iam:putrolepolicy"),
        (["iam:PutRolePolicy", "sts:AssumeRole"], "PutRolePolicy"),
        (["iam:UpdateAssumeRolePolicy", "sts:AssumeRole"], "UpdateRolePolicyToAssumeIt"),
        (["iam:AttachRolePolicy"], "iam:attachrolepolicy"),
    ],
)
def test_a_known_escalation_is_flagged(actions: list[str], what: str) -> None:
    text = document({"Sid": "Escalate", "Effect": "Allow", "Action": actions, "Resource": "*"})
    flagged = inline_policy("promote-code-dev-execution-policy", text)
    assert ("PRIVILEGE_ESCALATION", what) in {(f.issue, f.what) for f in flagged}


def test_an_allowed_escalation_is_flagged_on_any_other_role() -> None:
    """The deploy role's accepted Lambda path is not accepted for a workload role."""
    text = document(
        {
            "Sid": "PassAndRun",
            "Effect": "Allow",
            "Action": ["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"],
            "Resource": "*",
        }
    )
    flagged = inline_policy("promote-code-dev-deployer-policy", text)
    assert ("PRIVILEGE_ESCALATION", "PassExistingRoleToNewLambdaThenInvoke") in {
        (f.issue, f.what) for f in flagged
    }
    assert not inline_policy(
        "promote-code-identity-dev-identity-github-deploy-policy",
        document({"Sid": "Ok", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}),
    )


def test_a_permission_policy_without_resource_or_with_a_typo_is_malformed() -> None:
    missing = inline_policy(
        "promote-code-dev-execution-policy",
        document({"Sid": "NoResource", "Effect": "Allow", "Action": ["s3:GetObject"]}),
    )
    assert "MALFORMED" in {f.issue for f in missing}
    typo = inline_policy(
        "promote-code-dev-execution-policy",
        document({"Sid": "Typo", "Effect": "Allow", "Action": ["s3:GetObjekt"], "Resource": "*"}),
    )
    assert "UNKNOWN_ACTION" in {f.issue for f in typo}
    wrong = inline_policy(
        "promote-code-dev-execution-policy",
        document(
            {
                "Sid": "WrongResource",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": "arn:aws:sqs:eu-west-1:222222222222:queue",
            }
        ),
    )
    assert ("RESOURCE_MISMATCH", "s3:GetObject") in {(f.issue, f.what) for f in wrong}


def test_a_policy_unknown_at_preview_time_is_not_skipped() -> None:
    assert {f.issue for f in inline_policy("promote-code-dev-x", UNKNOWN)} == {"UNKNOWN_AT_PREVIEW"}


def test_a_wildcard_matching_other_resource_types_is_not_a_mistake() -> None:
    text = document(
        {
            "Sid": "StackBuckets",
            "Effect": "Allow",
            "Action": ["s3:*"],
            "Resource": [
                "arn:aws:s3:::promote-code-dev-data-222222222222",
                "arn:aws:s3:::promote-code-dev-data-222222222222/*",
            ],
        }
    )
    assert not inline_policy("promote-code-dev-execution-policy", text)
