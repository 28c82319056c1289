"""The CIBA poll loop on the wire: intervals, slow_down in both dialects, pending, denial, expiry, lost answers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from aegis_approval.ciba import CibaPoller, CibaRequest, Deferred, Denied, Expired, Granted, HandOver
from aegis_approval.errors import CibaFailed
from aegis_auth.oidc import ClientAuthentication, OidcClient
from aegis_jwt.discovery import CIBA_GRANT_TYPE
from aegis_local.auth0.clock import ManualClock
from tests.support.provider_double import CLIENT_ID, ProviderDouble, Reply, oauth_error

START = 1_800_000_000.0
PENDING = oauth_error(400, "authorization_pending")
SUCCESS: Reply = (200, {"access_token": "at", "token_type": "Bearer", "expires_in": 60}, {})


class Hooks:
    def __init__(self, clock: ManualClock, lambda_seconds: float = 900.0) -> None:
        self.clock = clock
        self.checkpoints = 0
        self.ends_at = clock() + lambda_seconds

    def checkpoint(self) -> None:
        self.checkpoints += 1

    def time_left(self) -> float:
        return self.ends_at - self.clock()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def provider(clock: ManualClock) -> ProviderDouble:
    return ProviderDouble(clock=clock)


@pytest.fixture
def poller(provider: ProviderDouble, clock: ManualClock) -> CibaPoller:
    auth = ClientAuthentication(CLIENT_ID, "client_secret_post", lambda: SecretStr("secret"))
    client = OidcClient(provider.issuer, auth, http=provider.client(), clock=clock)
    return CibaPoller(client, clock=clock, sleep=clock.advance)


def request(clock: ManualClock, *, expires_in: float = 300, interval: float = 5) -> CibaRequest:
    return CibaRequest(
        auth_req_id="req-1", deadline=clock() + expires_in, interval=interval, next_poll_at=clock() + interval
    )


def poll_times(provider: ProviderDouble) -> list[float]:
    return [r.at - START for r in provider.requests_to("/oauth/token")]


def test_pending_for_several_polls_then_granted_honours_the_interval(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([PENDING, PENDING, PENDING, SUCCESS])
    outcome = poller.wait_for_decision(request(clock), Hooks(clock))
    assert isinstance(outcome, Granted)
    assert outcome.token_response["access_token"] == "at"
    assert poll_times(provider) == [5, 10, 15, 20]
    polls = provider.requests_to("/oauth/token")
    assert all(p.form["grant_type"] == CIBA_GRANT_TYPE and p.form["auth_req_id"] == "req-1" for p in polls)


def test_a_success_is_read_once_and_never_polled_again(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([SUCCESS, SUCCESS])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Granted)
    assert len(provider.requests_to("/oauth/token")) == 1
    assert len(provider.token_script) == 1


@pytest.mark.parametrize(
    "slow_down",
    [
        oauth_error(429, "slow_down", {"Retry-After": "10"}),  # Auth0
        oauth_error(400, "slow_down"),  # RFC 8628 / CIBA Core dialect, no Retry-After
        (429, "", {}),  # a bare 429 from a gateway
    ],
    ids=["auth0-429-retry-after", "standard-400", "bare-429"],
)
def test_slow_down_adds_at_least_five_seconds_for_the_rest_of_the_request(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock, slow_down: Reply
) -> None:
    provider.token_script.extend([PENDING, slow_down, PENDING, PENDING, SUCCESS])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Granted)
    times = poll_times(provider)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] == 5
    assert gaps[1] >= 10
    assert gaps[2] >= 10
    assert gaps[3] >= 10
    assert gaps[2] == gaps[3] == gaps[1]


def test_slow_down_waits_at_least_what_retry_after_asks_even_as_an_http_date(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    def slow_down_until_30s_later(double: ProviderDouble, _: object) -> Reply:
        later = datetime.fromtimestamp(double.clock() + 30, UTC)
        return 400, {"error": "slow_down"}, {"Retry-After": format_datetime(later, usegmt=True)}

    provider.token_script.extend([slow_down_until_30s_later, PENDING, SUCCESS])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Granted)
    assert poll_times(provider) == [5, 35, 65]


def test_slow_down_growth_accumulates(poller: CibaPoller, provider: ProviderDouble, clock: ManualClock) -> None:
    slow = oauth_error(400, "slow_down")
    provider.token_script.extend([slow, slow, slow, SUCCESS])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Granted)
    assert poll_times(provider) == [5, 15, 30, 50]


def test_a_5xx_and_a_lost_answer_in_the_middle_are_retried_with_backoff(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([PENDING, (502, "bad gateway", {}), httpx.ReadTimeout("lost"), PENDING, SUCCESS])
    outcome = poller.wait_for_decision(request(clock), Hooks(clock))
    assert isinstance(outcome, Granted)
    times = poll_times(provider)
    assert len(times) == 5
    assert all(b - a >= 5 for a, b in itertools.pairwise(times))
    assert {p.form["auth_req_id"] for p in provider.requests_to("/oauth/token")} == {"req-1"}


def test_a_provider_that_stays_down_fails_the_request_after_bounded_retries(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([(503, "down", {})] * 6)
    with pytest.raises(CibaFailed, match="unavailable"):
        poller.wait_for_decision(request(clock), Hooks(clock))
    assert len(provider.requests_to("/oauth/token")) == 6
    assert clock() - START < 300


def test_access_denied_is_a_denial(poller: CibaPoller, provider: ProviderDouble, clock: ManualClock) -> None:
    provider.token_script.extend([PENDING, oauth_error(400, "access_denied")])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Denied)


def test_expired_token_is_an_expiry(poller: CibaPoller, provider: ProviderDouble, clock: ManualClock) -> None:
    provider.token_script.extend([PENDING, oauth_error(400, "expired_token")])
    assert isinstance(poller.wait_for_decision(request(clock), Hooks(clock)), Expired)


def test_access_denied_at_the_deadline_is_auth0s_way_of_saying_expired(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    def deny_after_the_deadline(double: ProviderDouble, _: object) -> Reply:
        clock.advance(20)  # the answer arrives after the deadline
        return oauth_error(400, "access_denied")

    provider.token_script.append(deny_after_the_deadline)
    assert isinstance(poller.wait_for_decision(request(clock, expires_in=10), Hooks(clock)), Expired)


def test_the_deadline_ends_the_wait_without_another_poll(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([PENDING] * 3)
    outcome = poller.wait_for_decision(request(clock, expires_in=14), Hooks(clock))
    assert isinstance(outcome, Expired)
    assert poll_times(provider) == [5, 10]


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client", "unauthorized_client", "invalid_request"])
def test_other_oauth_errors_fail_the_request(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock, error: str
) -> None:
    provider.token_script.append(oauth_error(400 if error != "invalid_client" else 401, error))
    with pytest.raises(CibaFailed, match=error):
        poller.wait_for_decision(request(clock), Hooks(clock))


def test_a_success_without_an_access_token_or_with_another_token_type_fails(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.append((200, {"token_type": "Bearer"}, {}))
    with pytest.raises(CibaFailed, match="access_token"):
        poller.wait_for_decision(request(clock), Hooks(clock))
    provider.token_script.append((200, {"access_token": "at", "token_type": "DPoP"}, {}))
    with pytest.raises(CibaFailed, match="Bearer"):
        poller.wait_for_decision(request(clock), Hooks(clock))


def test_it_hands_over_before_the_lambda_runs_out(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([PENDING, PENDING])
    outcome = poller.wait_for_decision(request(clock), Hooks(clock, lambda_seconds=44))
    assert isinstance(outcome, HandOver)
    assert poll_times(provider) == [5, 10]  # at 10 s, 34 s are left: another 5 s wait would leave less than 30
    assert outcome.request.next_poll_at == START + 15
    assert outcome.request.auth_req_id == "req-1"


def test_long_waits_keep_calling_the_checkpoint(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.token_script.extend([oauth_error(429, "slow_down", {"Retry-After": "60"}), SUCCESS])
    hooks = Hooks(clock)
    assert isinstance(poller.wait_for_decision(request(clock), hooks), Granted)
    assert hooks.checkpoints >= 60 / 10  # a halt check and heartbeat at least every 10 s of waiting


# --- bc-authorize ---------------------------------------------------------------------------------------------------
def test_start_reads_auth_req_id_expiry_and_interval(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.append((200, {"auth_req_id": "abc", "expires_in": 120, "interval": 7}, {}))
    started = poller.start({"scope": "openid"}, Hooks(clock))
    assert (started.auth_req_id, started.deadline, started.interval, started.next_poll_at) == (
        "abc",
        START + 120,
        7,
        START + 7,
    )
    assert "abc" not in repr(started)


def test_the_first_poll_waits_the_interval_from_the_answer_not_from_the_request(
    provider: ProviderDouble, clock: ManualClock
) -> None:
    """A provider counts the interval from its own response; polling earlier earns slow_down (+5 s)."""

    def slow_network(request: httpx.Request) -> httpx.Response:
        response = provider.transport().handle_request(request)
        if request.url.path.endswith("bc-authorize"):
            clock.advance(0.8)  # the answer takes a while to arrive
        return response

    auth = ClientAuthentication(CLIENT_ID, "client_secret_post", lambda: SecretStr("secret"))
    client = OidcClient(
        provider.issuer, auth, http=httpx.Client(transport=httpx.MockTransport(slow_network)), clock=clock
    )
    poller = CibaPoller(client, clock=clock, sleep=clock.advance)
    provider.backchannel_script.append((200, {"auth_req_id": "abc", "expires_in": 120, "interval": 1}, {}))
    started = poller.start({"scope": "openid"}, Hooks(clock))
    assert started.deadline == START + 120  # expiry counted from the earliest moment the provider saw it
    assert started.next_poll_at == START + 0.8 + 1


def test_start_defaults_the_interval_to_five_seconds(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.append((200, {"auth_req_id": "abc", "expires_in": 120}, {}))
    assert poller.start({"scope": "openid"}, Hooks(clock)).interval == 5


def test_start_retries_5xx_and_rate_limits_then_gives_up_on_refusals(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.extend(
        [
            (500, "oops", {}),
            oauth_error(429, "too_many_requests", {"Retry-After": "20"}),
            (200, {"auth_req_id": "abc", "expires_in": 120, "interval": 5}, {}),
        ]
    )
    assert poller.start({"scope": "openid"}, Hooks(clock)).auth_req_id == "abc"
    assert clock() - START >= 21
    provider.backchannel_script.append(oauth_error(400, "invalid_request"))
    with pytest.raises(CibaFailed, match="invalid_request"):
        poller.start({"scope": "openid"}, Hooks(clock))
    provider.backchannel_script.append((200, {"expires_in": 120}, {}))
    with pytest.raises(CibaFailed, match="auth_req_id"):
        poller.start({"scope": "openid"}, Hooks(clock))


def test_discovery_outages_at_start_are_retried_with_backoff(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.discovery_outages = 2
    provider.backchannel_script.append((200, {"auth_req_id": "abc", "expires_in": 120, "interval": 5}, {}))
    assert poller.start({"scope": "openid"}, Hooks(clock)).auth_req_id == "abc"
    assert len(provider.requests_to("/.well-known/openid-configuration")) == 3
    assert clock() - START >= 1 + 2


def test_a_provider_whose_discovery_stays_down_fails_the_start(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.discovery_outages = 100
    with pytest.raises(CibaFailed, match="discovery"):
        poller.start({"scope": "openid"}, Hooks(clock))
    assert provider.requests_to("/bc-authorize") == []


# --- pacing and rate limits at bc-authorize ---------------------------------------------------------------------------
STARTED: Reply = (200, {"auth_req_id": "abc", "expires_in": 120, "interval": 5}, {})


class Slots:
    """A pacer that grants a slot once `free_at` is reached, counting what was asked."""

    def __init__(self, clock: ManualClock, free_at: float) -> None:
        self.clock = clock
        self.free_at = free_at
        self.asked = 0
        self.taken: list[float] = []

    def __call__(self) -> float:
        self.asked += 1
        if self.clock() < self.free_at:
            return self.free_at - self.clock()
        self.taken.append(self.clock() - START)
        return 0.0


def test_start_waits_for_the_pacers_slot_with_checkpoints_then_sends(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.append(STARTED)
    slots = Slots(clock, START + 45)
    hooks = Hooks(clock)
    started = poller.start({"scope": "openid"}, hooks, take_slot=slots)
    assert isinstance(started, CibaRequest)
    assert [r.at - START for r in provider.requests_to("/bc-authorize")] == [45]
    assert slots.taken == [45]
    assert hooks.checkpoints >= 45 / 10


def test_start_defers_to_a_fresh_invocation_when_the_slot_is_further_than_the_time_left(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.append(STARTED)
    outcome = poller.start({"scope": "openid"}, Hooks(clock, lambda_seconds=60), take_slot=Slots(clock, START + 31))
    assert outcome == Deferred(31)
    assert provider.requests_to("/bc-authorize") == []  # nothing was started
    assert clock() == START  # and nothing waited for
    # With just enough time (31 s to wait, 30 s kept in reserve) it waits and sends.
    started = poller.start({"scope": "openid"}, Hooks(clock, lambda_seconds=61), take_slot=Slots(clock, START + 31))
    assert isinstance(started, CibaRequest)


@pytest.mark.parametrize(
    "refusal",
    [
        oauth_error(429, "too_many_requests", {"Retry-After": "20"}),  # Auth0
        oauth_error(400, "slow_down", {"Retry-After": "20"}),  # CIBA Core's dialect
        oauth_error(400, "too_many_requests", {"Retry-After": "20"}),
        (429, "", {"Retry-After": "20"}),  # a bare 429 from a gateway
    ],
    ids=["auth0-429", "slow-down-400", "too-many-requests-400", "bare-429"],
)
def test_a_rate_limited_start_waits_out_retry_after_in_a_new_slot(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock, refusal: Reply
) -> None:
    provider.backchannel_script.extend([refusal, STARTED])
    slots = Slots(clock, START)
    started = poller.start({"scope": "openid"}, Hooks(clock), take_slot=slots)
    assert isinstance(started, CibaRequest)
    assert [r.at - START for r in provider.requests_to("/bc-authorize")] == [0, 20]
    assert slots.taken == [0, 20]  # every attempt is paced: the refused one may have been counted


def test_a_retry_after_longer_than_the_time_left_defers_the_start(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.append(oauth_error(429, "too_many_requests", {"Retry-After": "50"}))
    outcome = poller.start({"scope": "openid"}, Hooks(clock, lambda_seconds=70))
    assert outcome == Deferred(50)
    assert len(provider.requests_to("/bc-authorize")) == 1


def test_a_provider_that_keeps_refusing_for_rate_fails_the_start_by_name(
    poller: CibaPoller, provider: ProviderDouble, clock: ManualClock
) -> None:
    provider.backchannel_script.extend([oauth_error(429, "too_many_requests", {"Retry-After": "1"})] * 10)
    with pytest.raises(CibaFailed, match="kept being refused"):
        poller.start({"scope": "openid"}, Hooks(clock, lambda_seconds=100_000))
    assert len(provider.requests_to("/bc-authorize")) == 10
