"""The Auth0 emulator's per-request faults, as the injector decides them: which request a fault meets, how many,
in what order, and which faults cannot be armed (over HTTP: tests/integration/local/auth0/test_auth0_fault_modes.py)."""

from __future__ import annotations

import pytest

from aegis_local.auth0 import CIBA_GRANT, TOKEN_VAULT_GRANT
from aegis_local.auth0.app import (
    BC_AUTHORIZE_PATH,
    JWKS_PATH,
    TOKEN_PATH,
    FaultInjector,
    RequestFault,
)


def test_a_fault_meets_only_the_next_count_requests_of_its_path() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(JWKS_PATH, status=500, count=2))

    met = [faults.take("GET", JWKS_PATH) for _ in range(3)]

    assert [fault.status if fault else None for fault in met] == [500, 500, None]
    assert faults.take("POST", BC_AUTHORIZE_PATH) is None
    assert faults.armed() == []


def test_the_token_endpoint_tells_the_ciba_poll_from_the_token_exchange() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, status=503))

    assert faults.take("POST", TOKEN_PATH, CIBA_GRANT) is None
    exchange = faults.take("POST", TOKEN_PATH, TOKEN_VAULT_GRANT)
    assert exchange is not None
    assert exchange.status == 503
    assert faults.take("POST", TOKEN_PATH, TOKEN_VAULT_GRANT) is None


def test_a_fault_without_grant_type_meets_every_grant_of_the_token_endpoint() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(TOKEN_PATH, status=500, count=2))

    assert faults.take("POST", TOKEN_PATH, CIBA_GRANT) is not None
    assert faults.take("POST", TOKEN_PATH, TOKEN_VAULT_GRANT) is not None
    assert faults.take("POST", TOKEN_PATH, CIBA_GRANT) is None


def test_faults_on_one_path_are_used_up_in_the_order_they_were_armed() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(BC_AUTHORIZE_PATH, status=500))
    faults.arm(RequestFault(BC_AUTHORIZE_PATH, delay_seconds=11.0, count=2))

    met = [faults.take("POST", BC_AUTHORIZE_PATH) for _ in range(4)]

    assert [(f.status, f.delay_seconds) if f else None for f in met] == [(500, 0.0), (None, 11.0), (None, 11.0), None]


def test_a_slow_down_storm_answers_the_next_ciba_polls_429_slow_down() -> None:
    faults = FaultInjector()
    faults.slow_down_storm(3)

    assert faults.take("POST", TOKEN_PATH, TOKEN_VAULT_GRANT) is None
    storm = [faults.take("POST", TOKEN_PATH, CIBA_GRANT) for _ in range(4)]

    assert [(f.status, f.error) if f else None for f in storm] == [(429, "slow_down")] * 3 + [None]


def test_the_control_plane_and_the_phone_never_meet_a_fault_nor_are_logged() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(JWKS_PATH, status=500))

    assert faults.take("GET", "/__emulator/faults") is None
    assert faults.take("GET", "/__guardian/users/auth0|x/requests") is None
    assert faults.observed() == []
    assert [(fault.path, remaining) for fault, remaining in faults.armed()] == [(JWKS_PATH, 1)]


def test_every_request_is_logged_with_the_fault_it_met() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(TOKEN_PATH, grant_type=CIBA_GRANT, status=502))

    faults.take("POST", TOKEN_PATH, CIBA_GRANT, "digest-1")
    faults.take("POST", TOKEN_PATH, CIBA_GRANT, "digest-1")
    faults.take("GET", JWKS_PATH)

    log = faults.observed()
    assert [(seen.path, seen.grant_type, seen.ciba_request) for seen in log] == [
        (TOKEN_PATH, CIBA_GRANT, "digest-1"),
        (TOKEN_PATH, CIBA_GRANT, "digest-1"),
        (JWKS_PATH, None, None),
    ]
    assert [seen.fault.status if seen.fault else None for seen in log] == [502, None, None]
    assert log[0].at <= log[1].at <= log[2].at


def test_clear_disarms_faults_and_outages_and_keeps_the_log() -> None:
    faults = FaultInjector()
    faults.arm(RequestFault(JWKS_PATH, status=500))
    faults.slow_down_storm(2)
    faults.set_down(True)
    faults.fail_next(1, 500)
    faults.take("GET", JWKS_PATH)

    faults.clear()

    assert faults.armed() == []
    assert faults.decide(JWKS_PATH) is None
    assert faults.take("POST", TOKEN_PATH, CIBA_GRANT) is None
    assert len(faults.observed()) == 2


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"path": JWKS_PATH}, "5xx status, a delay, or both"),
        ({"path": JWKS_PATH, "status": 404}, "5xx"),
        ({"path": JWKS_PATH, "status": 500, "count": 0}, "count >= 1"),
        ({"path": JWKS_PATH, "delay_seconds": -1.0}, "delay"),
        ({"path": JWKS_PATH, "delay_seconds": 3600.0}, "delay"),
        ({"path": "oauth/token", "status": 500}, "starting with /"),
        ({"path": "/__emulator/faults", "status": 500}, "control plane"),
        ({"path": "/__guardian/requests/x/approve", "status": 500}, "phone"),
        ({"path": JWKS_PATH, "status": 429, "error": "slow_down"}, "CIBA polls"),
        ({"path": TOKEN_PATH, "status": 500, "error": "access_denied"}, "slow_down"),
    ],
)
def test_a_fault_that_means_nothing_is_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RequestFault(**fields)
