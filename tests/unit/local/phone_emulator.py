"""The Auth0 emulator the tests of the phone (the demo's and the command line's) ask for approvals, asked the way the
approval function asks it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from aegis_local.auth0 import DEFAULT_APPROVAL_CLIENT_ID, Auth0Emulator, EmulatorConfig, ManualClock
from tests.support.auth0_wire import Wire


@contextmanager
def approval_wire(clock: ManualClock, **settings: Any) -> Iterator[Wire]:
    """A running emulator with the default tenant (`settings` overriding its own), and a client of it."""
    config = EmulatorConfig.default().model_copy(update=settings)
    with Auth0Emulator(config, clock=clock) as emulator, httpx.Client(base_url=emulator.issuer, timeout=10) as http:
        yield Wire(emulator, clock, http)


def ask_approval(wire: Wire, binding_message: str, authorization_details: list[dict[str, Any]]) -> str:
    """What the approval function sends: a CIBA request for the approver, with the change as RAR details."""
    started = wire.start_request(
        client_id=DEFAULT_APPROVAL_CLIENT_ID,
        binding_message=binding_message,
        authorization_details=json.dumps(authorization_details),
    )
    return str(started["auth_req_id"])


def poll(wire: Wire, auth_req_id: str) -> httpx.Response:
    """The approval function's poll, once it has waited its polling interval."""
    wire.clock.advance(wire.emulator.config.ciba_interval_seconds)
    return wire.poll(auth_req_id, client_id=DEFAULT_APPROVAL_CLIENT_ID)
