"""Clients that count their calls, values fetched once, and named errors."""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.collectors import Collectors, Inventory
from aegis.collectors.base import MAX_RETRY_ATTEMPTS, Clients, Once, error_name
from tests.support.botocore_answers import answer


def test_calls_are_counted_per_operation_across_clients(aws):
    clients = Clients(aws)
    ec2 = clients.client("ec2", "us-east-1")
    ec2.describe_vpcs()
    ec2.describe_vpcs()
    clients.client("ec2", "eu-west-1").describe_vpcs()
    clients.client("s3control", "us-east-1").list_access_points(AccountId="123456789012")

    assert clients.api_calls == {"ec2.DescribeVpcs": 3, "s3control.ListAccessPoints": 1}
    assert clients.client("ec2", "us-east-1") is ec2


def test_a_throttled_call_is_retried_by_botocore_and_counted_once(monkeypatch):
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    attempts = []

    def throttle(request, **_):
        attempts.append(request.url)
        if len(attempts) < 3:
            return answer(request.url, 400, b'{"__type":"ThrottlingException","message":"slow down"}')
        return answer(request.url, 200, b'{"Aliases":[],"Truncated":false}')

    session.events.register_first("before-send.kms.ListAliases", throttle)
    sleeps: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", sleeps.append)
    clients = Clients(session)

    response = clients.client("kms", "us-east-1").list_aliases()

    assert response["Aliases"] == []
    assert len(attempts) == 3
    assert len(sleeps) == 2  # backoff between attempts
    assert clients.api_calls == {"kms.ListAliases": 1}


def test_throttling_that_never_ends_fails_after_the_configured_attempts(monkeypatch):
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    attempts = []

    def throttle(request, **_):
        attempts.append(1)
        return answer(request.url, 400, b'{"__type":"ThrottlingException","message":"slow down"}')

    session.events.register_first("before-send.kms.ListAliases", throttle)
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)

    with pytest.raises(ClientError) as raised:
        Clients(session).client("kms", "us-east-1").list_aliases()

    assert error_name(raised.value) == "ThrottlingException"
    assert len(attempts) == 1 + MAX_RETRY_ATTEMPTS


def test_once_computes_a_value_once_even_when_asked_concurrently():
    once = Once()
    computed = []
    gate = threading.Event()

    def compute():
        gate.wait(1)
        computed.append(1)
        return "value"

    results = []
    threads = [threading.Thread(target=lambda: results.append(once.get("k", compute))) for _ in range(5)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()

    assert results == ["value"] * 5
    assert computed == [1]


def test_once_remembers_a_failure_instead_of_calling_again():
    once = Once()
    calls = []

    def fail():
        calls.append(1)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "DescribeVpcs")

    for _ in range(2):
        with pytest.raises(ClientError):
            once.get("vpcs", fail)
    assert calls == [1]


def test_error_names():
    assert error_name(ClientError({"Error": {"Code": "Throttling"}}, "X")) == "Throttling"
    assert error_name(KeyError("GroupId")) == "KeyError"


def test_timestamps_are_left_as_the_service_sent_them(aws):
    """No collector reads a timestamp; parsing each one was a tenth of the scan's client time at scale."""
    statement = '{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}'
    aws.client("iam").create_policy(
        PolicyName="p", PolicyDocument=f'{{"Version":"2012-10-17","Statement":[{statement}]}}'
    )
    clients = Clients(aws)

    [policy] = clients.client("iam", "us-east-1").list_policies(Scope="Local")["Policies"]
    [plain] = aws.client("iam").list_policies(Scope="Local")["Policies"]

    assert isinstance(policy["CreateDate"], str)
    assert plain["CreateDate"].isoformat().startswith(policy["CreateDate"][:19])  # only the scan's clients
    assert policy["PolicyName"] == "p"


class _SlowToMakeClients:
    """A session whose second client is made only once `release` is set, telling `making` when it starts."""

    def __init__(self, session: boto3.Session) -> None:
        self._session = session
        self.making = threading.Event()
        self.release = threading.Event()
        self.made = 0

    def client(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.made += 1
        if self.made > 1:
            self.making.set()
            self.release.wait()
        return self._session.client(*args, **kwargs)


def test_calls_are_counted_while_another_client_is_being_made(aws):
    session = _SlowToMakeClients(aws)
    clients = Clients(session)  # type: ignore[arg-type]
    ec2 = clients.client("ec2", "us-east-1")
    maker = threading.Thread(target=lambda: clients.client("s3", "us-east-1"))
    maker.start()
    try:
        assert session.making.wait(10)
        # The call and its count, and another look-up of a client already made, do not wait for the one being made.
        ec2.describe_vpcs()
        assert clients.client("ec2", "us-east-1") is ec2
        assert clients.api_calls == {"ec2.DescribeVpcs": 1}
    finally:
        session.release.set()
        maker.join()
    assert clients.client("s3", "us-east-1") is not None


def test_each_reads_several_items_at_once_and_keeps_their_order(aws):
    inventory = Inventory(Collectors(Clients(aws), "123456789012"), "us-east-1")
    together = threading.Barrier(2, timeout=30)  # a timeout only so that a sequential `each` fails, not hangs

    def read(item: int) -> int:
        if item < 2:
            together.wait()  # the first two items meet: they run at the same time
        return item * 10

    assert inventory.each(read, list(range(10))) == [item * 10 for item in range(10)]
    assert inventory.each(read, []) == []
