"""The approval function's errors, and the error names it fails a Step Functions task with.

The function is invoked asynchronously (`lambda:invoke.waitForTaskToken`), so nothing it raises reaches the state
machine: it answers the task with `SendTaskFailure(error=...)`, one of the `Approval.*` names below, which the
state machine's `Catch` matches (docs/CONTRACTS.md). Messages never carry a token or a provider's answer.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError
from aegis_jwt.errors import AuthError

# The errors a failed approval task reports to the state machine.
ERROR_DENIED = "Approval.Denied"
ERROR_EXPIRED = "Approval.Expired"
ERROR_HALTED = "Approval.Halted"
ERROR_FAILED = "Approval.Failed"


class InvalidSettings(ConfigurationError, ValueError):
    """The approval function is deployed with a missing or invalid setting ; a ValueError, as a
    bad value in the environment is caught by its callers."""

    error_name = "Approval.InvalidSettings"


class RefreshTokenScopeRefused(InvalidSettings):
    """CIBA_SCOPE asks for offline_access. No refresh token may cross the hand-off: it would outlive the one change
    approved, and the executor, a client of its own, could not even revoke it."""


class InvalidApprovalEvent(ValueError):
    """The event is neither an approval task nor a continuation: there is no task token to answer."""


class MalformedApprovalTask(ValueError):
    """The event carries a task token but not a well-formed approval task; the task is failed."""


class RequestRefused(ValueError):
    """An approval request this function may not send for this approver: the approver is not one of the request's
    or not one the policy allows for each of its changes, a batch whose root does not recompute from its items or
    holds a change the policy does not batch, a single request that is not exactly one change. Nothing is pushed."""


class CibaFailed(AuthError):
    """The CIBA exchange cannot go on: a protocol error, or the provider stayed unreachable."""


class ContinuationInvalid(ValueError):
    """A continuation id that is malformed, or an item that is not a continuation."""


class TaskGone(RuntimeError):
    """Step Functions no longer waits for this task token."""


class SelfInvocationFailed(RuntimeError):
    """Lambda did not accept the asynchronous invocation that continues an approval."""
