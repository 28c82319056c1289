"""Error classes whose name is their Step Functions error name.

Lambda's Python runtime reports a raised exception as `errorType = type(exc).__name__`, and a Task state's
`Retry`/`Catch` match `ErrorEquals` against that string (docs/CONTRACTS.md, "Errors across Lambda"). Renaming the class
makes `Executor.Throttled` or `Validation.PlanRefused` the error the state machine sees, while Python code still catches
it by class.
"""

from __future__ import annotations

from collections.abc import Callable


def step_functions_name[E: type[Exception]](name: str) -> Callable[[E], E]:
    """Class decorator: the exception class is named `name` (e.g. "Executor.ApprovalInvalid")."""

    def rename(cls: E) -> E:
        cls.__name__ = name
        cls.__qualname__ = name
        return cls

    return rename
