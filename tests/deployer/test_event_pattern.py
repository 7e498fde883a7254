"""The approval rule's pattern against realistic events, with the project's own matcher.

Sample events follow the "Model package state change" example of the
SageMaker developer guide (EventBridge chapter); moto's TestEventPattern is
not used because it does not implement EventBridge matching faithfully.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ml.deployer.events import PatternError, deployer_event_pattern, matches
from tests.deployer.support import GROUP, approval_event

ARN = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/2"
PATTERN = deployer_event_pattern(GROUP)


def event(**detail_changes: Any) -> dict[str, Any]:
    sample = approval_event(ARN, GROUP, 2)
    sample["detail"].update(detail_changes)
    return sample


def test_approval_in_this_group_matches() -> None:
    assert matches(PATTERN, event())


def test_rejection_in_this_group_matches() -> None:
    # The handler warns when a rejected package is still served.
    assert matches(PATTERN, event(ModelApprovalStatus="Rejected"))


@pytest.mark.parametrize("status", ["PendingManualApproval", "approved", ""])
def test_other_approval_states_do_not_match(status: str) -> None:
    assert not matches(PATTERN, event(ModelApprovalStatus=status))


def test_approval_in_another_group_does_not_match() -> None:
    assert not matches(PATTERN, event(ModelPackageGroupName="promote-code-prod-models"))


def test_group_name_must_match_exactly_not_by_prefix() -> None:
    assert not matches(PATTERN, event(ModelPackageGroupName=f"{GROUP}-shadow"))
    assert not matches(PATTERN, event(ModelPackageGroupName=GROUP.upper()))


def test_event_without_an_approval_status_does_not_match() -> None:
    sample = event()
    del sample["detail"]["ModelApprovalStatus"]
    assert not matches(PATTERN, sample)


def test_same_detail_from_another_source_or_type_does_not_match() -> None:
    forged = event()
    forged["source"] = "my.application"
    model_state = event()
    model_state["detail-type"] = "SageMaker Model State Change"
    assert not matches(PATTERN, forged)
    assert not matches(PATTERN, model_state)


def test_endpoint_deployment_event_does_not_match() -> None:
    deployment = {
        "version": "0",
        "id": "0bd4a141-0a02-9d8a-f977-3924c3fb259c",
        "detail-type": "SageMaker Endpoint Deployment State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-26T01:52:12Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint/promote-code-dev"],
        "detail": {"EndpointName": "promote-code-dev-endpoint", "EndpointStatus": "UPDATING"},
    }
    assert not matches(PATTERN, deployment)


def test_matcher_semantics_used_by_eventbridge() -> None:
    sample = {"detail": {"tags": ["a", "b"], "n": 2, "flag": True, "name": "promote-x"}}
    assert matches({"detail": {"tags": ["b"]}}, sample)  # any element of an array
    assert matches({"detail": {"n": [2]}}, sample)
    assert not matches({"detail": {"n": ["2"]}}, sample)  # no type coercion
    assert not matches({"detail": {"flag": [1]}}, sample)
    assert matches({"detail": {"name": [{"prefix": "promote-"}]}}, sample)
    assert matches({"detail": {"name": [{"anything-but": ["other"]}]}}, sample)
    assert not matches({"detail": {"name": [{"anything-but": "promote-x"}]}}, sample)
    assert matches({"detail": {"missing": [{"exists": False}]}}, sample)
    assert not matches({"detail": {"missing": [{"exists": True}]}}, sample)
    assert not matches({"detail": {"name": ["promote-x"]}}, {"detail": "promote-x"})


def test_matcher_refuses_filters_it_does_not_implement() -> None:
    with pytest.raises(PatternError, match="numeric"):
        matches({"detail": {"n": [{"numeric": [">", 1]}]}}, {"detail": {"n": 2}})


def test_matching_does_not_modify_the_event() -> None:
    sample = event()
    before = copy.deepcopy(sample)
    matches(PATTERN, sample)
    assert sample == before
