"""The emulator's per-request fault modes over HTTP: a 5xx or a delay for the next n requests of one path (and, at
the token endpoint, one grant type), a slow_down storm of CIBA polls, armed from Python or from the control plane."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aegis_local.auth0 import (
    CIBA_GRANT,
    DEFAULT_APPROVER_SUB,
    DEFAULT_CONNECTION,
    FEDERATED_TOKEN_TYPE,
    SUBJECT_TOKEN_TYPE_ACCESS,
    TOKEN_VAULT_GRANT,
    Auth0Emulator,
)
from aegis_local.auth0.app import BC_AUTHORIZE_PATH, JWKS_PATH, TOKEN_PATH
from tests.support.auth0_wire import Wire

# Shorter than every delay below, as the functions' read timeout is shorter than the delays the fault suite injects.
CLIENT_READ_TIMEOUT = 0.2
DELAY = 0.6


@pytest.fixture(autouse=True)
def _disarmed(emulator: Auth0Emulator) -> Iterator[None]:
    # The emulator is shared by the directory: nothing armed here may meet another test's requests.
    emulator.clear_faults()
    yield
    emulator.clear_faults()


def wait_until(condition: Any, what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def exchange(wire: Wire, access_token: str) -> httpx.Response:
    return wire.token(
        {
            "grant_type": TOKEN_VAULT_GRANT,
            "subject_token_type": SUBJECT_TOKEN_TYPE_ACCESS,
            "subject_token": access_token,
            "requested_token_type": FEDERATED_TOKEN_TYPE,
            "connection": DEFAULT_CONNECTION,
        }
    )


def test_a_status_fault_answers_the_next_requests_of_its_path_and_then_the_tenant_answers(
    wire: Wire, emulator: Auth0Emulator
) -> None:
    emulator.inject_fault(JWKS_PATH, status=500, count=2)

    statuses = [wire.http.get(".well-known/jwks.json").status_code for _ in range(3)]

    assert statuses == [500, 500, 200]
    assert wire.http.get(".well-known/openid-configuration").status_code == 200
    assert emulator.armed_faults() == []


def test_a_failed_bc_authorize_never_reaches_the_tenant(wire: Wire, emulator: Auth0Emulator) -> None:
    before = len(emulator.pending(DEFAULT_APPROVER_SUB))
    emulator.inject_fault(BC_AUTHORIZE_PATH, status=503)

    failed = wire.bc_authorize()

    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert len(emulator.pending(DEFAULT_APPROVER_SUB)) == before  # no push was sent
    assert wire.bc_authorize().status_code == 200


def test_the_ciba_poll_and_the_token_exchange_fail_separately(wire: Wire, emulator: Auth0Emulator) -> None:
    started = wire.start_request()
    emulator.approve(started["auth_req_id"])
    wire.clock.advance(started["interval"])
    emulator.inject_fault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, status=500)
    emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=502)

    assert wire.poll(started["auth_req_id"]).status_code == 502
    granted = wire.poll(started["auth_req_id"])  # the failed poll never consumed the grant
    assert granted.status_code == 200, granted.text
    access_token = granted.json()["access_token"]
    assert exchange(wire, access_token).status_code == 500
    assert exchange(wire, access_token).status_code == 200


def test_a_json_token_request_meets_the_fault_of_its_grant_type(wire: Wire, emulator: Auth0Emulator) -> None:
    emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=500)
    credentials, _ = wire.client_auth("protocol-app-client")

    answer = wire.http.post("oauth/token", json={"grant_type": CIBA_GRANT, "auth_req_id": "unknown", **credentials})

    assert answer.status_code == 500
    assert (
        wire.http.post("oauth/token", json={"grant_type": CIBA_GRANT, "auth_req_id": "unknown", **credentials}).json()[
            "error"
        ]
        == "invalid_grant"
    )


def test_a_delay_outlasts_the_clients_read_timeout_and_the_request_is_still_served_late(
    wire: Wire, emulator: Auth0Emulator
) -> None:
    before = {r["auth_req_id"] for r in emulator.pending(DEFAULT_APPROVER_SUB)}
    emulator.inject_fault(BC_AUTHORIZE_PATH, delay_seconds=DELAY)
    impatient = httpx.Client(base_url=emulator.issuer, timeout=httpx.Timeout(5.0, read=CLIENT_READ_TIMEOUT))
    credentials, _ = wire.client_auth("protocol-app-client")
    form = {
        "scope": "openid",
        "login_hint": f'{{"format":"iss_sub","iss":"{emulator.issuer}","sub":"{DEFAULT_APPROVER_SUB}"}}',
        "binding_message": "Approve change 1",
        **credentials,
    }

    with impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post("bc-authorize", data=form)

    # The provider did what the client gave up on: a push is on the phone that nobody will poll for.
    late = wait_until(
        lambda: [r for r in emulator.pending(DEFAULT_APPROVER_SUB) if r["auth_req_id"] not in before],
        "the delayed request to be served",
    )
    assert len(late) == 1


def test_a_delay_with_a_status_times_out_and_never_reaches_the_tenant(wire: Wire, emulator: Auth0Emulator) -> None:
    started = wire.start_request()
    emulator.approve(started["auth_req_id"])
    wire.clock.advance(started["interval"])
    emulator.inject_fault(TOKEN_PATH, grant_type=CIBA_GRANT, status=504, delay_seconds=DELAY)
    impatient = httpx.Client(base_url=emulator.issuer, timeout=httpx.Timeout(5.0, read=CLIENT_READ_TIMEOUT))
    credentials, _ = wire.client_auth("protocol-app-client")

    with impatient, pytest.raises(httpx.ReadTimeout):
        impatient.post(
            "oauth/token", data={"grant_type": CIBA_GRANT, "auth_req_id": started["auth_req_id"], **credentials}
        )

    wait_until(lambda: not emulator.armed_faults(), "the fault to be used")
    time.sleep(DELAY)  # past the held request: it was answered 504, not served
    assert wire.poll(started["auth_req_id"]).status_code == 200


def test_other_requests_are_served_while_one_is_held(wire: Wire, emulator: Auth0Emulator) -> None:
    emulator.inject_fault(JWKS_PATH, delay_seconds=DELAY)
    with httpx.Client(base_url=emulator.issuer, timeout=5.0) as held:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(held.get, ".well-known/jwks.json")
            wait_until(lambda: not emulator.armed_faults(), "the held request to arrive")
            assert wire.http.get(".well-known/openid-configuration").status_code == 200
            assert not slow.done()
            assert slow.result().status_code == 200


def test_a_slow_down_storm_answers_ciba_polls_slow_down_without_touching_the_request(
    wire: Wire, emulator: Auth0Emulator
) -> None:
    started = wire.start_request()
    emulator.approve(started["auth_req_id"])
    wire.clock.advance(started["interval"])
    emulator.slow_down_storm(2)

    storm = [wire.poll(started["auth_req_id"]) for _ in range(2)]

    assert [(r.status_code, r.json()["error"]) for r in storm] == [(429, "slow_down")] * 2
    assert all(r.headers["Cache-Control"] == "no-store" for r in storm)
    assert wire.poll(started["auth_req_id"]).status_code == 200
    polls = [seen for seen in emulator.observed_requests() if seen.grant_type == CIBA_GRANT][-3:]
    assert len({seen.ciba_request for seen in polls}) == 1
    assert started["auth_req_id"] not in str(polls)  # a digest, never the bearer handle itself
    assert [seen.fault.error if seen.fault else None for seen in polls] == ["slow_down", "slow_down", None]


def test_the_control_plane_arms_lists_and_clears_faults(wire: Wire, emulator: Auth0Emulator) -> None:
    armed = wire.http.post(
        "__emulator/faults", json={"path": TOKEN_PATH, "grant_type": TOKEN_VAULT_GRANT, "status": 503, "count": 2}
    )
    assert armed.status_code == 200
    assert wire.http.post("__emulator/slow-down", json={"count": 3}).json() == {"count": 3}
    listed = wire.http.get("__emulator/faults").json()["armed"]
    assert [(f["grant_type"], f["status"], f["remaining"]) for f in listed] == [
        (TOKEN_VAULT_GRANT, 503, 2),
        (CIBA_GRANT, 429, 3),
    ]

    wire.http.get(".well-known/jwks.json")
    observed = wire.http.get("__emulator/faults").json()["observed"]
    assert observed[-1]["path"] == JWKS_PATH
    assert observed[-1]["fault"] is None

    assert wire.http.delete("__emulator/faults").status_code == 204
    assert wire.http.get("__emulator/faults").json()["armed"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"path": JWKS_PATH},
        {"path": JWKS_PATH, "status": 404},
        {"path": JWKS_PATH, "status": "500"},
        {"path": JWKS_PATH, "status": 500, "count": 0},
        {"path": JWKS_PATH, "status": 500, "count": True},
        {"path": JWKS_PATH, "delay_seconds": "long"},
        {"path": JWKS_PATH, "status": 500, "unknown": 1},
        {"path": "/__emulator/down", "status": 500},
        {"status": 500},
        [JWKS_PATH],
    ],
)
def test_the_control_plane_refuses_a_fault_that_means_nothing(wire: Wire, body: Any) -> None:
    answer = wire.http.post("__emulator/faults", json=body)

    assert answer.status_code == 400
    assert wire.http.get("__emulator/faults").json()["armed"] == []


@pytest.mark.parametrize("body", [{"count": 0}, {"count": "2"}, {}, None])
def test_the_control_plane_refuses_a_storm_without_a_count(wire: Wire, body: Any) -> None:
    assert wire.http.post("__emulator/slow-down", json=body).status_code == 400
