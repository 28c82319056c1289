"""The approver's phone, for the demo: what a Guardian push shows, and who answers it.

A request on the phone is the approval function's CIBA `bc-authorize`: a binding message, and one
`authorization_details` object with an instruction and properties. A single change's (`aegis-change`) carries the
change's digest; a batch's (`aegis-batch`) carries the mission, the count, the counts by kind, the highest risk, the
account, the console's review link and the Merkle root of the batch's change digests. The demo matches a single
request to the change of the mission's plan by its digest, and a batch to the plan's request whose root it shows
(recomputed from the plan's changes, so the phone shows exactly what the executor will later verify), and then
answers it:

- `ApprovalPolicy` answers from the command line (`--approve all`; `--deny` and `--let-expire` name a check id, a
  change id or a request id such as `r002`, and a request is answered as a whole: a batch holding a named change is
  denied, or left to expire, with every change in it; `--drift CHECK_ID|CHANGE_ID` approves and then changes the
  resource);
- `TerminalApprover` asks a person at the terminal, showing the binding message, the instruction, the properties,
  and the before/after diff and digest of every change the request covers.

`EmulatedPhone` is the emulator's Guardian stand-in. Letting a request expire is done by lapsing it at the emulator
(its expiry moves to now) instead of waiting out `requested_expiry`: the approval function's next poll is answered
`expired_token`, exactly as at Auth0 when the time is up.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

from aegis.catalogue import ChangeBase
from aegis.catalogue.base import CHANGE_ID_PATTERN
from aegis_local.scenario.drift import supports_drift

__all__ = [
    "REQUEST_ID_PATTERN",
    "Answer",
    "ApprovalPolicy",
    "EmulatedPhone",
    "PhoneRequest",
    "TerminalApprover",
    "render_request",
]

AEGIS_CHANGE_TYPE_SUFFIX = ":aegis-change"
AEGIS_BATCH_TYPE_SUFFIX = ":aegis-batch"
# A mission's approval requests are r001, r002... in plan order (aegis.approvals.requests).
REQUEST_ID_PATTERN = r"^r[0-9]{3,}$"


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
    # A batch's: the Merkle root the approver signs, how many changes it covers, and where to review them.
    merkle_root: str | None = None
    count: int | None = None
    review_url: str | None = None
    sub: str = ""  # whose phone shows it

    @property
    def is_batch(self) -> bool:
        return self.merkle_root is not None

    @classmethod
    def from_pending(cls, pending: Mapping[str, Any], sub: str = "") -> PhoneRequest:
        instruction = ""
        properties: dict[str, str] = {}
        values: dict[str, str] = {}
        for detail in pending.get("authorization_details") or []:
            kind = str(detail.get("type", "")) if isinstance(detail, Mapping) else ""
            if not kind.endswith((AEGIS_CHANGE_TYPE_SUFFIX, AEGIS_BATCH_TYPE_SUFFIX)):
                continue
            instruction = str(detail.get("instruction") or "")
            raw = detail.get("properties") or {}
            shown = sorted(
                ((name, value) for name, value in raw.items() if isinstance(value, Mapping)),
                key=lambda item: item[1].get("display_order", 99),
            )
            for name, value in shown:
                properties[str(value.get("name") or name)] = str(value.get("value", ""))
                values[str(name)] = str(value.get("value"))
            if kind.endswith(AEGIS_BATCH_TYPE_SUFFIX):
                # A batch's object is the whole request: a stray change object beside it changes nothing here.
                break
        batch = "merkle_root" in values
        count = values.get("count", "")
        return cls(
            auth_req_id=str(pending["auth_req_id"]),
            binding_message=str(pending.get("binding_message") or ""),
            instruction=instruction,
            properties=properties,
            digest=None if batch else values.get("digest"),
            change_id=None if batch else values.get("change_id"),
            expires_at=str(pending.get("expires_at") or ""),
            merkle_root=values.get("merkle_root"),
            count=int(count) if count.isdigit() else None,
            review_url=values.get("review_url"),
            sub=sub,
        )

    def matching_change(self, plan: Iterable[ChangeBase]) -> ChangeBase | None:
        """The plan's change this request asks about: same digest (and same change id, when it is shown)."""
        if self.digest is None:
            return None
        for change in plan:
            if self.digest == change.digest and self.change_id in (None, change.change_id):
                return change
        return None


class EmulatedPhone:
    """The approvers' phones on the Auth0 emulator (its Guardian stand-in): `sub`'s, and those of `also` (the other
    approvers of the deployment, so that a two-person request is seen on both phones)."""

    def __init__(self, emulator: Any, sub: str, also: Iterable[str] = ()) -> None:
        self._emulator = emulator
        self.sub = sub
        self.subs = tuple(dict.fromkeys([sub, *also]))

    def pending(self) -> list[PhoneRequest]:
        return [PhoneRequest.from_pending(found, sub=sub) for sub in self.subs for found in self._emulator.pending(sub)]

    def answer(self, request: PhoneRequest, answer: Answer) -> None:
        """Raises `aegis_local.auth0.GuardianError` when the request is no longer pending (answered, expired)."""
        if answer is Answer.APPROVE:
            self._emulator.approve(request.auth_req_id)
        elif answer is Answer.DENY:
            self._emulator.deny(request.auth_req_id)
        else:
            self._emulator.lapse(request.auth_req_id)


class UnknownCheck(ValueError):
    """A name given on the command line is no check id the scanner knows, no change id and no request id."""


