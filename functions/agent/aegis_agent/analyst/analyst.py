"""The analyst: one Converse call per batch of findings, whose answer can only choose among code-built candidates.

Every way an answer can go wrong ends in the deterministic choice for the findings concerned, with a named reason
(`Fallback`) that the report shows: the model being off, late, throttled or failing; an answer that is not exactly
one valid `record_analysis` tool use; an index that names no candidate; a missing decision; a secret-shaped value
anywhere in the answer (which is withheld from what is stored, and makes the whole call fall back); a mission
whose token budget or time is spent. None of them stops the mission.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aegis.reporting.agent_report import AnalystChoice, FindingAnalystNote
from aegis.secrets_guard import display_text, withhold_secrets
from aegis_agent.analyst.models import AnalystAnswer, AnalystCall, AnalystDecision, FindingAnalysis
from aegis_agent.analyst.prompt import TOOL_NAME, AnalystItem, batch_data, converse_request

BATCH_SIZE = 25
# The analyst's share of the scan function's 15 minutes: after it, the remaining batches are not sent.
DEADLINE_SECONDS = 300.0
THROTTLING_CODES = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceQuotaExceededException"})
TIMEOUT_CODES = frozenset({"ModelTimeoutException"})


class Fallback:
    """Named reasons the deterministic choice stood for a finding (or a call)."""

    TIMEOUT = "analyst-timeout"
    THROTTLED = "analyst-throttled"
    ERROR = "analyst-error"
    MALFORMED = "analyst-malformed"
    INVALID_CHOICE = "analyst-invalid-choice"
    MISSING_DECISION = "analyst-missing-decision"
    SECRET_IN_OUTPUT = "analyst-secret-in-output"
    BUDGET_EXHAUSTED = "analyst-budget-exhausted"
    DEADLINE = "analyst-deadline"


class AnalystSettings(BaseModel):
    """ANALYST_MODEL_ID (empty: no analyst), ANALYST_GUARDRAIL_ID/_VERSION, ANALYST_TOKEN_BUDGET (input and output
    tokens per mission), ANALYST_TIMEOUT_SECONDS (read timeout per call)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str = Field(min_length=1, max_length=2048)
    guardrail_id: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,64}$")
    guardrail_version: str = Field(default="DRAFT", pattern=r"^(DRAFT|[1-9][0-9]{0,7})$")
    token_budget: int = Field(default=200_000, ge=1)
    timeout_seconds: int = Field(default=30, ge=1, le=120)

    @property
    def guardrail(self) -> tuple[str, str] | None:
        return (self.guardrail_id, self.guardrail_version) if self.guardrail_id else None


@dataclass
class CallExchange:
    """One call's exact request, its screened response (None after an error) and its record."""

    request: dict[str, Any]
    response: Any
    record: AnalystCall


@dataclass
class AnalystRun:
    model_id: str
    summary: str = ""
    findings: list[FindingAnalysis] = field(default_factory=list)
    exchanges: list[CallExchange] = field(default_factory=list)


def overview(findings: Sequence[Any]) -> dict[str, Any]:
    """What the first batch says of the whole mission, for the summary: counts only."""
    by_severity: dict[str, int] = {}
    by_check: dict[str, int] = {}
    for finding in findings:
        by_severity[finding.severity.value] = by_severity.get(finding.severity.value, 0) + 1
        by_check[finding.check_id] = by_check.get(finding.check_id, 0) + 1
    return {"findings": len(findings), "by_severity": by_severity, "by_check": dict(sorted(by_check.items()))}


class Analyst:
    """Calls `client.converse` (a boto3 `bedrock-runtime` client) once per batch of at most BATCH_SIZE findings."""

    def __init__(
        self,
        settings: AnalystSettings,
        client: Any,
        *,
        cis: str = "v7",
        clock: Callable[[], float] = time.monotonic,
        batch_size: int = BATCH_SIZE,
        deadline_seconds: float = DEADLINE_SECONDS,
    ) -> None:
        self.settings = settings
        self._client = client
        self._cis = cis
        self._clock = clock
        self._batch_size = batch_size
        self._deadline_seconds = deadline_seconds

    def analyse(self, items: Sequence[AnalystItem], mission_overview: Mapping[str, Any]) -> AnalystRun:
        run = AnalystRun(model_id=self.settings.model_id)
        ordered = sorted(items, key=lambda item: (item.finding.check_id, item.finding.resource_arn))
        batches = [ordered[start : start + self._batch_size] for start in range(0, len(ordered), self._batch_size)]
        started = self._clock()
        spent = 0
        for number, batch in enumerate(batches, start=1):
            if spent >= self.settings.token_budget:
                run.findings.extend(_fallen_back(item, Fallback.BUDGET_EXHAUSTED) for item in batch)
                continue
            if self._clock() - started >= self._deadline_seconds:
                run.findings.extend(_fallen_back(item, Fallback.DEADLINE) for item in batch)
                continue
            data = batch_data(batch, number, len(batches), mission_overview if number == 1 else None, self._cis)
            exchange, answer = self._call(number, batch, data)
            run.exchanges.append(exchange)
            spent += exchange.record.input_tokens + exchange.record.output_tokens
            if answer is None:
                run.findings.extend(_fallen_back(item, exchange.record.outcome, number) for item in batch)
                continue
            if number == 1 and answer.summary:
                run.summary = display_text(answer.summary.replace("\r", " ").replace("\n", " ")).strip()
            run.findings.extend(_decided(batch, answer.decisions, number))
        return run

    def _call(
        self, number: int, batch: Sequence[AnalystItem], data: Mapping[str, Any]
    ) -> tuple[CallExchange, AnalystAnswer | None]:
        request = converse_request(self.settings.model_id, data, guardrail=self.settings.guardrail)
        finding_ids = tuple(item.finding.finding_id for item in batch)
        began = self._clock()
        try:
            response = self._client.converse(**request)
        except (ClientError, BotoCoreError) as exc:
            reason, code = _failure(exc)
            record = AnalystCall(
                number=number,
                finding_ids=finding_ids,
                outcome=reason,
                error_code=code,
                latency_ms=int((self._clock() - began) * 1000),
            )
            return CallExchange(request=request, response=None, record=record), None
        latency = int((self._clock() - began) * 1000)
        kept = {key: value for key, value in dict(response).items() if key != "ResponseMetadata"}
        screened, withheld = withhold_secrets(kept, "analyst.output")
        found = kept.get("usage")
        usage: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        tokens = {"input_tokens": _count(usage, "inputTokens"), "output_tokens": _count(usage, "outputTokens")}
        answer, outcome = (None, Fallback.SECRET_IN_OUTPUT) if withheld else _parsed(kept)
        record = AnalystCall(
            number=number,
            finding_ids=finding_ids,
            outcome=outcome,
            latency_ms=latency,
            withheld=len(withheld),
            **tokens,
        )
        return CallExchange(request=request, response=screened, record=record), answer


