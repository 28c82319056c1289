"""The approver's phone, for the demo: what a Guardian push shows, and who answers it.

A request on the phone is the approval function's CIBA `bc-authorize`: a binding message, and one
`authorization_details` object with an instruction and the change's properties, its digest among them. The demo
matches each request to the change of the mission's plan by that digest (recomputed from the change itself, so the
phone shows exactly what the executor will later verify), and then answers it:

- `ApprovalPolicy` answers from the command line (`--approve all`, `--deny CHECK_ID`, `--let-expire CHECK_ID`,
  `--drift CHECK_ID`, which approves and then changes the resource);
- `TerminalApprover` asks a person at the terminal, showing the binding message, the instruction, the before/after
  diff and the digest.

`EmulatedPhone` is the emulator's Guardian stand-in. Letting a request expire is done by lapsing it at the emulator
(its expiry moves to now) instead of waiting out `requested_expiry`: the approval function's next poll is answered
`expired_token`, exactly as at Auth0 when the time is up.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

from aegis.catalogue import ChangeBase
from aegis_local.scenario.drift import supports_drift

__all__ = [
    "Answer",
    "ApprovalPolicy",
    "EmulatedPhone",
    "PhoneRequest",
    "TerminalApprover",
    "render_request",
]

AEGIS_CHANGE_TYPE_SUFFIX = ":aegis-change"


class Answer(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    EXPIRE = "expire"


@dataclass(frozen=True)
class PhoneRequest:
    """One pending backchannel request as the phone shows it."""

    auth_req_id: str
    binding_message: str
    instruction: str
    properties: dict[str, str]  # label -> value, in display order
    digest: str | None
    change_id: str | None
    expires_at: str

    @classmethod
    def from_pending(cls, pending: Mapping[str, Any]) -> PhoneRequest:
        instruction = ""
        properties: dict[str, str] = {}
        digest: str | None = None
        change_id: str | None = None
        for detail in pending.get("authorization_details") or []:
            if not isinstance(detail, Mapping) or not str(detail.get("type", "")).endswith(AEGIS_CHANGE_TYPE_SUFFIX):
                continue
            instruction = str(detail.get("instruction") or "")
            raw = detail.get("properties") or {}
            shown = sorted(
                ((name, value) for name, value in raw.items() if isinstance(value, Mapping)),
                key=lambda item: item[1].get("display_order", 99),
            )
            for name, value in shown:
                properties[str(value.get("name") or name)] = str(value.get("value", ""))
                if name == "digest":
                    digest = str(value.get("value"))
                if name == "change_id":
                    change_id = str(value.get("value"))
        return cls(
            auth_req_id=str(pending["auth_req_id"]),
            binding_message=str(pending.get("binding_message") or ""),
            instruction=instruction,
            properties=properties,
            digest=digest,
            change_id=change_id,
            expires_at=str(pending.get("expires_at") or ""),
        )

    def matching_change(self, plan: Iterable[ChangeBase]) -> ChangeBase | None:
        """The plan's change this request asks about: same digest (and same change id, when it is shown)."""
        for change in plan:
            if self.digest == change.digest and self.change_id in (None, change.change_id):
                return change
        return None


class EmulatedPhone:
    """The approver's phone on the Auth0 emulator (its Guardian stand-in)."""

    def __init__(self, emulator: Any, sub: str) -> None:
        self._emulator = emulator
        self.sub = sub

    def pending(self) -> list[PhoneRequest]:
        return [PhoneRequest.from_pending(found) for found in self._emulator.pending(self.sub)]

    def answer(self, request: PhoneRequest, answer: Answer) -> None:
        """Raises `aegis_local.auth0.GuardianError` when the request is no longer pending (answered, expired)."""
        if answer is Answer.APPROVE:
            self._emulator.approve(request.auth_req_id)
        elif answer is Answer.DENY:
            self._emulator.deny(request.auth_req_id)
        else:
            self._emulator.lapse(request.auth_req_id)


