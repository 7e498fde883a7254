"""The identity bootstrap: OIDC roles of all four accounts, and what no GitHub role may do."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.settings import SettingsError
from infra.stack_files import read_stack_config
from offline.plan.capture import CapturedResource, StackPlan
from offline.plan.harness import plan_stack
from tests.plan_helpers import TEST_TAG, as_list, policy_document, statements

OPS, DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333", "444444444444"
ACCOUNTS = {"ops": OPS, "dev": DEV, "staging": STAGING, "prod": PROD}
REPO = "my-org/promote-code"
STATE_BUCKET = "acme-pulumi-state"


@pytest.fixture(scope="module")
def identity(stack_plans: dict[str, StackPlan]) -> StackPlan:
    return stack_plans["identity"]


@pytest.fixture(scope="module")
def with_state() -> StackPlan:
    config = read_stack_config("identity")
    config["promote:settings"] |= {"state": {"bucket": STATE_BUCKET}}
    return plan_stack("identity", image_tag=TEST_TAG, config=config)


def _account_of(plan: StackPlan, provider_ref: str | None) -> str:
    assert provider_ref is not None
    urn = provider_ref.rsplit("::", 1)[0]
    provider = next(r for r in plan.resources if r.urn == urn)
    return str(json.loads(provider.inputs["allowedAccountIds"])[0])


def github_policies(plan: StackPlan) -> Iterator[tuple[str, CapturedResource]]:
    """(stack, policy) for every deploy and preview role policy."""
    for stack in ACCOUNTS:
        for kind in ("deploy", "preview"):
            name = f"promote-code-identity-{stack}-identity-github-{kind}-policy"
            yield stack, plan.one("aws:iam/rolePolicy:RolePolicy", name)


def allows(plan: StackPlan) -> Iterator[tuple[str, dict[str, Any]]]:
    for stack, policy in github_policies(plan):
        for statement in statements(policy_document(policy)):
            if statement["Effect"] == "Allow":
                yield stack, statement


def covers(pattern: str, action: str) -> bool:
    """Whether an IAM action pattern (wildcards allowed) covers `action`."""
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


@pytest.mark.parametrize(
    ("stack", "subject"),
    [
        ("ops", f"repo:{REPO}:ref:refs/heads/main"),
        ("dev", f"repo:{REPO}:ref:refs/heads/main"),
        ("staging", f"repo:{REPO}:environment:staging"),
        ("prod", f"repo:{REPO}:environment:prod"),
    ],
)
def test_each_account_trusts_github_for_exactly_its_subject(
    identity: StackPlan, stack: str, subject: str
) -> None:
    provider = identity.one(
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        f"promote-code-identity-{stack}-identity-provider",
    )
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]
    assert _account_of(identity, provider.provider) == ACCOUNTS[stack]
    for kind, expected_sub in (("deploy", subject), ("preview", f"repo:{REPO}:pull_request")):
        role = identity.one(
            "aws:iam/role:Role", f"promote-code-identity-{stack}-identity-github-{kind}"
        )
        assert _account_of(identity, role.provider) == ACCOUNTS[stack]
        (trust,) = statements(policy_document(role, "assumeRolePolicy"))
        assert trust["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        assert trust["Principal"] == {
            "Federated": [
                f"arn:aws:iam::{ACCOUNTS[stack]}:oidc-provider/token.actions.githubusercontent.com"
            ]
        }
        assert trust["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": expected_sub,
            }
        }


def test_no_github_role_may_assume_any_role(identity: StackPlan) -> None:
    """Finding 3: the ops role could assume OrganizationAccountAccessRole (administrator)."""
    for stack, statement in allows(identity):
        for action in as_list(statement["Action"]):
            assert not covers(action, "sts:AssumeRole"), (stack, statement["Sid"])


@pytest.mark.parametrize(
    "action",
    [
        "iam:PutRolePolicy",
        "iam:AttachRolePolicy",
        "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRolePermissionsBoundary",
        "iam:PutRolePermissionsBoundary",
        "iam:CreatePolicyVersion",
    ],
)
def test_no_github_role_may_change_a_github_role_or_boundary(
    identity: StackPlan, action: str
) -> None:
    """Finding 3: the ops role could edit `role/promote-code-github-*`, itself included."""
    protected = [
        f"arn:aws:iam::{account}:role/promote-code-github-{kind}"
        for account in ACCOUNTS.values()
        for kind in ("deploy", "preview")
    ] + [
        f"arn:aws:iam::{ACCOUNTS[s]}:policy/promote-code-{s}-workload-boundary"
        for s in ("dev", "staging", "prod")
    ]
    for stack, statement in allows(identity):
        if not any(covers(a, action) for a in as_list(statement["Action"])):
            continue
        for resource in as_list(statement.get("Resource", [])):
            hit = [arn for arn in protected if fnmatch.fnmatchcase(arn, resource)]
            assert not hit, (stack, statement["Sid"], action, hit)


def test_no_github_role_may_re_trust_a_role(identity: StackPlan) -> None:
    """Finding 5: UpdateAssumeRolePolicy on the workload roles could re-point prod's role."""
    for stack, statement in allows(identity):
        for action in as_list(statement["Action"]):
            assert not covers(action, "iam:UpdateAssumeRolePolicy"), (stack, statement["Sid"])
    for stack, policy in github_policies(identity):
        if stack == "ops" or "preview" in policy.name:
            continue
        denied = [
            a
            for s in statements(policy_document(policy))
            if s["Effect"] == "Deny"
            for a in as_list(s["Action"])
        ]
        assert "iam:UpdateAssumeRolePolicy" in denied, stack


