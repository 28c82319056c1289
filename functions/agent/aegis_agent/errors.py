"""Named errors of the agent.

Lambda reports an unhandled exception by its class `__name__`, and Step Functions matches on that name, so each
error class declares its contract name (`Agent.MalformedEvent`, ...; aegis.named_errors). Messages never carry input
values: an error text may be persisted by LangGraph, logged, or shown in an execution history.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class AgentError(NamedError):
    """Base of every named agent error."""


class MalformedEvent(AgentError):
    """The triggering EventBridge event is not a scheduled or an `aegis.scan` event of the documented shape."""

    error_name = "Agent.MalformedEvent"


class MalformedResume(AgentError):
    """The resume payload from the state machine is not `{mission_id, results: [ChangeResult...]}` for this plan."""

    error_name = "Agent.MalformedResume"


class InvalidSettings(AgentError, ConfigurationError):
    """An environment setting of the agent (caps, suppressions, regions) is invalid."""

    error_name = "Agent.InvalidSettings"


class MissionNotFound(AgentError):
    """The resume names a mission the Missions table does not hold."""

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


class UndoRefused(AgentError):
    """An `aegis.undo` request the agent will not plan: the mission ends `failed` with this name and the reason is
    audited (`undo.refused`). The reason is one of `aegis_agent.undo.UndoRefusal`'s fixed names, never input."""

    error_name = "Agent.UndoRefused"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"undo refused: {reason} ({detail})")
        self.reason = reason
        self.detail = detail


class AccountUnreachable(AgentError):
    """A member account's AegisScanRole could not be assumed (no such role, another external id, outside the
    organization, ...). An organization scan's mission for it ends `unreachable`: an answer, not an error to retry.
    `code` is the AWS error code only; the message AWS sent is never kept (it names principals and policies)."""

    error_name = "Agent.AccountUnreachable"

    def __init__(self, account_id: str, code: str) -> None:
        super().__init__(f"account {account_id} could not be read as its scan role ({code})")
        self.account_id = account_id
        self.code = code


class OrgScanNotConfigured(AgentError):
    """An organization scan was asked for, but this function has no ORG_SCAN_STATE_MACHINE_ARN."""

    error_name = "Agent.OrgScanNotConfigured"
