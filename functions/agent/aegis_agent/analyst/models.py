"""What the analyst exchanges with the model, and what a mission keeps of it.

`AnalystAnswer` is the one tool the model may call: its JSON schema, generated from these pydantic models, is the
Converse tool's input schema, and the model's tool input is validated against the same models. It can only name a
finding of its batch (`ref`), one of that finding's code-built candidates by index (or `notify_only` /
`needs_human`), a priority and a short text. It has no field for a change, a resource, an action or a parameter.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from aegis.approvals.requests import ANALYST_PRIORITY_MAX, ANALYST_PRIORITY_MIN, ANALYST_RATIONALE_MAX
from aegis.models import Frozen
from aegis.reporting.agent_report import AnalystChoice, FindingAnalystNote
from aegis_agent.state import DocumentRef

# The same bounds as the note the validator checks and the phone shows (aegis.approvals.requests.AnalystNote).
RATIONALE_MAX = ANALYST_RATIONALE_MAX
PRIORITY_MIN, PRIORITY_MAX = ANALYST_PRIORITY_MIN, ANALYST_PRIORITY_MAX
SUMMARY_MAX = 600

# One line of plain text: no line breaks, nothing longer than a phone can show beside a change.
Rationale = Annotated[str, StringConstraints(max_length=RATIONALE_MAX, pattern=r"^[^\r\n]*$")]


class AnalystDecision(BaseModel):
    """The model's word on one finding of its batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ref: str = Field(pattern=r"^F[1-9][0-9]{0,3}$", description="The finding's ref in the data block, e.g. F1.")
    choice: int | Literal["notify_only", "needs_human"] = Field(
        description=(
            "The index of one of the finding's candidates, or notify_only (report it, change nothing), or "
            "needs_human (a person should look before any change)."
        )
    )
    priority: int = Field(ge=PRIORITY_MIN, le=PRIORITY_MAX, description="1 = fix first, 4 = can wait.")
    rationale: Rationale = Field(description="Why, in one plain sentence for the approver (at most 200 characters).")


class AnalystAnswer(BaseModel):
    """The tool input: one decision per finding of the batch, and (first batch only) the mission summary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str | None = Field(
        default=None,
        max_length=SUMMARY_MAX,
        description="First batch only: what matters most in this account and why, in plain words for operators.",
    )
    decisions: list[AnalystDecision] = Field(description="Exactly one decision per finding of the batch.")


class FindingAnalysis(Frozen):
    """What the analyst decided for one finding it was sent, and what the plan needs to act on it: the chosen
    candidate's kind and digest (the plan rebuilds the candidates and takes the one with that digest)."""

    finding_id: str
    check_id: str
    resource_arn: str
    note: FindingAnalystNote
    chosen_digest: str | None = None
    call: int | None = None  # the call (from 1) that decided it; None when no call was made for it


class AnalystCall(Frozen):
    """One Converse call: which findings it covered, what it cost, how it ended, and where its exact input and
    output are stored (mission documents `analyst-input-<n>` / `analyst-output-<n>`)."""

    number: int = Field(ge=1)
    finding_ids: tuple[str, ...]
    outcome: str  # "ok", or a named fallback reason (aegis_agent.analyst.analyst.Fallback)
    error_code: str = ""  # the AWS error code, for `analyst-error`
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    withheld: int = 0  # secret-shaped values kept out of the stored output
    # Where the exact request and the (screened) response are; set once the node has stored them.
    input_document: DocumentRef | None = None
    output_document: DocumentRef | None = None


class AnalysisRecord(Frozen):
    """The `analysis` document."""

    model_id: str
    summary: str = ""
    findings: tuple[FindingAnalysis, ...] = ()
    calls: tuple[AnalystCall, ...] = ()

    @property
    def input_tokens(self) -> int:
        return sum(call.input_tokens for call in self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(call.output_tokens for call in self.calls)

    def fallbacks(self) -> dict[str, int]:
        """How many findings fell back to the deterministic choice, by named reason."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            if finding.note.choice == AnalystChoice.DETERMINISTIC and finding.note.fallback:
                counts[finding.note.fallback] = counts.get(finding.note.fallback, 0) + 1
        return counts


class AnalystExchange(Frozen):
    """An `analyst-input-<n>` or `analyst-output-<n>` document: the exact Converse request sent, or the response
    received with every secret-shaped value withheld (None when the call ended in an error)."""

    payload: JsonValue