@dataclass(frozen=True)
class ApprovalPolicy:
    """How the demo answers each request: `deny`, `let_expire` and `drift` name check ids, change ids or (`deny`
    and `let_expire` only) request ids. `approve_all` covers the requests not named otherwise; without it the
    remaining ones are asked at the terminal (or refused when there is none)."""

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
        unknown = sorted(
            name
            for name in self.deny | self.let_expire | self.drift
            if name not in known and not _is_change_id(name) and not _is_request_id(name)
        )
        if unknown:
            raise UnknownCheck(
                f"unknown check id(s): {', '.join(unknown)} (known: {', '.join(sorted(known))}; or a change id "
                "chg-<20 hex>, or a request id such as r002)"
            )
        requests = sorted(name for name in self.drift if _is_request_id(name))
        if requests:
            raise UnknownCheck(
                f"--drift takes a check id or a change id, not a request id ({', '.join(requests)}): it edits one "
                "resource after its approval"
            )

    @property
    def named(self) -> frozenset[str]:
        return self.deny | self.let_expire | self.drift

    @property
    def answers_everything(self) -> bool:
        return self.approve_all

    def answer_for(self, change: ChangeBase) -> Answer | None:
        """The scripted answer to a request for this one change, or None when a person must decide."""
        found = self.answer_for_request(None, [change])
        return None if found is None else found[0]

    def why(self, change: ChangeBase) -> str:
        found = self.answer_for_request(None, [change])
        return "" if found is None else found[1]

    @property
    def names_requests(self) -> bool:
        """Whether a request id (`r002`) is named: then a phone request is answered only once its request is known."""
        return any(_is_request_id(name) for name in self.deny | self.let_expire)

    def drifts(self, change: ChangeBase) -> bool:
        """Whether --drift names this change (by its check id or its change id)."""
        return _named(self.drift, change) is not None

    def answer_for_request(self, request_id: str | None, changes: Sequence[ChangeBase]) -> tuple[Answer, str] | None:
        """The scripted answer to one request (a batch answers for all its changes at once) and why, or None when a
        person must decide. A denial named for any change of the request denies the request (one tap covers them
        all, and approving would apply the change that was to be denied), then an expiry, then a drift."""
        others = f" (with the {len(changes) - 1} other changes of its batch)" if len(changes) > 1 else ""
        scripted = ((self.deny, Answer.DENY, "--deny"), (self.let_expire, Answer.EXPIRE, "--let-expire"))
        for names, answer, flag in scripted:
            if request_id is not None and request_id in names:
                return answer, f"{flag} {request_id}"
            for change in changes:
                name = _named(names, change)
                if name is not None:
                    return answer, f"{flag} {name}{others}"
        drifting = [change for change in changes if self.drifts(change)]
        if drifting:
            cannot = next((change for change in drifting if not supports_drift(change)), None)
            if cannot is not None:
                # Approving a change nobody can make drift would apply it: --drift promised it would not be.
                return Answer.DENY, f"--drift knows no out-of-band edit for {cannot.kind}{others}"
            return Answer.APPROVE, "--drift: approve, then the resource changes before the executor runs"
        if self.approve_all:
            return Answer.APPROVE, "--approve all"
        return None

    def unused(self, request_ids: Iterable[str], changes: Iterable[ChangeBase]) -> list[str]:
        """The change and request ids named on the command line that the mission never had (a typo, another
        mission's id): said in the report, since a flag that matched nothing changed nothing."""
        seen = {*request_ids, *(change.change_id for change in changes)}
        return sorted(
            name
            for name in self.deny | self.let_expire | self.drift
            if (_is_change_id(name) or _is_request_id(name)) and name not in seen
        )


def _is_change_id(name: str) -> bool:
    return re.fullmatch(CHANGE_ID_PATTERN, name) is not None


def _is_request_id(name: str) -> bool:
    return re.fullmatch(REQUEST_ID_PATTERN, name) is not None


def _named(names: frozenset[str], change: ChangeBase) -> str | None:
    """Which of `names` designates `change` (its change id first, then its check id), if any."""
    if change.change_id in names:
        return change.change_id
    return change.check_id if change.check_id in names else None


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


type Covered = ChangeBase | Sequence[ChangeBase] | None


def _covered(changes: Covered) -> list[ChangeBase]:
    if changes is None:
        return []
    return [changes] if isinstance(changes, ChangeBase) else list(changes)


def render_request(request: PhoneRequest, changes: Covered, width: int = 100) -> list[str]:
    """What the phone shows for one request (a batch: its 7 properties), plus the structured diff of every change of
    the plan it matches (one for a single request; for a batch, each change it covers and the root recomputed from
    their digests)."""
    lines = [
        f"  binding message  {request.binding_message}",
        f"  instruction      {request.instruction}",
    ]
    for label, value in request.properties.items():
        lines.append(f"  {label:<16} {_clip(value, width - 19)}")
    lines.append(f"  expires          {request.expires_at}")
    covered = _covered(changes)
    if not covered:
        what = "request (Merkle root unknown)" if request.is_batch else "change (digest unknown)"
        lines.append(f"  !! this request matches no {what} of the mission's plan: deny it")
        return lines
    if request.is_batch:
        from aegis.approvals.merkle import merkle_root

        root = merkle_root(change.digest for change in covered)
        verdict = "= the phone's" if root == request.merkle_root else "!! NOT the phone's root: deny it"
        lines.append(f"  root of the plan's {len(covered)} changes  {root} {verdict}")
    for index, change in enumerate(covered, start=1):
        if request.is_batch:
            lines.append(f"  [{index}/{len(covered)}] {change.risk.value:<6} {change.summary()}")
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

    def ask(self, request: PhoneRequest, changes: Covered) -> Answer:
        """Show the request and every change it covers, then ask; a request that matches nothing is denied."""
        for line in render_request(request, changes, self._width):
            print(line, file=self._output)
        self._output.flush()
        if not _covered(changes):
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
