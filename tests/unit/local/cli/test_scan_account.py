"""`aegis-local scan-account`: the agent's checks, read-only, against the account the credentials (or an endpoint)
point to; findings as a severity-grouped table or JSON; exit 0 whatever it finds, 2 when the scan cannot start."""

from __future__ import annotations

import argparse
import io
import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from aegis.checks import CHECKS
from aegis_local.cli.scan_account import (
    EXIT_OK,
    EXIT_USAGE,
    EndpointSession,
    MutatingCallRefused,
    ReadOnlySession,
    main,
    register,
    scan_account,
)
from aegis_local.scenario.seed import SeededAccount, seed_account

REGION = "us-east-1"
SERVER_ACCOUNT = "210987654321"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Whatever this machine has configured must not leak into what the tests see.
AMBIENT = (
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def isolate(patch: pytest.MonkeyPatch, tmp_dir: str, credentials: bool = True) -> None:
    for name in AMBIENT:
        patch.delenv(name, raising=False)
    for name in FAKE_CREDENTIALS:
        patch.delenv(name, raising=False)
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_dir}/no-credentials")
    patch.setenv("AWS_CONFIG_FILE", f"{tmp_dir}/no-config")
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    patch.setenv("AWS_DEFAULT_REGION", REGION)
    if credentials:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededAccount]:
    """One seeded moto account for the module: scan-account only reads, so the tests cannot disturb each other."""
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, str(tmp_path_factory.mktemp("aws")))
        with mock_aws():
            yield seed_account(boto3.Session(region_name=REGION))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_json_lists_exactly_the_seeded_findings_with_cis_numbers_and_call_counts(
    seeded: SeededAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--format", "json"], capsys)
    assert (code, err) == (EXIT_OK, "")
    document = json.loads(out)
    assert document["account_id"] == seeded.account_id
    assert {(f["check_id"], f["resource_arn"]) for f in document["findings"]} == seeded.expected_findings
    for finding in document["findings"]:
        metadata = CHECKS[finding["check_id"]].METADATA
        assert finding["cis_v5"] == metadata.cis_v5
        assert finding["severity"] == metadata.severity.value
        assert finding["finding_id"].startswith("f-")
    assert not ({f["resource_arn"] for f in document["findings"]} & seeded.lookalikes)
    assert document["errors"] == []
    calls = document["api_calls"]
    assert calls["sts.GetCallerIdentity"] == 1
    assert calls["ec2.DescribeSecurityGroupRules"] == 1
    assert calls["iam.GetAccountAuthorizationDetails"] == 1
    assert all(service_op.count(".") == 1 and count > 0 for service_op, count in calls.items())
    assert document["total_api_calls"] == sum(calls.values())


def test_table_groups_findings_by_severity_most_severe_first_with_cis_numbers(
    seeded: SeededAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([], capsys)
    assert code == EXIT_OK
    headings = [line for line in out.splitlines() if line.split(" (")[0] in ("CRITICAL", "HIGH", "MEDIUM", "LOW")]
    assert [h.split(" (")[0] for h in headings] == ["CRITICAL", "HIGH", "MEDIUM"]
    assert headings[0] == "CRITICAL (3)"  # the two public buckets and the root user without MFA
    lines = out.splitlines()
    critical = lines[lines.index("CRITICAL (3)") + 1 : lines.index(headings[1])]
    public = [line.split() for line in critical if "s3-bucket-public" in line]
    assert len(public) == 2
    # By CIS AWS Foundations v7.0.0 ids unless --cis picks another version.
    assert "CIS v7" in out
    assert all(row[0] == "3.1.4" for row in public)
    ssh_rows = [row for row in (line.split() for line in lines) if row[1:2] == ["ec2-admin-port-open-ipv4"]]
    assert len(ssh_rows) == 4
    assert {row[0] for row in ssh_rows} == {"6.3"}
    assert f"Account {seeded.account_id}, regions {REGION}: {len(seeded.expected_findings)} findings" in lines[0]
    code, out, _ = run(["--cis", "v5"], capsys)
    assert "CIS v5" in out
    ssh_rows = [row for row in (line.split() for line in out.splitlines()) if row[1:2] == ["ec2-admin-port-open-ipv4"]]
    assert {row[0] for row in ssh_rows} == {"5.3"}


def test_checks_and_regions_narrow_the_scan(seeded: SeededAccount, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["--format", "json", "--checks", "ec2-ebs-default-encryption-off", "--region", REGION, "--region", "eu-west-1"],
        capsys,
    )
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["check_ids"] == ["ec2-ebs-default-encryption-off"]
    assert document["regions"] == [REGION, "eu-west-1"]
    # The seed turned default encryption off in us-east-1 only; moto's eu-west-1 is off by default too.
    assert {(f["check_id"], f["region"]) for f in document["findings"]} == {
        ("ec2-ebs-default-encryption-off", REGION),
        ("ec2-ebs-default-encryption-off", "eu-west-1"),
    }
    assert set(document["api_calls"]) == {"sts.GetCallerIdentity", "ec2.GetEbsEncryptionByDefault"}
    assert document["api_calls"]["ec2.GetEbsEncryptionByDefault"] == 2


def test_unknown_check_id_is_a_usage_error_on_one_line(
    seeded: SeededAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--checks", "ec2-admin-port-open-ipv4", "no-such-check"], capsys)
    assert code == EXIT_USAGE
    assert out == ""
    assert err.count("\n") == 1
    assert "unknown check id 'no-such-check'" in err


def test_bad_region_and_bad_arguments_are_usage_errors(
    seeded: SeededAccount, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["--region", "mars-1"], capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert "not a region name: 'mars-1'" in err
    assert run(["--format", "xml"], capsys)[0] == EXIT_USAGE
    assert run(["--no-such-flag"], capsys)[0] == EXIT_USAGE
    code, out, err = run(["--endpoint-url", "ftp://example"], capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert "--endpoint-url must be http(s)://host[:port]" in err
    assert run(["--help"], capsys)[0] == EXIT_OK


def test_no_credentials_is_exit_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate(monkeypatch, str(tmp_path), credentials=False)
    code, out, err = run([], capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert err == "aegis-local scan-account: error: no AWS credentials found (profile, environment or instance role)\n"


def test_unreachable_endpoint_fails_fast_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    isolate(monkeypatch, str(tmp_path))
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    code, out, err = run(["--endpoint-url", url], capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith(f"aegis-local scan-account: error: cannot reach {url}: ")
    assert err.count("\n") == 1
    assert time.monotonic() - started < 5


def test_the_session_refuses_every_call_that_is_not_a_read(seeded: SeededAccount) -> None:
    session = ReadOnlySession(region_name=REGION)
    s3 = session.client("s3")
    assert s3.list_buckets()["Buckets"]
    with pytest.raises(MutatingCallRefused, match=r"s3\.CreateBucket is not a read-only operation"):
        s3.create_bucket(Bucket="scan-account-must-not-create")
    with pytest.raises(MutatingCallRefused, match=r"ec2\.AuthorizeSecurityGroupIngress"):
        session.client("ec2").authorize_security_group_ingress(GroupId="sg-1", IpPermissions=[])
    with pytest.raises(MutatingCallRefused):
        session.resource("dynamodb").create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    assert "scan-account-must-not-create" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_scan_account_returns_the_scan_result_for_callers(seeded: SeededAccount) -> None:
    result = scan_account(check_ids=["s3-bucket-public", "iam-admin-policy-attached"])
    assert {(f.check_id, f.resource_arn) for f in result.findings} == {
        pair for pair in seeded.expected_findings if pair[0] in ("s3-bucket-public", "iam-admin-policy-attached")
    }
    assert result.api_calls["iam.GetAccountAuthorizationDetails"] == 1


def test_register_adds_the_subcommand_with_a_handler(seeded: SeededAccount) -> None:
    parser = argparse.ArgumentParser(prog="aegis-local")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["scan-account", "--checks", "iam-password-policy-weak", "--format", "json"])
    out, err = io.StringIO(), io.StringIO()
    assert args.handler(args, out=out, err=err) == EXIT_OK
    assert [f["check_id"] for f in json.loads(out.getvalue())["findings"]] == ["iam-password-policy-weak"]
    bad = parser.parse_args(["scan-account", "--checks", "nope"])
    assert bad.handler(bad, out=out, err=err) == EXIT_USAGE
    assert "unknown check id 'nope'" in err.getvalue()


def test_against_a_moto_server_with_endpoint_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    isolate(monkeypatch, str(tmp_path))
    caplog.set_level(logging.WARNING, logger="werkzeug")  # one access-log line per request otherwise
    # The server shares this process's moto backends with the module's mock account: use another account.
    monkeypatch.setenv("MOTO_ACCOUNT_ID", SERVER_ACCOUNT)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        account = seed_account(EndpointSession(endpoint_url=url, region_name=REGION))
        code, out, err = run(["--endpoint-url", url, "--format", "json"], capsys)
    finally:
        server.stop()
    assert (code, err) == (EXIT_OK, "")
    document = json.loads(out)
    # S3 Control included: its account-id host label is dropped for the custom endpoint.
    assert document["account_id"] == account.account_id == SERVER_ACCOUNT
    assert document["errors"] == []
    assert {(f["check_id"], f["resource_arn"]) for f in document["findings"]} == account.expected_findings
    assert document["api_calls"]["s3control.GetPublicAccessBlock"] == 1
