"""The executor's named errors, spelled as Step Functions sees them.

Lambda's Python runtime reports a raised exception as `errorType = type(exc).__name__`, and a Task state's
`Retry`/`Catch` match `ErrorEquals` against that string (moto's interpreter reads the same `errorType` field). So
each class declares the error name of the state machine as its `__name__` — `Executor.ApprovalInvalid` and so on
(aegis.named_errors) — while Python code still catches it by class. No wrapper or translation layer sits between
the two.

A halt is not an error here: the executor reports it as the outcome `halted` (nothing applied, or where the kill
switch stopped an apply), so `Executor.Halted` is never raised.

Messages are built by the executor from fixed texts and identifiers only: never a token, a secret or a response body.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class ExecutorError(NamedError):
    """Base class of the errors the executor raises to the state machine."""


class InvalidRequest(ExecutorError):
    """The invocation payload is not an executor request (missing fields, not a catalogue change)."""

    error_name = "Executor.InvalidRequest"


class ApprovalInvalid(ExecutorError):
    """The approvals do not release this change: consumed, forged, for another change or execution, for another
    audience or approver, without this change's digest, a batch this change is not proven part of, or fewer distinct
    approvers than its risk needs. Nothing was applied, and every handoff named for the change is gone."""

    error_name = "Executor.ApprovalInvalid"


class ApprovalExpired(ExecutorError):
    """An approval's token expired before this change ran (typically a batch whose later changes run after the API's
    access-token lifetime), and nothing else was wrong with the approvals: the change is never applied on a stale
    approval. Nothing was applied, and every handoff named for the change is gone; the state machine records the
    change as expired."""

    error_name = "Executor.ApprovalExpired"


class NoConnectedAccount(ExecutorError):
    """The approver has no connected account on the Token Vault connection. Nothing was applied."""

    error_name = "Executor.NoConnectedAccount"


class TokenExchangeFailed(ExecutorError):
    """Token Vault refused the exchange or could not be reached. Nothing was applied."""

    error_name = "Executor.TokenExchangeFailed"


class Throttled(ExecutorError):
    """AWS throttled the executor before the approval was consumed; retrying the invocation is safe."""

    error_name = "Executor.Throttled"


class UndoDisabled(ExecutorError):
    """An undo was requested but the deployment configures no undo connection (UndoTokenVaultConnection), so no
    UndoRole exists. Nothing was applied and the approval was not used."""

    error_name = "Executor.UndoDisabled"


class WrongAccount(ExecutorError):
    """The change is about an account the executor cannot act in as that account: STS answered with a session of
    another account than the change's (refused before the session made any call; the approval is spent), or the
    deployment names no member role (MEMBER_REMEDIATION_ROLE_NAME) for a change about another account than its own
    (refused before the approval was used). Nothing was applied."""

    error_name = "Executor.WrongAccount"


class InvalidSettings(ExecutorError, ConfigurationError):
    """An environment setting of the executor is missing or invalid: the deployment is incomplete. Nothing was
    applied; the state machine catches it as any other failure (States.ALL)."""

    error_name = "Executor.InvalidSettings"


ERRORS: tuple[type[ExecutorError], ...] = (
    InvalidRequest,
    ApprovalInvalid,
    ApprovalExpired,
    NoConnectedAccount,
    TokenExchangeFailed,
    Throttled,
    UndoDisabled,
    WrongAccount,
)
