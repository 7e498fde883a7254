"""Which failures are worth retrying, and which need an operator.

One rule for the Lambda handler and the manual command:

- retryable: AWS throttling and transient errors (the codes, HTTP statuses and
  connection failures botocore's own standard retry mode retries), 5xx
  responses, name races (`ResourceInUse`, "Cannot create already existing
  ..." when two deployments create the same deterministic name), and the
  deployer's `RetryableDeployError` (endpoint busy, registry not consistent);
- everything else needs an operator: validation errors, access denied, a
  Failed endpoint, a missing model artifact, a bad configuration.
"""

from __future__ import annotations

from typing import Final, Literal

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.retries.standard import (
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

Disposition = Literal["retry", "operator"]

NAME_RACE_CODES: Final = frozenset({"ResourceInUse", "ConflictException"})
NAME_RACE_MESSAGE: Final = "cannot create already existing"
"""SageMaker's ValidationException text when a Create* call loses a name race."""
THROTTLING_STATUS: Final = 429


class DeployError(Exception):
    """The deployment cannot proceed; the message says what an operator should do."""


class RetryableDeployError(DeployError):
    """A transient condition: the approval is delivered again later."""


class EndpointBusyError(RetryableDeployError):
    """The endpoint is being created or updated; never start a second update."""


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def is_name_race(error: ClientError) -> bool:
    """A Create* call that lost to a concurrent one creating the same name."""
    return error_code(error) in NAME_RACE_CODES or NAME_RACE_MESSAGE in error_message(error).lower()


def _status(error: ClientError) -> int:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status) if isinstance(status, int) else 0


def _botocore_retries(error: ClientError) -> bool:
    context = RetryContext(attempt_number=1, parsed_response=dict(error.response))
    checkers = (ThrottledRetryableChecker(), TransientRetryableChecker())
    return any(checker.is_retryable(context) for checker in checkers)


def disposition(error: BaseException) -> Disposition:
    """ "retry" if the same call may succeed later without anyone acting, else "operator"."""
    if isinstance(error, RetryableDeployError):
        return "retry"
    if isinstance(error, DeployError):
        return "operator"
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return "retry"
    if isinstance(error, ClientError):
        status = _status(error)
        if status >= 500 or status == THROTTLING_STATUS:
            return "retry"
        if _botocore_retries(error) or is_name_race(error):
            return "retry"
    return "operator"


def is_retryable(error: BaseException) -> bool:
    return disposition(error) == "retry"
