"""The validator's named errors, spelled as Step Functions sees them.

Lambda's Python runtime reports a raised exception as `errorType = type(exc).__name__`, and the state machine's
`Catch` matches `ErrorEquals` against that string, so each class declares its state machine error name
(`Validation.PlanRefused` ...), exactly as the executor's errors do (aegis.named_errors; docs/CONTRACTS.md, "Errors
across Lambda").

Messages are built from fixed texts, rule names and identifiers of the catalogue's own form only: the plan is
untrusted input and none of its values is echoed.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class ValidatorError(NamedError):
    """Base class of the errors the validator raises to the state machine."""


class PlanRefused(ValidatorError):
    """The input is a mission plan, but it breaks a rule: no change of it is asked for approval. The state machine
    answers the agent with a refused result for each change, then fails the execution with this error."""

    error_name = "Validation.PlanRefused"


class PlanMalformed(ValidatorError):
    """The input is not a plan of this deployment's agent at all (not `{mission_id, changes}`, ids not of their
    form, or the execution not named after its mission): there is no mission to answer, so the state machine fails
    the execution with this error and resumes nobody."""

    error_name = "Validation.PlanMalformed"


class InvalidSettings(ValidatorError, ConfigurationError):
    """An environment setting of the validator is missing or invalid: the deployment is incomplete."""

    error_name = "Validation.InvalidSettings"


ERRORS: tuple[type[ValidatorError], ...] = (PlanRefused, PlanMalformed, InvalidSettings)