class UnknownCheck(ValueError):
    """A check id given on the command line is not one the scanner knows."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """How the demo answers each change, by its check id. `approve_all` covers the checks not named otherwise;
    without it the remaining changes are asked at the terminal (or refused when there is none)."""

    approve_all: bool = False
    deny: frozenset[str] = field(default_factory=frozenset)
    let_expire: frozenset[str] = field(default_factory=frozenset)
    drift: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        named = [("--deny", self.deny), ("--let-expire", self.let_expire), ("--drift", self.drift)]
        for index, (flag, checks) in enumerate(named):
            for other_flag, other in named[index + 1 :]:
                both = sorted(checks & other)
                if both:
                    raise ValueError(f"{', '.join(both)} given to both {flag} and {other_flag}")

    def validate(self, known_checks: Iterable[str]) -> None:
        known = set(known_checks)
        unknown = sorted((self.deny | self.let_expire | self.drift) - known)
        if unknown:
            raise UnknownCheck(f"unknown check id(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")

    @property
    def named(self) -> frozenset[str]:
        return self.deny | self.let_expire | self.drift

    @property
    def answers_everything(self) -> bool:
        return self.approve_all

    def answer_for(self, change: ChangeBase) -> Answer | None:
        """The scripted answer, or None when a person must decide."""
        if change.check_id in self.deny:
            return Answer.DENY
        if change.check_id in self.let_expire:
            return Answer.EXPIRE
        if change.check_id in self.drift:
            # Approving a change nobody can make drift would apply it: --drift promised it would not be.
            return Answer.APPROVE if supports_drift(change) else Answer.DENY
        if self.approve_all:
            return Answer.APPROVE
        return None

    def why(self, change: ChangeBase) -> str:
        if change.check_id in self.deny:
            return "--deny"
        if change.check_id in self.let_expire:
            return "--let-expire"
        if change.check_id in self.drift and not supports_drift(change):
            return f"--drift knows no out-of-band edit for {change.kind}"
        if change.check_id in self.drift:
            return "--drift: approve, then the resource changes before the executor runs"
        return "--approve all"


def _pretty(value: Any) -> list[str]:
    if value is None:
        return ["(none)"]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def side_by_side(before: Any, after: Any, width: int = 100) -> list[str]:
    """The before and after states in two columns, changed lines marked (`-` only before, `+` only after, `~`)."""
    left, right = _pretty(before), _pretty(after)
    column = max(20, (width - 5) // 2)
    lines = [f"  {'before'.ljust(column)} | after"]
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        a_part, b_part = left[a_start:a_end], right[b_start:b_end]
        for index in range(max(len(a_part), len(b_part))):
            old = a_part[index] if index < len(a_part) else ""
            new = b_part[index] if index < len(b_part) else ""
            mark = {"equal": " ", "delete": "-", "insert": "+"}.get(tag, "~")
            lines.append(f"{mark} {_clip(old, column).ljust(column)} | {_clip(new, column)}")
    return lines


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_request(request: PhoneRequest, change: ChangeBase | None, width: int = 100) -> list[str]:
    """What the phone shows for one request, plus the structured diff of the change it matches."""
    lines = [
        f"  binding message  {request.binding_message}",
        f"  instruction      {request.instruction}",
    ]
    for label, value in request.properties.items():
        lines.append(f"  {label:<16} {_clip(value, width - 19)}")
    lines.append(f"  expires          {request.expires_at}")
    if change is None:
        lines.append("  !! this request matches no change of the mission's plan (digest unknown): deny it")
        return lines
    lines.append(f"  digest           {change.digest} (matches change {change.change_id} of the plan)")
    dumped = change.model_dump(mode="json")
    lines += side_by_side(dumped.get("before"), dumped.get("after"), width)
    return lines


class TerminalApprover:
    """The person at the terminal answers for the approver: approve, deny, or let the request expire."""

    PROMPT = "  approve, deny or let it expire? [a/d/e] "

    def __init__(self, output: TextIO, read_line: Callable[[str], str] = input, width: int = 100) -> None:
        self._output = output
        self._read_line = read_line
        self._width = width

    def ask(self, request: PhoneRequest, change: ChangeBase | None) -> Answer:
        for line in render_request(request, change, self._width):
            print(line, file=self._output)
        self._output.flush()
        if change is None:
            return Answer.DENY
        while True:
            # The prompt goes to our own output: while the demo runs, sys.stdout (where input() would write it) is
            # captured into the process log.
            print(self.PROMPT, end="", file=self._output, flush=True)
            try:
                reply = self._read_line("").strip().lower()
            except EOFError:
                print("  (no more input: denying)", file=self._output)
                return Answer.DENY
            for answer in Answer:
                if reply and answer.value.startswith(reply):
                    return answer
            print("  answer a (approve), d (deny) or e (let it expire)", file=self._output)