def _failure(exc: Exception) -> tuple[str, str]:
    """The named fallback reason and the AWS error code (or exception class) of a failed call."""
    if isinstance(exc, ReadTimeoutError | ConnectTimeoutError):
        return Fallback.TIMEOUT, type(exc).__name__
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or "ClientError"
        if code in THROTTLING_CODES:
            return Fallback.THROTTLED, code
        return (Fallback.TIMEOUT if code in TIMEOUT_CODES else Fallback.ERROR), code
    return Fallback.ERROR, type(exc).__name__


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and value >= 0 else 0


def _parsed(response: Mapping[str, Any]) -> tuple[AnalystAnswer | None, str]:
    """The answer, if the response is exactly one `record_analysis` tool use whose input validates; else MALFORMED."""
    if response.get("stopReason") != "tool_use":
        return None, Fallback.MALFORMED
    try:
        content = response["output"]["message"]["content"]
        uses = [block["toolUse"] for block in content if isinstance(block, Mapping) and "toolUse" in block]
    except (KeyError, TypeError):
        return None, Fallback.MALFORMED
    if len(uses) != 1 or not isinstance(uses[0], Mapping) or uses[0].get("name") != TOOL_NAME:
        return None, Fallback.MALFORMED
    tool_input = uses[0].get("input")
    try:
        if isinstance(tool_input, str):
            tool_input = json.loads(tool_input)
        return AnalystAnswer.model_validate(tool_input), "ok"
    except (ValidationError, ValueError):
        return None, Fallback.MALFORMED


def _decided(batch: Sequence[AnalystItem], decisions: Sequence[AnalystDecision], call: int) -> list[FindingAnalysis]:
    by_ref: dict[str, list[AnalystDecision]] = {}
    for decision in decisions:
        by_ref.setdefault(decision.ref, []).append(decision)
    analysed = []
    for position, item in enumerate(batch, start=1):
        found = by_ref.get(f"F{position}", [])
        if len(found) != 1:
            analysed.append(_fallen_back(item, Fallback.MISSING_DECISION, call))
            continue
        analysed.append(_applied(item, found[0], call))
    return analysed


def _applied(item: AnalystItem, decision: AnalystDecision, call: int) -> FindingAnalysis:
    rationale = display_text(decision.rationale).strip()
    if isinstance(decision.choice, int):
        if not 0 <= decision.choice < len(item.candidates):
            return _fallen_back(item, Fallback.INVALID_CHOICE, call)
        chosen = item.candidates[decision.choice]
        note = _note(item, AnalystChoice.CANDIDATE, decision.priority, rationale, chosen_kind=chosen.kind)
        return _analysis(item, note, call, chosen_digest=chosen.digest)
    choice = AnalystChoice.NOTIFY_ONLY if decision.choice == "notify_only" else AnalystChoice.NEEDS_HUMAN
    return _analysis(item, _note(item, choice, decision.priority, rationale), call)


def _fallen_back(item: AnalystItem, reason: str, call: int | None = None) -> FindingAnalysis:
    return _analysis(item, _note(item, AnalystChoice.DETERMINISTIC, None, "", fallback=reason), call)


def _note(
    item: AnalystItem,
    choice: AnalystChoice,
    priority: int | None,
    rationale: str,
    *,
    chosen_kind: str | None = None,
    fallback: str = "",
) -> FindingAnalystNote:
    return FindingAnalystNote(
        choice=choice,
        deterministic_kind=item.candidates[item.deterministic].kind,
        chosen_kind=chosen_kind,
        priority=priority,
        rationale=rationale,
        fallback=fallback,
    )


def _analysis(
    item: AnalystItem, note: FindingAnalystNote, call: int | None, chosen_digest: str | None = None
) -> FindingAnalysis:
    return FindingAnalysis(
        finding_id=item.finding.finding_id,
        check_id=item.finding.check_id,
        resource_arn=item.finding.resource_arn,
        note=note,
        chosen_digest=chosen_digest,
        call=call,
    )
