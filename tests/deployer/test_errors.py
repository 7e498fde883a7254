"""Which failures the deployer retries and which it hands to an operator."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

from ml.deployer.errors import DeployError, EndpointBusyError, disposition


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "CreateModel",
    )


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException", "Rate exceeded"),
        client_error("Throttling"),
        client_error("SlowDown", status=503),
        client_error("InternalFailure", status=500),
        client_error("ServiceUnavailable", status=503),
        client_error("Anything", status=429),
        client_error("ResourceInUse", "Endpoint config in use"),
        client_error("ValidationException", 'Cannot create already existing model "arn:x"'),
        EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"),
        ConnectTimeoutError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com"),
        EndpointBusyError("endpoint is Updating"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:30],
)
def test_transient_failures_are_retried(error: Exception) -> None:
    assert disposition(error) == "retry"


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException", "Could not find model package"),
        client_error("AccessDeniedException", "not authorized", status=403),
        client_error("ResourceLimitExceeded", "ml.g5.xlarge for endpoint usage"),
        DeployError("endpoint is Failed"),
        ValueError("bad configuration"),
        KeyError("unexpected"),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:30],
)
def test_other_failures_need_an_operator(error: Exception) -> None:
    assert disposition(error) == "operator"
