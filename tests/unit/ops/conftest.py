from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.moto_account import fresh_layer_caches  # noqa: F401 (an autouse fixture of this folder)
from tests.unit.ops.world import AUDIENCE, Issuer, OpsWorld, build_world


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    served = Issuer()
    yield served
    served.close()


@pytest.fixture
def ops_environment(issuer: Issuer) -> dict[str, str]:
    return {
        "MISSIONS_TABLE": "Missions",
        "AUDIT_TABLE": "Audit",
        "CONTROL_TABLE": "Control",
        "AUTH0_ISSUER": issuer.issuer,
        "OPS_API_AUDIENCE": AUDIENCE,
        "ACCOUNT_ID": "123456789012",
        "UNDO_ENABLED": "true",
        "EVENT_BUS_NAME": "default",
        "APPROVAL_TIMEOUT_SECONDS": "600",
        "POWERTOOLS_SERVICE_NAME": "aegis-ops",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@pytest.fixture
def world(
    aws: boto3.Session, issuer: Issuer, ops_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> OpsWorld:
    for name, value in ops_environment.items():
        monkeypatch.setenv(name, value)
    built = build_world(aws, issuer)
    _record_put_events(built, monkeypatch)
    return built


def _record_put_events(world: OpsWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PutEvents entry the function sends, as sent (moto accepts them and answers with event ids)."""
    original = boto3.client

    def client(service_name: str, *args: Any, **kwargs: Any) -> Any:
        made = original(service_name, *args, **kwargs)
        if service_name == "events":
            made.meta.events.register(
                "provide-client-params.events.PutEvents",
                lambda params, **_: world.put_events.extend(params["Entries"]),
            )
        return made

    monkeypatch.setattr(boto3, "client", client)
