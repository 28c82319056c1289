"""`MotoDispatchFix`: moto's server finds each host's backend once, with the answer moto itself gives, and moto's own
method is back after `uninstall()`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from moto import backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import create_backend_app

from aegis_local.aws.moto_dispatch import MotoDispatchFix

HOSTS = ("ec2.us-east-1.amazonaws.com", "dynamodb.eu-west-1.amazonaws.com", "states.us-east-1.amazonaws.com", "s3")


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How often moto lists its package directory (the slow part of finding a backend)."""
    counted = [0]
    original = backends.list_of_moto_modules

    def counting() -> Iterable[str]:
        counted[0] += 1
        return original()

    monkeypatch.setattr(backends, "list_of_moto_modules", counting)
    yield counted
    MotoDispatchFix.uninstall()


def test_each_host_is_looked_up_once_with_motos_own_answer(listings: list[int]) -> None:
    dispatcher = DomainDispatcherApplication(create_backend_app)
    expected = {host: dispatcher.get_backend_for_host(host) for host in HOSTS}
    assert expected["ec2.us-east-1.amazonaws.com"] == "ec2"
    before = listings[0]

    MotoDispatchFix.install()
    MotoDispatchFix.install()  # twice is once
    for _ in range(3):
        assert {host: dispatcher.get_backend_for_host(host) for host in HOSTS} == expected
    assert listings[0] - before == len(HOSTS)


def test_uninstall_gives_moto_its_method_back(listings: list[int]) -> None:
    original = DomainDispatcherApplication.get_backend_for_host
    MotoDispatchFix.install()
    assert DomainDispatcherApplication.get_backend_for_host is not original
    MotoDispatchFix.uninstall()
    assert DomainDispatcherApplication.get_backend_for_host is original
    dispatcher = DomainDispatcherApplication(create_backend_app)
    before = listings[0]
    dispatcher.get_backend_for_host("ec2.us-east-1.amazonaws.com")
    dispatcher.get_backend_for_host("ec2.us-east-1.amazonaws.com")
    assert listings[0] - before == 2
