"""The errors every function builds its own on: named errors, whose class name is the error name Lambda and Step
Functions see, and the configuration error.

Lambda's Python runtime reports a raised exception as `errorType = type(exc).__name__`, and a Task state's
`Retry`/`Catch` match `ErrorEquals` against that string (docs/CONTRACTS.md, "Errors across Lambda"). A named error
declares its name once, and that name becomes the class's `__name__`: Step Functions sees `Executor.Throttled` or
`Validation.PlanRefused` while Python code still catches the error by class.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NamedError(Exception):
    """An error reported under its contract name, declared once in the class body:

        class Throttled(ExecutorError):
            error_name = "Executor.Throttled"

    A subclass that declares no name (a function's own base class) keeps its Python name, so `error_name` is always
    the `errorType` Lambda reports for the class.
    """

    error_name: ClassVar[str] = "NamedError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "error_name" in cls.__dict__:
            cls.__name__ = cls.__qualname__ = cls.error_name
        else:
            cls.error_name = cls.__name__


class ConfigurationError(NamedError):
    """The deployment is incomplete: a setting is missing or invalid. Every function's `InvalidSettings`
    (`Agent.InvalidSettings`, `Validation.InvalidSettings` ...) and aegis_jwt's ClientConfigurationError derive from
    this one, so a handler catches any of them as one. Messages name the setting, never its value: an operator may
    have pasted something sensitive into the wrong variable."""
