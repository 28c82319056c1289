"""Named errors of the agent.

Lambda reports an unhandled exception by its class `__name__`, and Step Functions matches on that name, so each
error class is renamed to its contract name (`Agent.MalformedEvent`, ...). Messages never carry input values: an
error text may be persisted by LangGraph, logged, or shown in an execution history.
"""

from __future__ import annotations

from typing import ClassVar


class AgentError(Exception):
    """Base of every named agent error."""

    error_name: ClassVar[str] = "Agent.Error"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.__name__ = cls.error_name


class MalformedEvent(AgentError):
    """The triggering EventBridge event is not a scheduled or an `aegis.scan` event of the documented shape."""

    error_name = "Agent.MalformedEvent"


class MalformedResume(AgentError):
    """The resume payload from the state machine is not `{mission_id, results: [ChangeResult...]}` for this plan."""

    error_name = "Agent.MalformedResume"


class InvalidSettings(AgentError):
    """An environment setting of the agent (caps, suppressions, regions) is invalid."""

    error_name = "Agent.InvalidSettings"


class MissionNotFound(AgentError):
    error_name = "Agent.MissionNotFound"


class MissionNotResumable(AgentError):
    """The mission is not waiting for approval results (already completed, failed or halted)."""

    error_name = "Agent.MissionNotResumable"


class MissionHalted(AgentError):
    """The kill switch is engaged."""

    error_name = "Agent.Halted"


class CheckpointRefused(AgentError):
    """The checkpoint serializer refused a value: a secret-shaped string, `bytes`, a secret container or an
    unregistered type. The run stops; nothing is scrubbed. The message names the kind and the path, never the value."""

    error_name = "Agent.SecretRefused"

    def __init__(self, kind: str, where: str) -> None:
        super().__init__(f"checkpoint refused a {kind} at {where}")
        self.kind = kind
        self.where = where


class CheckpointTooLarge(AgentError):
    """A checkpoint item would exceed the safety margin below DynamoDB's 400 KB item limit."""

    error_name = "Agent.CheckpointTooLarge"


class DocumentInvalid(AgentError):
    """A mission document (Missions table pages) is missing a page or is not the text its reference's digest
    names: the state and the stored document disagree, and the mission cannot go on from either."""

    error_name = "Agent.DocumentInvalid"


class ScanFailed(AgentError):
    """The scanner itself failed (not one check: those become scan errors and the scan goes on)."""

    error_name = "Agent.ScanFailed"


class GraphFailed(AgentError):
    """A graph node raised an unexpected error; the mission is marked failed with this name."""

    error_name = "Agent.GraphFailed"


def error_name(exc: BaseException) -> str:
    """The contract name of an error, or `Agent.Error` for anything unnamed (its text is never used)."""
    if isinstance(exc, AgentError):
        return exc.error_name
    return AgentError.error_name
