"""Token Vault failing once the approval is spent: the executor sends the exchange again a bounded number of times
(it consumes nothing), and past that the change ends Executor.TokenExchangeFailed with nothing applied."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from pydantic import SecretStr

from aegis_executor.errors import TokenExchangeFailed
from aegis_local.auth0 import TOKEN_VAULT_GRANT
from aegis_local.auth0.app import TOKEN_PATH
from tests.support.changes import CASES
from tests.support.executor_world import World, handoff_of


def exchanges_seen(world: World) -> int:
    return sum(1 for seen in world.emulator.observed_requests() if seen.grant_type == TOKEN_VAULT_GRANT)


@pytest.fixture
def waits(world: World) -> Iterator[list[float]]:
    waited: list[float] = []
    world.app.executor().sleep = waited.append
    yield waited
    world.emulator.clear_faults()


def test_an_exchange_that_gets_no_answer_is_sent_again_and_the_change_applied(world: World, waits: list[float]) -> None:
    case = CASES["enable-kms-key-rotation"]()
    payload = world.payload(case.change, world.approve(case.change))
    before = exchanges_seen(world)
    world.emulator.inject_fault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, status=503, count=2)

    result = world.invoke(payload)

    assert result["outcome"] == "applied", result["reason"]
    assert exchanges_seen(world) - before == 3
    assert [item["outcome"] for item in world.audit("executor.token_exchange")] == ["retrying", "retrying"]
    assert waits[: len(world.app.executor().exchange_retry_delays)] == list(world.app.executor().exchange_retry_delays)
    assert len(world.sts_calls) == 1


def test_an_exchange_unanswered_every_time_fails_the_change_with_nothing_applied(
    world: World, waits: list[float]
) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    attempts = len(world.app.executor().exchange_retry_delays) + 1
    before = exchanges_seen(world)
    world.emulator.inject_fault(TOKEN_PATH, grant_type=TOKEN_VAULT_GRANT, status=500, count=attempts + 1)

    with pytest.raises(TokenExchangeFailed):
        world.invoke(world.payload(case.change, approval))

    assert exchanges_seen(world) - before == attempts
    assert [item["outcome"] for item in world.audit("executor.token_exchange")] == ["retrying"] * (attempts - 1) + [
        "failed"
    ]
    assert world.sts_calls == []
    assert world.mutating_calls() == []
    assert not world.handoff_exists(handoff_of(approval, case.change))  # spent: never usable again


def test_a_refused_exchange_is_not_sent_again(world: World, waits: list[float]) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    executor = world.app.executor()
    executor.token_verifier()  # discovery and keys first: only the exchange meets the wrong client secret
    executor.oidc.auth = replace(executor.oidc.auth, secret_source=lambda: SecretStr("not-the-secret"))
    before = exchanges_seen(world)

    with pytest.raises(TokenExchangeFailed):
        world.invoke(world.payload(case.change, approval))

    # An answer (401 invalid_client) is a refusal, not an outage: sending it again would change nothing.
    assert exchanges_seen(world) - before == 1
    assert waits == []
    assert world.mutating_calls() == []