@pytest.mark.parametrize(
    "action",
    [
        "ecr:PutImageTagMutability",
        "ecr:BatchDeleteImage",
        "ecr:SetRepositoryPolicy",
        "ecr:DeleteRepository",
        "ecr:PutLifecyclePolicy",
    ],
)
def test_no_github_role_may_rewrite_the_registry(identity: StackPlan, action: str) -> None:
    """Finding 2: `ecr:*` let CI flip a repository to MUTABLE and re-push a commit's tag."""
    for stack, statement in allows(identity):
        for pattern in as_list(statement["Action"]):
            assert not covers(pattern, action), (stack, statement["Sid"], pattern)


def test_ops_ci_can_push_new_tags(identity: StackPlan) -> None:
    policy = identity.one(
        "aws:iam/rolePolicy:RolePolicy", "promote-code-identity-ops-identity-github-deploy-policy"
    )
    by_sid = {s["Sid"]: s for s in statements(policy_document(policy))}
    push = by_sid["EcrPushNewTags"]
    assert {"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:CompleteLayerUpload"} <= set(
        push["Action"]
    )
    assert push["Resource"] == [f"arn:aws:ecr:eu-west-1:{OPS}:repository/promote-code/*"]


def _project_bucket_statements(
    documents: Iterator[tuple[str, dict[str, Any]]],
) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, statement in documents:
        resources = [r for r in as_list(statement.get("Resource", [])) if isinstance(r, str)]
        if any(r.startswith("arn:aws:s3:::") for r in resources):
            yield where, statement


