"""A poll-mode OpenID CIBA client (OpenID Connect CIBA Core 1.0) on top of aegis_auth's OidcClient.

`start` sends the backchannel authentication request, each attempt only once `take_slot` (the approver's pacer,
aegis_approval.pacing) grants one; a rate-limit answer (HTTP 429, `too_many_requests` or `slow_down`) is waited out,
at least what Retry-After asks, and sent again. A wait longer than the invocation has left ends `start` with
`Deferred`: nothing was started, and a fresh invocation starts the request. `wait_for_decision` polls the token
endpoint until the approver decides, the request expires, the Lambda must hand over to a fresh invocation, or a
hook stops it:

- `authorization_pending` waits `interval` seconds;
- `slow_down` (HTTP 429 at Auth0, 400 at others, with or without Retry-After) adds at least 5 s to the interval
  for the rest of the request, and waits at least what Retry-After asks;
- `access_denied` is a denial, unless the request's deadline has passed (Auth0 also uses it for expiry);
- `expired_token`, or reaching the deadline, is an expiry;
- transport errors and 5xx answers are retried with backoff, re-posting the same auth_req_id only because no answer
  was read; a success answer is read exactly once and the auth_req_id is never posted again after it.

Time comes from an injectable clock and sleeper, so tests never wait for real.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from typing import Any, Protocol

from aegis_approval.errors import CibaFailed
from aegis_auth.oidc import OidcClient
from aegis_jwt.discovery import CIBA_GRANT_TYPE, ProviderMetadata
from aegis_jwt.errors import ProviderUnavailable

Clock = Callable[[], float]
Sleeper = Callable[[float], None]

DEFAULT_INTERVAL_SECONDS = 5.0  # CIBA Core §7.3: the default when the provider sends no interval
SLOW_DOWN_INCREMENT_SECONDS = 5.0
MAX_TRANSIENT_FAILURES = 6
# bc-authorize answers that say "too many requests" before the start gives up: the pacer keeps this function under
# the provider's limit, so these come from another client asking the same approver, and are waited out a while.
MAX_RATE_LIMITED_ANSWERS = 10
# The bc-authorize errors that mean "ask again later" (Auth0: 429 too_many_requests; CIBA Core: slow_down).
RATE_LIMIT_ERRORS = frozenset({"too_many_requests", "slow_down"})
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# Seconds an invocation keeps in reserve after a poll: the poll itself, token verification, sealing, SendTask*.
HANDOVER_MARGIN_SECONDS = 30.0
# Long waits are cut into slices so that heartbeats and halt checks keep coming.
WAIT_SLICE_SECONDS = 10.0


@dataclass(frozen=True)
class CibaRequest:
    """A started backchannel authentication request: everything needed to go on polling, in this or another
    invocation. `auth_req_id` is a bearer handle to the grant; it is excluded from repr and never logged."""

    auth_req_id: str = field(repr=False)
    deadline: float
    interval: float
    next_poll_at: float


@dataclass(frozen=True)
class Granted:
    token_response: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Denied:
    reason: str


@dataclass(frozen=True)
class Expired:
    reason: str


@dataclass(frozen=True)
class HandOver:
    """Not enough Lambda time is left for another wait and poll: go on in a fresh invocation from `request`."""

    request: CibaRequest


@dataclass(frozen=True)
class Deferred:
    """The backchannel request could not be sent in the time this invocation has left (the approver's pacing slot,
    or the provider's Retry-After, is further away): nothing was started; a fresh invocation starts it."""

    wait: float


Outcome = Granted | Denied | Expired | HandOver
# What the pacer answers before each bc-authorize attempt: 0 when a slot was taken, else seconds until one frees.
SlotTaker = Callable[[], float]


def _no_pacing() -> float:
    return 0.0


class WaitHooks(Protocol):
    def checkpoint(self) -> None:
        """Called before every wait slice and every poll: check the halt flag (raise to stop), send heartbeats."""

    def time_left(self) -> float:
        """Seconds this invocation may still run."""


def _backoff(failures: int) -> float:
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


@dataclass
class CibaPoller:
    client: OidcClient
    _: KW_ONLY
    clock: Clock = time.time
    sleep: Sleeper = time.sleep
    handover_margin: float = HANDOVER_MARGIN_SECONDS
    wait_slice: float = WAIT_SLICE_SECONDS
    max_transient_failures: int = MAX_TRANSIENT_FAILURES
    max_rate_limited: int = MAX_RATE_LIMITED_ANSWERS

    # --- discovery --------------------------------------------------------------------------------------------------
    def discover(self, hooks: WaitHooks) -> ProviderMetadata:
        """The provider's metadata, checked for CIBA poll mode; an unreachable document is retried with backoff."""
        failures = 0
        while True:
            hooks.checkpoint()
            try:
                metadata = self.client.metadata
            except ProviderUnavailable as exc:
                failures = self._back_off(failures, f"provider discovery failed: {exc}", hooks)
                continue
            metadata.require_ciba_poll_mode()
            return metadata

    # --- bc-authorize -----------------------------------------------------------------------------------------------
    def start(
        self, form: Mapping[str, str], hooks: WaitHooks, take_slot: SlotTaker = _no_pacing
    ) -> CibaRequest | Deferred:
        """POST the backchannel authentication request, each attempt in a slot `take_slot` grants. 5xx and transport
        errors are retried a few times, rate-limit answers (429, too_many_requests, slow_down) after their
        Retry-After; any other error raises CibaFailed. `Deferred` when the next attempt is further away than this
        invocation can wait."""
        self.discover(hooks)
        failures = 0
        limited = 0
        while True:
            hooks.checkpoint()
            slot_wait = take_slot()
            if slot_wait > 0:
                if not self._can_wait(slot_wait, hooks):
                    return Deferred(slot_wait)
                self._wait(slot_wait, hooks)
                continue
            sent_at = self.clock()
            try:
                response = self.client.post_backchannel_authentication(form)
            except ProviderUnavailable as exc:
                failures = self._back_off(failures, f"backchannel authentication failed: {exc}", hooks)
                continue
            if response.status_code == 429 or response.error in RATE_LIMIT_ERRORS:
                limited += 1
                if limited >= self.max_rate_limited:
                    raise CibaFailed(f"backchannel authentication kept being refused: {response.protocol_error()}")
                wait = max(_backoff(limited), response.retry_after or 0.0)
                if not self._can_wait(wait, hooks):
                    return Deferred(wait)
                self._wait(wait, hooks)
                continue
            if not response.ok:
                raise CibaFailed(f"backchannel authentication refused: {response.protocol_error()}")
            body = response.body
            auth_req_id = body.get("auth_req_id")
            expires_in = _positive_number(body.get("expires_in"))
            if not isinstance(auth_req_id, str) or not auth_req_id or expires_in is None:
                raise CibaFailed("backchannel authentication answer lacks auth_req_id or expires_in")
            interval = _positive_number(body.get("interval")) or DEFAULT_INTERVAL_SECONDS
            # The expiry runs from when the request may have reached the provider (the earliest moment); the
            # interval from when its answer arrived, since a provider counts it from its own response and answers
            # an early first poll with slow_down.
            return CibaRequest(
                auth_req_id=auth_req_id,
                deadline=sent_at + expires_in,
                interval=interval,
                next_poll_at=self.clock() + interval,
            )

    def _can_wait(self, seconds: float, hooks: WaitHooks) -> bool:
        """Whether this invocation can wait `seconds` and still send the request and begin polling."""
        return hooks.time_left() - seconds >= self.handover_margin

    def _back_off(self, failures: int, why: str, hooks: WaitHooks) -> int:
        """One more unanswered request: give up with CibaFailed(`why`) after too many, else wait; the new count."""
        failures += 1
        if failures >= self.max_transient_failures:
            raise CibaFailed(why) from None
        self._wait(_backoff(failures), hooks)
        return failures

    # --- polling ----------------------------------------------------------------------------------------------------
    def wait_for_decision(self, request: CibaRequest, hooks: WaitHooks) -> Outcome:
        failures = 0
        while True:
            now = self.clock()
            if now >= request.deadline:
                return Expired("the approval request reached its expiry without a decision")
            wait = max(0.0, request.next_poll_at - now)
            if hooks.time_left() - wait < self.handover_margin:
                return HandOver(request)
            self._wait(wait, hooks)
            hooks.checkpoint()
            if self.clock() >= request.deadline:
                return Expired("the approval request reached its expiry without a decision")
            try:
                response = self.client.post_token({"grant_type": CIBA_GRANT_TYPE, "auth_req_id": request.auth_req_id})
            except ProviderUnavailable as exc:
                # No answer was read, so the grant cannot have been handed to us: polling again is safe.
                failures += 1
                if failures >= self.max_transient_failures:
                    raise CibaFailed(f"token endpoint unavailable: {exc}") from None
                request = replace(request, next_poll_at=self.clock() + max(request.interval, _backoff(failures)))
                continue
            failures = 0
            if response.ok:
                return Granted(self._read_success(response.body))
            error = response.error
            if error == "authorization_pending":
                request = replace(request, next_poll_at=self.clock() + request.interval)
            elif error == "slow_down" or response.status_code == 429:
                interval = max(request.interval + SLOW_DOWN_INCREMENT_SECONDS, response.retry_after or 0.0)
                request = replace(request, interval=interval, next_poll_at=self.clock() + interval)
            elif error == "access_denied":
                if self.clock() >= request.deadline:
                    return Expired("the approval request expired")
                return Denied("the approver denied the request")
            elif error == "expired_token":
                return Expired("the approval request expired")
            else:
                raise CibaFailed(f"token endpoint refused the poll: {response.protocol_error()}")

    @staticmethod
    def _read_success(body: Mapping[str, Any]) -> Mapping[str, Any]:
        access_token = body.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise CibaFailed("token endpoint answered success without an access_token")
        token_type = body.get("token_type")
        if token_type is not None and (not isinstance(token_type, str) or token_type.lower() != "bearer"):
            raise CibaFailed("token endpoint answered with a token type other than Bearer")
        return body

    def _wait(self, seconds: float, hooks: WaitHooks) -> None:
        remaining = seconds
        while remaining > 0:
            hooks.checkpoint()
            step = min(remaining, self.wait_slice)
            self.sleep(step)
            remaining -= step
