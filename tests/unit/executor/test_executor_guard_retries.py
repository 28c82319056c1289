"""The halt guard checks every attempt, not only every call: botocore retries a throttled call up to five times, and
a retry sent after the kill switch was triggered would change the account during the halt. The guard is a
`before-send` hook registered first, so that nothing registered on `before-send` (moto in-process answers from
there) sees a request the guard refuses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from moto.core.models import BotocoreStubber

from aegis_executor.credentials import HaltedBeforeMutation, MutationGuard, UndeclaredOperation
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES, one_of_each_kind
from tests.support.loopback_server import LoopbackServer, QuietHandler

THROTTLED = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error>"
    b"</Errors><RequestID>0f2a3a4e-0000-4000-8000-000000000000</RequestID></Response>"
)
REVOKED = (
    b'<RevokeSecurityGroupIngressResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
    b"<requestId>1</requestId><return>true</return></RevokeSecurityGroupIngressResponse>"
)
RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class Ec2Endpoint(LoopbackServer):
    """An EC2 endpoint on 127.0.0.1 that counts the requests reaching it. It answers the first with a throttling
    error, and the kill switch is triggered while that first attempt is in flight."""

    def __init__(self, on_first_request: Any) -> None:
        self.requests: list[bytes] = []
        endpoint = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                endpoint.requests.append(body)
                if len(endpoint.requests) == 1:
                    on_first_request()
                    status, answer = 503, THROTTLED
                else:
                    status, answer = 200, REVOKED
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        super().__init__(Handler)


class Flag:
    def __init__(self) -> None:
        self.engaged = False
        self.reads = 0

    def __call__(self) -> bool:
        self.reads += 1
        return self.engaged


@pytest.fixture
def flag() -> Flag:
    return Flag()


@pytest.fixture
def endpoint(flag: Flag) -> Iterator[Ec2Endpoint]:
    def trigger() -> None:
        flag.engaged = True

    server = Ec2Endpoint(on_first_request=trigger)
    yield server
    server.close()


def test_a_retry_after_the_trigger_is_never_sent(flag: Flag, endpoint: Ec2Endpoint) -> None:
    change = one_of_each_kind()[0]  # revoke-security-group-rules
    session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=REGION)
    guard = MutationGuard(change, flag)
    guard.install(session)
    ec2 = session.client("ec2", endpoint_url=endpoint.url, config=RETRIES)

    with pytest.raises(HaltedBeforeMutation) as halted:
        ec2.revoke_security_group_ingress(GroupId="sg-0abc", SecurityGroupRuleIds=["sgr-0aa1"])

    assert len(endpoint.requests) == 1, "the retry after the trigger reached the endpoint"
    assert halted.value.mutations_sent == 1
    assert guard.mutations_sent == ["ec2:RevokeSecurityGroupIngress"]
    assert flag.reads == 2, "the flag is read before each attempt"


def test_without_a_trigger_the_retry_goes_out_and_each_attempt_is_checked(flag: Flag) -> None:
    server = Ec2Endpoint(on_first_request=lambda: None)
    try:
        change = one_of_each_kind()[0]
        session = boto3.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret", region_name=REGION)
        guard = MutationGuard(change, flag)
        guard.install(session)
        ec2 = session.client("ec2", endpoint_url=server.url, config=RETRIES)

        assert ec2.revoke_security_group_ingress(GroupId="sg-0abc", SecurityGroupRuleIds=["sgr-0aa1"])["Return"]
    finally:
        server.close()
    assert len(server.requests) == 2
    assert guard.mutations_sent == ["ec2:RevokeSecurityGroupIngress"] * 2
    assert flag.reads == 2


# --------------------------------------------------------------------------------------------------- moto in-process


@pytest.fixture
def moto_receipts(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The EC2 operations moto's own before-send handler answered (what "reached AWS"), from now on."""
    received: list[str] = []
    original = BotocoreStubber.__call__

    def counting(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if event_name.startswith("before-send.ec2."):
            received.append(event_name.rsplit(".", 1)[-1])
        return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", counting)
    return received


def test_the_guard_runs_before_moto_answers(moto_receipts: list[str]) -> None:
    case = CASES["revoke-security-group-rules"]()
    session = boto3.Session(region_name=REGION)
    MutationGuard(case.change, lambda: True).install(session)
    rule = next(r.rule_id for r in case.change.revoked if not r.is_egress)  # type: ignore[attr-defined]

    with pytest.raises(HaltedBeforeMutation):
        session.client("ec2").revoke_security_group_ingress(
            GroupId=case.change.before.group_id,  # type: ignore[attr-defined]
            SecurityGroupRuleIds=[rule],
        )

    assert "RevokeSecurityGroupIngress" not in moto_receipts, "moto answered before the guard ran"
    assert case.facts() == case.facts_before


def test_a_retry_after_the_trigger_never_reaches_moto(moto_receipts: list[str]) -> None:
    case = CASES["revoke-security-group-rules"]()
    flag = Flag()
    session = boto3.Session(region_name=REGION)
    guard = MutationGuard(case.change, flag)
    guard.install(session)
    attempts: list[int] = []

    def throttle_the_first_attempt(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(1)
        if len(attempts) > 1:
            return None
        return AWSResponse(request.url, 503, {}, _Raw(THROTTLED))

    def trigger_between_attempts(**_: Any) -> None:
        flag.engaged = True

    # Registered on the operation's own event: it runs before the guard and moto, which listen on all of before-send.
    session.events.register("before-send.ec2.RevokeSecurityGroupIngress", throttle_the_first_attempt)
    session.events.register("needs-retry.ec2.RevokeSecurityGroupIngress", trigger_between_attempts)
    rule = next(r.rule_id for r in case.change.revoked if not r.is_egress)  # type: ignore[attr-defined]

    with pytest.raises(HaltedBeforeMutation):
        session.client("ec2", config=RETRIES).revoke_security_group_ingress(
            GroupId=case.change.before.group_id,  # type: ignore[attr-defined]
            SecurityGroupRuleIds=[rule],
        )

    assert len(attempts) == 2, "botocore retried the throttled call"
    assert moto_receipts.count("RevokeSecurityGroupIngress") == 1, "only the first attempt reached moto"
    assert guard.mutations_sent == ["ec2:RevokeSecurityGroupIngress"]


def test_an_undeclared_operation_is_still_refused_before_it_is_sent(moto_receipts: list[str]) -> None:
    case = CASES["revoke-security-group-rules"]()
    set_up = len(moto_receipts)
    session = boto3.Session(region_name=REGION)
    MutationGuard(case.change, lambda: False).install(session)
    ec2 = session.client("ec2")
    with pytest.raises(UndeclaredOperation):
        ec2.authorize_security_group_ingress(GroupId="sg-0", IpPermissions=[])  # an undo action, in an apply session
    with pytest.raises(UndeclaredOperation):
        ec2.delete_security_group(GroupId="sg-0")
    assert moto_receipts[set_up:] == []


class _Raw:
    """The urllib3 response botocore would read a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._body