def test_every_s3_statement_of_a_github_role_or_boundary_names_its_account(
    identity: StackPlan, with_state: StackPlan
) -> None:
    """Finding 4: `arn:aws:s3:::promote-code-prod-*` matches that name in any account."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for plan in (identity, with_state):
        documents += [(f"{s}:{st['Sid']}", st) for s, st in allows(plan)]
        for boundary in plan.of_type("aws:iam/policy:Policy"):
            documents += [(boundary.name, st) for st in statements(policy_document(boundary))]
    found = list(_project_bucket_statements(iter(documents)))
    assert found
    for where, statement in found:
        condition = statement.get("Condition", {}).get("StringEquals", {})
        assert condition.get("aws:ResourceAccount") in ACCOUNTS.values(), where


def test_the_execution_role_s3_statements_name_their_account(
    stack_plans: dict[str, StackPlan],
) -> None:
    for stack in ("dev", "staging", "prod"):
        plan = stack_plans[stack]
        for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            for statement in statements(policy_document(policy)):
                resources = [
                    r for r in as_list(statement.get("Resource", [])) if isinstance(r, str)
                ]
                if statement["Effect"] == "Allow" and any(
                    r.startswith("arn:aws:s3:::") for r in resources
                ):
                    condition = statement.get("Condition", {}).get("StringEquals", {})
                    assert condition.get("aws:ResourceAccount") == ACCOUNTS[stack], (
                        policy.name,
                        statement["Sid"],
                    )


def _state_sids(plan: StackPlan, stack: str, kind: str) -> dict[str, dict[str, Any]]:
    name = f"promote-code-identity-{stack}-identity-github-{kind}-policy"
    policy = plan.one("aws:iam/rolePolicy:RolePolicy", name)
    return {
        s["Sid"]: s for s in statements(policy_document(policy)) if s["Sid"].startswith("State")
    }


def test_state_access_is_granted_only_when_configured(identity: StackPlan) -> None:
    for stack in ACCOUNTS:
        assert _state_sids(identity, stack, "deploy") == {}


@pytest.mark.parametrize("stack", list(ACCOUNTS))
def test_each_deploy_role_writes_only_its_own_stack_state(
    with_state: StackPlan, stack: str
) -> None:
    """Finding 6: dev or staging could overwrite prod's state and staging's deployed_commit."""
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    written = _state_sids(with_state, stack, "deploy")["StateWrite"]["Resource"]
    for other in ACCOUNTS:
        state_file = f"{bucket}/.pulumi/stacks/promote-code/{other}.json"
        matched = any(fnmatch.fnmatchcase(state_file, r) for r in written)
        assert matched == (other == stack), (stack, other)
    identity_state = f"{bucket}/.pulumi/stacks/promote-code/identity.json"
    assert not any(fnmatch.fnmatchcase(identity_state, r) for r in written)


@pytest.mark.parametrize("stack", list(ACCOUNTS))
def test_preview_roles_write_only_locks_and_read_only_what_a_preview_needs(
    with_state: StackPlan, stack: str
) -> None:
    """Finding 6: preview roles, reachable from pull requests, read every stack's state."""
    sids = _state_sids(with_state, stack, "preview")
    bucket = f"arn:aws:s3:::{STATE_BUCKET}"
    assert sids["StateWrite"]["Resource"] == [
        f"{bucket}/.pulumi/locks/organization/promote-code/{stack}/*"
    ]
    readable = sids["StateRead"]["Resource"]
    source = {"prod": "staging", "staging": "dev"}.get(stack)
    for other in (*ACCOUNTS, "identity"):
        state_file = f"{bucket}/.pulumi/stacks/promote-code/{other}.json"
        matched = any(fnmatch.fnmatchcase(state_file, r) for r in readable)
        assert matched == (other in (stack, source)), (stack, other)
    secrets = sids["StateSecrets"]
    assert secrets["Resource"] == [f"arn:aws:kms:eu-west-1:{ACCOUNTS[stack]}:key/*"]
    assert secrets["Condition"] == {
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/promote-code-state"}
    }


def test_each_account_has_its_own_state_key_and_the_bucket_agrees(with_state: StackPlan) -> None:
    keys = [k for k in with_state.of_type("aws:kms/key:Key") if k.name.endswith("-state-key")]
    assert sorted(_account_of(with_state, k.provider) for k in keys) == sorted(ACCOUNTS.values())
    (policy,) = with_state.of_type("aws:s3/bucketPolicy:BucketPolicy")
    assert policy.inputs["bucket"] == STATE_BUCKET
    assert _account_of(with_state, policy.provider) == OPS
    document = statements(policy_document(policy))
    prod_write = next(s for s in document if s["Sid"] == "ProdStateWrite")
    assert prod_write["Principal"]["AWS"] == [
        f"arn:aws:iam::{PROD}:role/promote-code-github-deploy",
        f"arn:aws:iam::{PROD}:role/promote-code-github-preview",
    ]


