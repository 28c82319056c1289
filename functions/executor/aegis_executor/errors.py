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
    """The approval does not release this change: consumed, forged, for another change or execution, expired, for
    another audience or approver, or without this change's digest. Nothing was applied."""

    error_name = "Executor.ApprovalInvalid"


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


class InvalidSettings(ExecutorError, ConfigurationError):
    """An environment setting of the executor is missing or invalid: the deployment is incomplete. Nothing was
    applied; the state machine catches it as any other failure (States.ALL)."""

    error_name = "Executor.InvalidSettings"


ERRORS: tuple[type[ExecutorError], ...] = (
    InvalidRequest,
    ApprovalInvalid,
    NoConnectedAccount,
    TokenExchangeFailed,
    Throttled,
    UndoDisabled,
)
