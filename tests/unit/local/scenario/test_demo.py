"""The demo's command line without a stack: usage errors exit 2 before anything starts, your own tenant's
applications, and who plays the phone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aegis_local.cli.main import build_parser, main
from aegis_local.scenario.demo import DemoUsageError, options_from_args, stack_arguments

# Your own tenant, complete but for the applications a usage error is about.
OWN_TENANT = [
    *("--issuer", "https://t.eu.auth0.com/", "--client-id", "a"),
    *("--client-secret-file", "/dev/null", "--approver-sub", "s"),
]


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["demo", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no terminal to play the approver's phone"),
        (["--deny", "kms-key-rotation-off"], "no terminal"),
        (["--approve", "all", "--deny", "no-such-check"], "unknown check id(s): no-such-check"),
        (["--approve", "all", "--check", "nope"], "unknown check id(s) for --check: nope"),
        (["--approve", "all", "--deny", "kms-key-rotation-off", "--drift", "kms-key-rotation-off"], "both --deny"),
        (["--dry-run", "--kill-after", "2"], "--dry-run requests no approval"),
        (["--approve", "all", "--kill-after", "0"], "at least 1"),
        (["--issuer", "https://tenant.eu.auth0.com/"], "also needs --client-id, --client-secret-file"),
        (["--approve", "all", "--audience", "https://api"], "belong to --issuer"),
        ([*OWN_TENANT, "--killswitch-client-id", "m2m"], "go together"),
        (
            [*OWN_TENANT, "--executor-client-id", "exchange-app"],
            "--executor-client-id and --executor-client-secret-file go together",
        ),
        (["--approve", "all", "--executor-client-id", "x"], "belong to --issuer"),
    ],
)
def test_usage_errors_exit_2_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_your_own_tenant_needs_a_readable_secret_and_no_scripted_answers(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    tenant = ["--issuer", "https://tenant.eu.auth0.com", "--client-id", "app", "--approver-sub", "auth0|me"]
    with pytest.raises(DemoUsageError, match="cannot read --client-secret-file"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret)), terminal=False)
    secret.write_text("\n")
    with pytest.raises(DemoUsageError, match="is empty"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret)), terminal=False)
    secret.write_text("s3cr3t-value-of-the-client\n")
    with pytest.raises(DemoUsageError, match="answers on their own phone"):
        options_from_args(parse(*tenant, "--client-secret-file", str(secret), "--approve", "all"), terminal=False)

    options = options_from_args(
        parse(*tenant, "--client-secret-file", str(secret), "--drift", "kms-key-rotation-off"), terminal=False
    )

    assert options.tenant is not None
    assert options.tenant.issuer == "https://tenant.eu.auth0.com/"
    assert options.tenant.client_secret.get_secret_value() == "s3cr3t-value-of-the-client"
    assert "s3cr3t" not in repr(options)
    arguments = stack_arguments(options)
    assert arguments["auth0"] is False
    # Without an M2M or executor application of its own, the kill switch and the executor use the same one.
    assert arguments["secrets"] == {
        "ApprovalAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
        "ExecutorAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
        "KillSwitchAuth0ClientSecretArn": "s3cr3t-value-of-the-client",
    }
    assert arguments["parameters"]["KillSwitchAuth0ClientId"] == "app"
    assert arguments["parameters"]["ExecutorAuth0ClientId"] == "app"
    # moto's STS evaluates nothing, so the connection's name and the approver stand in for what IAM would trust.
    assert arguments["parameters"]["RemediationOidcAudience"] != "sts.amazonaws.com"
    assert arguments["parameters"]["RemediationOidcSubjects"] == "auth0|me"
    assert arguments["parameters"]["Auth0Issuer"] == "https://tenant.eu.auth0.com/"
    assert arguments["parameters"]["ApproverSubs"] == "auth0|me"
    assert "s3cr3t" not in json.dumps(arguments["parameters"])


def test_your_own_tenant_can_give_each_trust_domain_its_own_application(tmp_path: Path) -> None:
    """A tenant set up like a deployment: one application per trust domain, each with its own secret file."""
    files = {}
    for role in ("approval", "executor", "killswitch"):
        files[role] = tmp_path / role
        files[role].write_text(f"secret-of-the-{role}-application\n")
    args = parse(
        *["--issuer", "https://tenant.eu.auth0.com", "--approver-sub", "auth0|me", "--dry-run"],
        *["--client-id", "approval-app", "--client-secret-file", str(files["approval"])],
        *["--executor-client-id", "executor-app", "--executor-client-secret-file", str(files["executor"])],
        *["--killswitch-client-id", "m2m-app", "--killswitch-client-secret-file", str(files["killswitch"])],
    )

    arguments = stack_arguments(options_from_args(args, terminal=False))

    assert arguments["secrets"] == {
        "ApprovalAuth0ClientSecretArn": "secret-of-the-approval-application",
        "ExecutorAuth0ClientSecretArn": "secret-of-the-executor-application",
        "KillSwitchAuth0ClientSecretArn": "secret-of-the-killswitch-application",
    }
    parameters = arguments["parameters"]
    assert (parameters["ApprovalAuth0ClientId"], parameters["ExecutorAuth0ClientId"]) == (
        "approval-app",
        "executor-app",
    )
    assert parameters["KillSwitchAuth0ClientId"] == "m2m-app"
    assert "secret-of" not in json.dumps(parameters)


def test_without_flags_a_terminal_plays_the_phone_and_flags_script_it() -> None:
    assert options_from_args(parse(), terminal=True).interactive
    scripted = options_from_args(
        parse("--approve", "all", "--let-expire", "kms-key-rotation-off", "--report-dir", "out"), terminal=False
    )
    assert not scripted.interactive
    assert scripted.policy.let_expire == {"kms-key-rotation-off"}
    assert scripted.report_dir == Path("out")
    assert not options_from_args(parse("--dry-run"), terminal=False).interactive
    arguments = stack_arguments(scripted)
    assert arguments["emulator_config"].ciba_interval_seconds == 1
    assert arguments["parameters"]["MaxSharePerResourceType"] == "1"


def test_deny_and_let_expire_take_request_and_change_ids_drift_does_not_take_requests() -> None:
    change_id = "chg-0123456789abcdef0123"
    options = options_from_args(
        parse("--approve", "all", "--deny", "r002", "--let-expire", change_id, "--deny", "kms-key-rotation-off"),
        terminal=False,
    )
    assert options.policy.deny == {"r002", "kms-key-rotation-off"}
    assert options.policy.let_expire == {change_id}
    with pytest.raises(DemoUsageError, match="--drift takes a check id or a change id"):
        options_from_args(parse("--approve", "all", "--drift", "r002"), terminal=False)
    with pytest.raises(DemoUsageError, match="unknown check id"):
        options_from_args(parse("--approve", "all", "--deny", "request-2"), terminal=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--approve", "all", "--regions", "us-east-1"], "belong to --accounts"),
        (["--approve", "all", "--unreachable", "1"], "belong to --accounts"),
        (["--approve", "all", "--accounts", "0"], "at least 1 member account"),
        (["--approve", "all", "--accounts", "2", "--unreachable", "3"], "between 0 and --accounts (2)"),
        (["--approve", "all", "--accounts", "2", "--kill-after", "1"], "approved by the emulated phones"),
        (["--approve", "all", "--accounts", "2", "--deny", "kms-key-rotation-off"], "approved by the emulated phones"),
        (["--approve", "all", "--accounts", "2", "--regions", "us-east-1,nowhere-1"], "--regions: no AWS partition"),
        (["--accounts", "2"], "no terminal"),
    ],
)
def test_organization_usage_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", *argv]) == 2
    assert message in capsys.readouterr().err


def test_an_organization_demo_starts_the_stack_with_its_organization_and_room_for_every_region() -> None:
    from aegis_local.aws.organization import OrganizationSpec

    options = options_from_args(
        parse("--approve", "all", "--accounts", "5", "--regions", "us-east-1, eu-west-1", "--unreachable", "1"),
        terminal=False,
    )
    assert (options.accounts, options.regions, options.unreachable) == (5, ("us-east-1", "eu-west-1"), 1)
    arguments = stack_arguments(options)
    assert arguments["organization"] == OrganizationSpec(accounts=5, unreachable=1)
    assert int(arguments["parameters"]["MaxChangesPerMission"]) >= 40
    assert arguments["parameters"]["ScanRegions"] == "us-east-1,eu-west-1"
    assert "organization" not in stack_arguments(options_from_args(parse("--approve", "all"), terminal=False))
    default = options_from_args(parse("--dry-run", "--accounts", "2"), terminal=False)
    assert default.regions == ("us-east-1",)
    assert default.unreachable == 0


def test_the_analyst_flag_picks_an_emulated_model_with_a_short_read_timeout() -> None:
    options = options_from_args(parse("--approve", "all", "--analyst", "adversarial"), terminal=False)
    assert options.parameters == {"AnalystModelId": "adversarial", "AnalystTimeoutSeconds": "2"}
    # A parameter given by name wins over the flag's.
    given = parse("--approve", "all", "--analyst", "failing", "--parameter", "AnalystTimeoutSeconds=5")
    assert options_from_args(given, terminal=False).parameters["AnalystTimeoutSeconds"] == "5"
    assert options_from_args(parse("--approve", "all"), terminal=False).parameters == {}
    with pytest.raises(SystemExit):
        parse("--approve", "all", "--analyst", "gpt")