@pytest.mark.parametrize("bucket", ["*", "acme-*", "Acme-State", "a", "acme..state", "x" * 64])
def test_a_wildcard_or_invalid_state_bucket_is_refused(bucket: str) -> None:
    """Finding 4: `state_bucket: "*"` gave every CI role read/write on every bucket."""
    config = read_stack_config("identity")
    config["promote:settings"] |= {"state": {"bucket": bucket}}
    with pytest.raises(SettingsError, match=r"Pulumi\.identity\.yaml: promote:settings\.state"):
        plan_stack("identity", image_tag=TEST_TAG, config=config)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_environment_deploy_role_creates_roles_only_under_the_bootstrap_boundary(
    identity: StackPlan, stack: str
) -> None:
    boundary_name = f"promote-code-{stack}-workload-boundary"
    boundary = identity.one(
        "aws:iam/policy:Policy", f"promote-code-identity-{stack}-workload-boundary"
    )
    assert boundary.inputs["name"] == boundary_name
    assert _account_of(identity, boundary.provider) == ACCOUNTS[stack]
    ceiling = {s["Sid"]: s for s in statements(policy_document(boundary))}
    assert not any(
        a.startswith(("iam:", "sts:"))
        for s in ceiling.values()
        for a in s["Action"]
        if a != "iam:PassRole"
    )
    policy = identity.one(
        "aws:iam/rolePolicy:RolePolicy",
        f"promote-code-identity-{stack}-identity-github-deploy-policy",
    )
    by_sid = {s["Sid"]: s for s in statements(policy_document(policy))}
    arn = f"arn:aws:iam::{ACCOUNTS[stack]}:policy/{boundary_name}"
    guarded = by_sid["IamRolesOnlyWithBoundary"]
    assert {"iam:CreateRole", "iam:PutRolePolicy"} <= set(guarded["Action"])
    assert guarded["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": arn}}
    unguarded = {a for s in by_sid.values() if "Condition" not in s for a in s["Action"]}
    assert not unguarded & {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"}


def test_outputs_name_every_role(identity: StackPlan) -> None:
    assert identity.outputs["deploy_role_arns"]["prod"] == (
        f"arn:aws:iam::{PROD}:role/promote-code-github-deploy"
    )


def test_no_role_is_administrator_or_wildcard(stack_plans: dict[str, StackPlan]) -> None:
    for plan in stack_plans.values():
        assert not plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        for policy in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            for statement in statements(policy_document(policy)):
                if statement["Effect"] != "Allow":
                    continue
                actions = as_list(statement["Action"])
                resources = as_list(statement.get("Resource", []))
                assert "*" not in actions, policy.name
                if "*" in resources:
                    assert "s3:*" not in actions, policy.name
                    assert "Condition" in statement or all(
                        a.split(":")[1].startswith(("Describe", "Get", "List")) for a in actions
                    ), (policy.name, statement["Sid"])
        text = json.dumps([r.inputs for r in plan.resources])
        assert "AdministratorAccess" not in text
        assert "AmazonSageMakerFullAccess" not in text


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_each_environment_data_key_is_the_bootstrap_s_and_ci_cannot_delete_it(
    identity: StackPlan, stack: str
) -> None:
    key = identity.one("aws:kms/key:Key", f"promote-code-identity-{stack}-data-key")
    assert _account_of(identity, key.provider) == ACCOUNTS[stack]
    assert key.inputs["enableKeyRotation"] is True
    alias = identity.one("aws:kms/alias:Alias", f"promote-code-identity-{stack}-data-key-alias")
    assert alias.inputs["name"] == f"alias/promote-code-{stack}"
    for owner, statement in allows(identity):
        for action in as_list(statement["Action"]):
            for forbidden in ("kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"):
                assert not covers(action, forbidden), (owner, statement["Sid"], action)
