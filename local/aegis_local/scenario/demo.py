"""`aegis-local demo`: one whole mission on the local stack, from the scan event to the report and the leak audit.

    aegis-local demo --approve all                       approve every change (what `make demo` runs)
    aegis-local demo                                     on a terminal: you are the approver's phone
    aegis-local demo --approve all --deny iam-admin-policy-attached --let-expire kms-key-rotation-off \\
                     --drift iam-password-policy-weak    some changes are denied, expire, or drift
    aegis-local demo --approve all --deny r002           deny the second approval request (a whole batch)
    aegis-local demo --approve all --kill-after 3        trigger the kill switch once 3 changes were applied
    aegis-local demo --dry-run                           scan and plan only
    aegis-local demo --approve all --keep-up             then leave the stack and the console up until Ctrl-C
    aegis-local demo --approve all --accounts 5 --regions us-east-1,eu-west-1 [--unreachable 1]
                                                         an organization scan: 5 member accounts, each seeded in
                                                         both regions, one mission per account (one left without
                                                         its member roles: reported unreachable)

It starts the local stack (moto + the Auth0 emulator + every function of template.yaml), seeds the vulnerable
account, fires a scan the way EventBridge delivers it, and walks the mission: findings -> plan -> approval requests on
the approvers' phones (changes at or below ApprovalBatchMaxRisk in batches, one push each, approved on the Merkle root
of their digests; higher-risk changes one request each) -> execution -> resume -> report, with the number of pushes.
`--deny` and `--let-expire` name a check id, a change id or a request id (`r002`); a request is answered as a whole,
so naming one change of a batch denies (or lets expire) the whole batch. Then it writes the report (JSON and a
self-contained HTML page) and runs the leak audit: every secret issued during the run (client secrets, CIBA access and
ID tokens, Token Vault tokens, the STS credentials of each RemediationRole and UndoRole session) is searched for in
every table item, every execution history, the agent's checkpoints, the report, the logs every function printed and
every notification the stack published (printed as each arrives, kept in `<report dir>/notifications.jsonl`).

With the local tenant it also serves the operator console (console/, built when its inputs changed) and prints its
URL; `--keep-up` leaves the stack and the console up after the mission, with the console's users and their passwords
(generated for this run) printed, until Ctrl-C.

Bring your own tenant (`--issuer --client-id --client-secret-file --approver-sub [--audience] [--connection]
[--executor-client-id --executor-client-secret-file] [--killswitch-client-id --killswitch-client-secret-file]`): AWS
stays local, approvals and Token Vault happen at that provider, and the approver's real phone answers.

Exit status: 0 only when the mission ran to its end and the leak audit found nothing; 1 otherwise; 2 for usage errors.

Choices for the local tenant (not product behaviour): two approvers (approver@ and approver2@aegis.local, both with
the connected AWS accounts), so that the seeded high-risk changes can have the two distinct approvals they need and the
two-person rule is shown; CIBA polls every second instead of five; an approver may receive 100 requests a minute
instead of Auth0's 5 (bench.mission_overhead measures the real limit);
`--let-expire` lapses the request at the emulator at once instead of waiting out its requested_expiry; the blast-radius
caps allow the seeded account's plan (most of its security groups are open, which the default share cap of 0.5 would
rightly refuse to change in one mission).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from aegis_local.aws.logs import LogCapture
from aegis_local.aws.notifications import (
    NOTIFICATIONS_FILE,
    NotificationCapture,
    PublishedNotification,
    read_notifications,
)
from aegis_local.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, parse_parameters
from aegis_local.reporting.leak_audit import (
    LeakAuditResult,
    audit,
    audit_sources,
    dynamodb_places,
    file_places,
    notification_places,
    sqs_places,
    stepfunctions_places,
    text_places,
)
from aegis_local.reporting.mission_report import MissionSources, assemble_report
from aegis_local.reporting.report import MissionReportDocument, render_html
from aegis_local.scenario.driver import DriveOptions, MissionDriver, MissionRun
from aegis_local.scenario.phone import Answer, ApprovalPolicy, EmulatedPhone, TerminalApprover

__all__ = [
    "COMMAND",
    "DEMO_PARAMETERS",
    "DemoOptions",
    "DemoResult",
    "DemoUsageError",
    "ExternalTenant",
    "analyst_parameters",
    "command",
    "demo_emulator_config",
    "options_from_args",
    "register",
    "run_on_stack",
    "stack_arguments",
]

COMMAND = "demo"
DEFAULT_REPORT_DIR = Path("reports")
DEFAULT_AUDIENCE = "https://aegis.local/api"
DEFAULT_CONNECTION = "aws-remediation"
DEFAULT_TIMEOUT_SECONDS = 900.0
DEFAULT_ORG_REGION = "us-east-1"
# The local tenant's allowances (see the module docstring).
DEMO_CIBA_INTERVAL_SECONDS = 1
DEMO_CIBA_REQUESTS_PER_USER_PER_MINUTE = 100
# The local tenant's second approver (the two-person rule needs two distinct approvers).
DEMO_SECOND_APPROVER_SUB = "auth0|aegis-approver-2"
DEMO_SECOND_APPROVER_EMAIL = "approver2@aegis.local"
DEMO_PARAMETERS: dict[str, str] = {
    "MaxSharePerResourceType": "1",
    "MaxChangesPerMission": "40",
}
ORG_DEMO_PARAMETERS: dict[str, str] = {
    "MaxChangesPerMission": "100",
    "MaxChangesPerOrgScan": "10000",
}
# The local Bedrock emulator's models (aegis_local.bedrock) and the analyst's read timeout in the demo.
ANALYST_MODELS = ("scripted", "adversarial", "failing")
ANALYST_TIMEOUT_SECONDS = 2
BEDROCK_SOURCE = "Bedrock emulator: the credentials its adversarial model echoed"
EMULATOR_SOURCE = "Auth0 emulator: client secrets and every token it issued"
STS_SOURCE = "moto STS: temporary credentials of every AWS session (RemediationRole, UndoRole)"
EXTERNAL_SOURCE = "client secrets of the external applications"


class DemoUsageError(ValueError):
    """The command line asks for something the demo cannot do; the message says what to give instead."""


@dataclass(frozen=True)
class ExternalTenant:
    """An Auth0 tenant (or any OpenID provider with CIBA and Token Vault) that approves instead of the emulator."""

    issuer: str
    client_id: str
    client_secret: SecretStr
    approver_sub: str
    audience: str = DEFAULT_AUDIENCE
    connection: str = DEFAULT_CONNECTION
    # The kill switch's machine-to-machine application (Management API); by default the same application.
    killswitch_client_id: str | None = None
    killswitch_client_secret: SecretStr | None = None
    # The executor's application (the API's Custom API Client, Token Vault exchange); by default the same
    # application, which then needs both grants (a deployment uses two applications, one per trust domain).
    executor_client_id: str | None = None
    executor_client_secret: SecretStr | None = None


@dataclass(frozen=True)
class DemoOptions:
    policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    interactive: bool = False
    kill_after: int | None = None
    dry_run: bool = False
    checks: tuple[str, ...] = ()
    report_dir: Path = DEFAULT_REPORT_DIR
    dump_state: Path | None = None
    tenant: ExternalTenant | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Where the terminal's answers come from when it plays the phone (a person at `input()` by default).
    read_line: Callable[[str], str] = input
    # Leave the stack and the console up after the mission, until Ctrl-C.
    keep_up: bool = False
    # An organization scan (aegis_local.scenario.organization): member accounts, their regions, how many are left
    # without member roles.
    accounts: int | None = None
    regions: tuple[str, ...] = ()
    unreachable: int = 0


@dataclass
class DemoResult:
    run: MissionRun
    report: MissionReportDocument
    leak_audit: LeakAuditResult
    report_files: list[Path]
    log_files: list[Path]
    exit_code: int
    problems: list[str] = field(default_factory=list)
    seeded: Any = None  # the SeededAccount the mission ran against
    # What the stack published to its notifications topic during the run (also in <report dir>/notifications.jsonl).
    notifications: list[PublishedNotification] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------------------------
# options


def _known_checks() -> frozenset[str]:
    from aegis.checks import CHECKS

    return frozenset(CHECKS)


def _tenant(args: argparse.Namespace) -> ExternalTenant | None:
    given = {
        "--issuer": args.issuer,
        "--client-id": args.client_id,
        "--client-secret-file": args.client_secret_file,
        "--approver-sub": args.approver_sub,
    }
    if not any(given.values()):
        extras = (args.audience, args.connection, args.killswitch_client_id, args.killswitch_client_secret_file)
        if any(extras) or args.executor_client_id or args.executor_client_secret_file:
            raise DemoUsageError(
                "--audience, --connection, --killswitch-client-* and --executor-client-* belong to --issuer "
                "(bring your own tenant)"
            )
        return None
    missing = [flag for flag, value in given.items() if not value]
    if missing:
        raise DemoUsageError(f"bringing your own tenant also needs {', '.join(missing)}")
    killswitch_secret = _own_application_secret(
        "killswitch", args.killswitch_client_id, args.killswitch_client_secret_file
    )
    executor_secret = _own_application_secret("executor", args.executor_client_id, args.executor_client_secret_file)
    secret = _read_secret("--client-secret-file", args.client_secret_file)
    issuer = args.issuer if args.issuer.endswith("/") else args.issuer + "/"
    if not issuer.startswith(("https://", "http://127.0.0.1:", "http://localhost:")):
        raise DemoUsageError("--issuer must be an https:// URL (or a loopback http:// one)")
    return ExternalTenant(
        issuer=issuer,
        client_id=args.client_id,
        client_secret=SecretStr(secret),
        approver_sub=args.approver_sub,
        audience=args.audience or DEFAULT_AUDIENCE,
        connection=args.connection or DEFAULT_CONNECTION,
        killswitch_client_id=args.killswitch_client_id,
        killswitch_client_secret=killswitch_secret,
        executor_client_id=args.executor_client_id,
        executor_client_secret=executor_secret,
    )


def _own_application_secret(role: str, client_id: str | None, secret_file: str | None) -> SecretStr | None:
    """The secret of the `--<role>-client-id` application, or None when the tenant's application plays that role."""
    if bool(client_id) != bool(secret_file):
        raise DemoUsageError(f"--{role}-client-id and --{role}-client-secret-file go together")
    return SecretStr(_read_secret(f"--{role}-client-secret-file", secret_file)) if secret_file else None


def _read_secret(flag: str, path: str) -> str:
    secret_file = Path(path)
    try:
        secret = secret_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise DemoUsageError(f"cannot read {flag} {secret_file}: {error.strerror}") from error
    if not secret:
        raise DemoUsageError(f"{flag} {secret_file} is empty")
    return secret


def options_from_args(args: argparse.Namespace, *, terminal: bool) -> DemoOptions:
    """Check the command line as a whole; `terminal` says whether a person can be asked (stdin and stdout are TTYs)."""
    try:
        policy = ApprovalPolicy(
            approve_all=args.approve == "all",
            deny=frozenset(args.deny or ()),
            let_expire=frozenset(args.let_expire or ()),
            drift=frozenset(args.drift or ()),
        )
    except ValueError as error:
        raise DemoUsageError(str(error)) from error
    known = _known_checks()
    try:
        policy.validate(known)
    except ValueError as error:
        raise DemoUsageError(str(error)) from error
    unknown_scope = sorted(set(args.check or ()) - known)
    if unknown_scope:
        raise DemoUsageError(f"unknown check id(s) for --check: {', '.join(unknown_scope)}")
    if args.kill_after is not None and args.kill_after < 1:
        raise DemoUsageError("--kill-after needs a number of changes of at least 1")
    tenant = _tenant(args)
    if args.dry_run and (policy.named or args.kill_after is not None):
        raise DemoUsageError("--dry-run requests no approval: --deny, --let-expire, --drift and --kill-after need one")
    if tenant is not None and (policy.approve_all or policy.deny or policy.let_expire):
        raise DemoUsageError(
            "with your own tenant the approver answers on their own phone: drop --approve, --deny and --let-expire"
        )
    interactive = False
    if tenant is None and not args.dry_run and not policy.approve_all:
        if not terminal:
            raise DemoUsageError(
                "no terminal to play the approver's phone: give --approve all (with --deny or --let-expire CHECK_ID, "
                "CHANGE_ID or REQUEST_ID, or --drift CHECK_ID, for exceptions), --dry-run, or run it on a terminal"
            )
        interactive = True
    accounts, regions, unreachable = _organization_options(args, policy, tenant, interactive)
    return DemoOptions(
        accounts=accounts,
        regions=regions,
        unreachable=unreachable,
        policy=policy,
        interactive=interactive,
        kill_after=args.kill_after,
        dry_run=args.dry_run,
        checks=tuple(dict.fromkeys(args.check or ())),
        report_dir=Path(args.report_dir),
        dump_state=Path(args.dump_state) if args.dump_state else None,
        tenant=tenant,
        parameters={
            **analyst_parameters(getattr(args, "analyst", None)),
            **parse_parameters(args.parameter or [], DemoUsageError),
        },
        timeout_seconds=args.timeout,
        keep_up=bool(getattr(args, "keep_up", False)),
    )


def analyst_parameters(model: str | None) -> dict[str, str]:
    """The template parameters of `--analyst`: the emulator's model, with a read timeout short enough that the
    failing model's late answer is a timeout within seconds."""
    if model is None:
        return {}
    return {"AnalystModelId": model, "AnalystTimeoutSeconds": str(ANALYST_TIMEOUT_SECONDS)}


def _organization_options(
    args: argparse.Namespace, policy: ApprovalPolicy, tenant: ExternalTenant | None, interactive: bool
) -> tuple[int | None, tuple[str, ...], int]:
    """`--accounts`, `--regions`, `--unreachable`: the organization scan's shape, checked."""
    from aegis.partitions import partition_of

    accounts = getattr(args, "accounts", None)
    regions = tuple(r.strip() for r in (getattr(args, "regions", None) or "").split(",") if r.strip())
    unreachable = getattr(args, "unreachable", None)
    if accounts is None:
        if regions or unreachable is not None:
            raise DemoUsageError("--regions and --unreachable belong to --accounts (an organization scan)")
        return None, (), 0
    if accounts < 1:
        raise DemoUsageError("--accounts needs at least 1 member account")
    if unreachable is not None and not 0 <= unreachable <= accounts:
        raise DemoUsageError(f"--unreachable must be between 0 and --accounts ({accounts})")
    if tenant is not None or interactive or args.kill_after is not None or policy.named:
        raise DemoUsageError(
            "an organization scan is approved by the emulated phones: give --approve all (or --dry-run), without "
            "--deny, --let-expire, --drift, --kill-after or your own tenant"
        )
    for region in regions:
        try:
            partition_of(region)
        except ValueError as error:
            raise DemoUsageError(f"--regions: {error}") from error
    return accounts, regions or (DEFAULT_ORG_REGION,), unreachable or 0


def demo_emulator_config(*, approvers: int = 2) -> Any:
    """The default tenant (approval and executor applications, the kill switch's M2M client, the operator client, the
    approver with connected AWS accounts) with the demo's allowances and, with `approvers=2`, a second approver with
    the same connected accounts: the seeded account's high-risk changes need two distinct approvers (the two-person
    rule), which a deployment with one approver cannot plan."""
    from aegis_local.auth0 import DEFAULT_APPROVER_SUB, EmulatorConfig, UserConfig

    if approvers not in (1, 2):
        raise ValueError("the demo's tenant has one or two approvers")
    config = EmulatorConfig.default()
    users = list(config.users)
    if approvers == 2:
        first = next(user for user in users if user.sub == DEFAULT_APPROVER_SUB)
        second = UserConfig(
            sub=DEMO_SECOND_APPROVER_SUB,
            email=DEMO_SECOND_APPROVER_EMAIL,
            name="Aegis Second Approver",
            connected_accounts=first.connected_accounts,
            api_permissions=dict(first.api_permissions),
        )
        users.insert(users.index(first) + 1, second)
    return config.model_copy(
        update={
            "users": tuple(users),
            "ciba_interval_seconds": DEMO_CIBA_INTERVAL_SECONDS,
            "ciba_requests_per_user_per_minute": DEMO_CIBA_REQUESTS_PER_USER_PER_MINUTE,
        }
    )


def stack_arguments(options: DemoOptions) -> dict[str, Any]:
    """Keyword arguments of `LocalStack` for this demo."""
    tenant = options.tenant
    if tenant is None:
        arguments: dict[str, Any] = {
            "emulator_config": demo_emulator_config(),
            "parameters": {**DEMO_PARAMETERS, **options.parameters},
        }
        if options.accounts is not None:
            from aegis_local.aws.organization import OrganizationSpec

            arguments["organization"] = OrganizationSpec(accounts=options.accounts, unreachable=options.unreachable)
            # Every account plans its seeded changes in every region: neither the per-mission cap (sized for one
            # region) nor the org-wide one may be what stops it.
            # The validator refuses a change outside ScanRegions: the deployment scans the regions asked for.
            regions = {"ScanRegions": ",".join(options.regions)} if options.regions else {}
            arguments["parameters"] = {**DEMO_PARAMETERS, **ORG_DEMO_PARAMETERS, **regions, **options.parameters}
        return arguments
    # IAM registers OIDC providers by https URL; moto's STS checks nothing, so the issuer's https form stands in for
    # the Token Vault connection's provider unless given (--parameter RemediationOidcProviderUrl=...).
    provider = "https://" + tenant.issuer.split("://", 1)[1]
    # The audience and subjects RemediationRole trusts are the provider's, behind the connection; moto checks
    # neither, so the connection's name and the approver stand in unless given (--parameter NAME=VALUE).
    parameters = {
        "Auth0Issuer": tenant.issuer,
        "ApprovalAuth0ClientId": tenant.client_id,
        "ExecutorAuth0ClientId": tenant.executor_client_id or tenant.client_id,
        "Auth0Audience": tenant.audience,
        "ApproverSubs": tenant.approver_sub,
        "TokenVaultConnection": tenant.connection,
        "OpsApiAudience": tenant.audience,
        "RemediationOidcProviderUrl": provider,
        "RemediationOidcAudience": tenant.connection,
        "RemediationOidcSubjects": tenant.approver_sub,
        **DEMO_PARAMETERS,
        **options.parameters,
    }
    secret = tenant.client_secret.get_secret_value()
    own = tenant.killswitch_client_secret
    killswitch_secret = own.get_secret_value() if own is not None else secret
    executor = tenant.executor_client_secret
    executor_secret = executor.get_secret_value() if executor is not None else secret
    parameters.setdefault("KillSwitchAuth0ClientId", tenant.killswitch_client_id or tenant.client_id)
    return {
        "auth0": False,
        "parameters": parameters,
        "secrets": {
            "ApprovalAuth0ClientSecretArn": secret,
            "ExecutorAuth0ClientSecretArn": executor_secret,
            "KillSwitchAuth0ClientSecretArn": killswitch_secret,
        },
    }


# ----------------------------------------------------------------------------------------------------------------
# the console


class Console:
    """Progress lines with the time since the start: `[  12.3s] phone    [3/13] ...`."""

    LABEL_WIDTH = 8

    def __init__(self, stream: TextIO, started: float | None = None) -> None:
        self.stream = stream
        self.started = time.monotonic() if started is None else started
        self._lock = threading.Lock()

    def step(self, label: str, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self._write([f"[{elapsed:6.1f}s] {label:<{self.LABEL_WIDTH}} {text}"])

    def lines(self, lines: Iterable[str]) -> None:
        self._write(list(lines))

    def _write(self, lines: list[str]) -> None:
        with self._lock:
            for line in lines:
                print(line, file=self.stream)
            self.stream.flush()


# ----------------------------------------------------------------------------------------------------------------
# the run


def _secrets(stack: Any, options: DemoOptions) -> tuple[dict[str, list[str]], list[str]]:
    sources: dict[str, list[str]] = {}
    notes: list[str] = []
    if options.tenant is None:
        sources[EMULATOR_SOURCE] = sorted(stack.emulator.issued_secrets())
    else:
        sources[EXTERNAL_SOURCE] = [
            secret.get_secret_value()
            for secret in (
                options.tenant.client_secret,
                options.tenant.executor_client_secret,
                options.tenant.killswitch_client_secret,
            )
            if secret is not None
        ]
        notes.append(
            f"The tokens {options.tenant.issuer} issued (CIBA access and ID tokens, Token Vault tokens) never "
            "reach this side, so they could not be searched for here; search the --dump-state files with your own."
        )
    sources[STS_SOURCE] = stack.issued_aws_credentials()
    if stack.parameters.get("AnalystModelId"):
        sources[BEDROCK_SOURCE] = [value for call in stack.bedrock.calls() for value in call.echoed]
    return sources, notes


def _clear_logs(directory: Path) -> None:
    if directory.is_dir():
        for old in directory.glob("*.log"):
            old.unlink()


def _seed(stack: Any, console: Console) -> Any:
    from aegis_local.scenario.seed import seed_account

    seeded = seed_account(stack.session(), stack.identity.region)
    console.step(
        "seed",
        f"vulnerable account {seeded.account_id} ({seeded.region}): {len(seeded.security_groups)} security groups, "
        f"{len(seeded.buckets)} buckets, {len(seeded.policies)} policies, {len(seeded.kms_keys)} KMS keys; "
        f"{len(seeded.expected_findings)} misconfigurations, {len(seeded.lookalikes)} clean look-alikes",
    )
    if stack.parameters.get("AnalystModelId"):
        from aegis_local.scenario.injections import DEMO_INJECTIONS, plant

        planted = plant(stack.session(), stack.identity.region, DEMO_INJECTIONS)
        console.step(
            "seed",
            f"prompt injection for the analyst in {len(planted)} resource names: "
            + ", ".join(arn.rsplit(":", 1)[-1] for _, arn in planted.values()),
        )
        seeded = seeded.model_copy(update={"expected_findings": seeded.expected_findings | set(planted.values())})
    return seeded


def run_on_stack(stack: Any, options: DemoOptions, console: Console, *, seeded: Any = None) -> DemoResult:
    """The demo on a running stack (built with `stack_arguments(options)`): seed (unless `seeded` says it was done),
    mission, report, leak audit.

    Everything the process prints meanwhile (the functions' logs above all) goes to `<report dir>/logs/`, and every
    notification published to the stack's topic to `<report dir>/notifications.jsonl` (each printed as it arrives)."""
    report_dir = options.report_dir
    logs_dir = report_dir / "logs"
    _clear_logs(logs_dir)
    capture = LogCapture(logs_dir)
    notifications = NotificationCapture(
        report_dir / NOTIFICATIONS_FILE, on_notification=lambda published: console.step("notify", published.line())
    )
    with capture, notifications:
        preload = threading.Thread(target=stack.preload_handlers, name="aegis-demo-preload", daemon=True)
        preload.start()
        if seeded is None:
            seeded = _seed(stack, console)
        preload.join()
        approvers = [sub for sub in str(stack.parameters.get("ApproverSubs", "")).split(",") if sub]
        approver = options.tenant.approver_sub if options.tenant else approvers[0]
        # Every approver's phone: a two-person request reaches two of them, a routed one whichever it names.
        phone = EmulatedPhone(stack.emulator, approver, also=approvers[1:]) if options.tenant is None else None
        drive = DriveOptions(
            policy=options.policy,
            approver=TerminalApprover(console.stream, read_line=options.read_line) if options.interactive else None,
            kill_after=options.kill_after,
            timeout_seconds=options.timeout_seconds,
        )
        detail: dict[str, Any] = {"regions": [stack.identity.region], "dry_run": options.dry_run}
        if options.checks:
            detail["checks"] = list(options.checks)
        run = MissionDriver(stack, console, drive, phone, approver).run(detail)
        report = _report(stack, run, options)
        secrets, notes = _secrets(stack, options)
        capture.flush()
        log_files = capture.files
    result = _finish(stack, options, console, run=run, report=report, secrets=secrets, notes=notes, log_files=log_files)
    result.seeded = seeded
    result.notifications = notifications.published
    return result


def _report(stack: Any, run: MissionRun, options: DemoOptions) -> MissionReportDocument:
    import boto3

    # The stream consumers (the audit chain) run a poll behind the writers: the report shows the chain they left.
    stack.drain_streams()
    resource = stack.session().resource("dynamodb")
    sources = MissionSources(
        missions=resource.Table(stack.physical_id("MissionsTable")),
        audit=resource.Table(stack.physical_id("AuditTable")),
        checkpoints=resource.Table(stack.physical_id("CheckpointsTable")),
        session_factory=boto3.Session,
    )
    notes = [*run.problems, *run.notes]
    if options.kill_after is not None and run.kill_switch is None:
        notes.append(f"--kill-after {options.kill_after}: fewer changes were applied, the kill switch was not used")
    if options.tenant is None:
        notes.append(
            f"Local tenant: CIBA interval {DEMO_CIBA_INTERVAL_SECONDS} s and {DEMO_CIBA_REQUESTS_PER_USER_PER_MINUTE} "
            "requests a minute per approver (Auth0 allows 5)."
        )
    if any(answer is Answer.EXPIRE for answer, _ in run.answers.values()):
        notes.append(
            "Requests left to expire were lapsed at the emulator at once instead of waiting out their "
            "requested_expiry; the approval function saw the same expired_token answer."
        )
    for change_id, edit in run.out_of_band.items():
        notes.append(f"--drift: between the approval of {change_id} and its execution, someone {edit}.")
    return assemble_report(
        sources,
        run.mission_id,
        halted=run.kill_switch is not None,
        kill_switch=run.kill_switch,
        out_of_band=run.out_of_band,
        notes=notes,
        duration_seconds=round(run.duration_seconds, 1),
    )


def _finish(
    stack: Any,
    options: DemoOptions,
    console: Console,
    *,
    run: MissionRun,
    report: MissionReportDocument,
    secrets: dict[str, list[str]],
    notes: list[str],
    log_files: list[Path],
) -> DemoResult:
    report_dir = options.report_dir
    session = stack.session()
    rendered = {"report.json": _report_json(report), "report.html": render_html(report)}
    places = [
        *dynamodb_places(session),
        *stepfunctions_places(session),
        *sqs_places(session),
        *file_places(log_files, root=report_dir),
        *notification_places(report_dir / NOTIFICATIONS_FILE),
        *text_places("report", rendered),
    ]
    leak_audit = audit_sources(secrets, places, notes)
    report.leak_audit = leak_audit
    report_dir.mkdir(parents=True, exist_ok=True)
    report_files = [report_dir / "report.json", report_dir / "report.html"]
    report_files[0].write_text(_report_json(report), encoding="utf-8")
    report_files[1].write_text(render_html(report), encoding="utf-8")
    written: list[Path] = list(report_files)
    if options.dump_state is not None:
        from aegis_local.reporting.state_dump import dump_state

        dump_state(session, options.dump_state, logs=log_files, reports=report_files, secrets_by_source=secrets)
        written.append(options.dump_state)
    # The files just written are searched too; their result decides with the first one.
    values = [value for found in secrets.values() for value in found]
    written_audit = audit(values, file_places(written, root=report_dir))
    final = leak_audit.model_copy(
        update={
            "places_searched": leak_audit.places_searched + written_audit.places_searched,
            "hits": [*leak_audit.hits, *written_audit.hits],
            "places": {**leak_audit.places, "written file": written_audit.places_searched},
        }
    )
    problems = list(run.problems)
    expected = "halted" if run.kill_switch is not None else "completed"
    if run.ended and report.status != expected:
        problems.append(f"the mission ended {report.status}")
    if not final.clean:
        problems.append(f"the leak audit found {len(final.hits)} secret(s)")
    result = DemoResult(
        run=run,
        report=report,
        leak_audit=final,
        report_files=report_files,
        log_files=log_files,
        exit_code=EXIT_OK if run.ended and not problems else EXIT_FAILURE,
        problems=problems,
    )
    _print_summary(console, result, options)
    return result


def _report_json(report: MissionReportDocument) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _print_summary(console: Console, result: DemoResult, options: DemoOptions) -> None:
    leak_audit, report_files = result.leak_audit, result.report_files
    console.step("report", f"{report_files[0]} and {report_files[1]} (open the HTML page in a browser)")
    console.step("logs", f"{len(result.log_files)} log files in {options.report_dir / 'logs'}")
    notifications_file = options.report_dir / NOTIFICATIONS_FILE
    count = len(read_notifications(notifications_file))
    console.step("notify", f"{count} notification{'' if count == 1 else 's'} published, in {notifications_file}")
    if options.dump_state is not None:
        console.step("dump", f"every table item, execution history, log and report in {options.dump_state}")
    sources = "; ".join(f"{count} from {name}" for name, count in leak_audit.sources.items())
    places = ", ".join(f"{count} {kind}" for kind, count in leak_audit.places.items())
    console.step("audit", f"searched {sources}")
    console.step("audit", f"in {leak_audit.places_searched} places: {places}")
    for note in leak_audit.notes:
        console.step("audit", note)
    for hit in leak_audit.hits:
        console.step("LEAK", f"secret {hit.fingerprint}… found in {hit.place}")
    report = result.report
    if report.pushes:
        # Without batches every change is a request of its own, to each approver it needs.
        unbatched = sum(max(1, len(request.approvers)) * request.count for request in report.requests)
        console.step("pushes", f"{report.approvals_line()} ({unbatched or report.pushes} without batches)")
    console.lines(["", report.model_copy(update={"leak_audit": leak_audit}).terminal_summary(), ""])
    problems = result.problems or ["the mission did not end"]
    verdict = "ok" if result.exit_code == EXIT_OK else "FAILED: " + "; ".join(problems)
    console.step("done", f"{verdict} (exit {result.exit_code})")


# The console's seeded users (aegis_local.auth0.config), with what each may do there.
CONSOLE_USERS = (
    ("operator@aegis.local", "every ops scope"),
    ("viewer@aegis.local", "read and audit only"),
    ("accounts@aegis.local", "read, and a Token Vault account of their own to delete"),
)


def _console_server(options: DemoOptions, console: Console) -> tuple[Any, str]:
    """The console, built if needed and listening (not yet attached to a stack), or None and why it is not served.
    Only the local tenant has the console's application; a tenant of your own registers it itself (README)."""
    if options.tenant is not None:
        return None, "with your own tenant, register the console's application there and serve console/dist (README)"
    from aegis_local.console.server import start_local_console

    return start_local_console(log=lambda line: console.step("console", line.removeprefix("console: ")))


def _keep_up(stack: Any, server: Any, console: Console) -> None:
    """Say how to reach the stack and the console, then wait for Ctrl-C (or SIGTERM)."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        lines = ["", "The stack stays up (--keep-up).", f"  AWS APIs (moto)  {stack.endpoints.moto_url}"]
        lines.append(f"  ops API          {stack.http_api_url()}")
        if server is not None:
            lines.append(f"  console          {server.url}   sign in as (passwords generated for this run):")
            config = stack.emulator.config
            width = max(len(email) for email, _ in CONSOLE_USERS)
            lines += [
                f"    {email.ljust(width)}  {config.user_password(email)}  ({what})" for email, what in CONSOLE_USERS
            ]
        lines += ["Press Ctrl-C to stop.", ""]
        console.lines(lines)
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    console.step("stack", "stopping")


def command(args: argparse.Namespace) -> int:
    terminal = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        options = options_from_args(args, terminal=terminal)
    except DemoUsageError as error:
        print(f"aegis-local demo: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    from aegis_local.aws.stack import LocalStack

    console = Console(sys.stdout)
    server, not_served = _console_server(options, console)
    arguments = stack_arguments(options)
    if server is not None:
        # The console's origin may call the ops API (its CORS is a template parameter, fixed when the stack starts).
        arguments["parameters"] = {**arguments["parameters"], **server.stack_parameters()}
    provider = "the Auth0 emulator" if options.tenant is None else "no emulator (your tenant approves)"
    console.step("stack", f"starting moto, {provider} and every function of template.yaml")
    try:
        with LocalStack(**arguments) as stack:
            endpoints = stack.endpoints
            if endpoints.issuer:
                where = f"Auth0 emulator at {endpoints.issuer} (CIBA interval {DEMO_CIBA_INTERVAL_SECONDS} s)"
            else:
                where = f"approvals at {options.tenant.issuer if options.tenant else '?'}"
            console.step(
                "stack", f"up in {stack.startup_seconds or 0:.1f} s: AWS APIs at {endpoints.moto_url}, {where}"
            )
            if server is not None:
                server.attach(stack)
                how = (
                    "users and passwords below once the mission ends" if options.keep_up else "add --keep-up to use it"
                )
                console.step("console", f"{server.url} ({how})")
            else:
                console.step("console", f"not served: {not_served}")
            if options.accounts is not None:
                from aegis_local.scenario.organization import run_org_demo

                org = stack.organization
                console.step(
                    "org",
                    f"organization {org.organization_id}: management {org.management_account_id}, "
                    f"{len(org.member_account_ids)} members ({len(org.unreachable_account_ids)} without member roles)",
                )
                org_result = run_org_demo(stack, options, console, regions=list(options.regions))
                if options.keep_up:
                    _keep_up(stack, server, console)
                return org_result.exit_code
            result = run_on_stack(stack, options, console)
            if options.keep_up:
                _keep_up(stack, server, console)
    finally:
        if server is not None:
            server.stop()
    return result.exit_code


# ----------------------------------------------------------------------------------------------------------------
# the parser


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    approvals = parser.add_argument_group("approvals (default on a terminal: you answer as the approver's phone)")
    approvals.add_argument("--approve", choices=["all"], help="approve every change not named by another flag")
    approvals.add_argument(
        "--deny",
        action="append",
        metavar="ID",
        help="deny the request of this check's changes, of this change (chg-...) or this request (r002): a batch "
        "is denied as a whole",
    )
    approvals.add_argument(
        "--let-expire",
        action="append",
        metavar="ID",
        help="leave unanswered the request of this check's changes, of this change or this request (as --deny)",
    )
    approvals.add_argument(
        "--drift",
        action="append",
        metavar="CHECK_ID|CHANGE_ID",
        help="approve, then change the resource by hand before the executor runs (it must refuse)",
    )
    mission = parser.add_argument_group("the mission")
    mission.add_argument("--kill-after", type=int, metavar="N", help="trigger the kill switch after N changes applied")
    mission.add_argument("--dry-run", action="store_true", help="scan and plan only")
    mission.add_argument("--check", action="append", metavar="CHECK_ID", help="scan only these checks (repeatable)")
    mission.add_argument(
        "--parameter", action="append", metavar="NAME=VALUE", help="override a template parameter (repeatable)"
    )
    mission.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS")
    mission.add_argument(
        "--analyst",
        choices=ANALYST_MODELS,
        help="let a language model choose among the code-built fixes and explain them (the local Bedrock emulator's "
        "models: scripted follows the data, adversarial obeys the prompt injections planted in the seeded account, "
        "failing times out, is throttled and answers malformed)",
    )
    mission.add_argument(
        "--keep-up",
        action="store_true",
        help="after the mission, leave the stack and the console up (their URLs and users printed) until Ctrl-C",
    )
    organization = parser.add_argument_group("an organization scan (the security account heads a local organization)")
    organization.add_argument("--accounts", type=int, metavar="N", help="member accounts, each with its own mission")
    organization.add_argument(
        "--regions",
        metavar="R1,R2",
        help=f"regions each member is seeded in and scanned (default {DEFAULT_ORG_REGION})",
    )
    organization.add_argument(
        "--unreachable", type=int, metavar="K", help="leave K members without member roles (reported unreachable)"
    )
    output = parser.add_argument_group("output")
    output.add_argument("--report-dir", default=str(DEFAULT_REPORT_DIR), metavar="DIR", help="default: reports/")
    output.add_argument(
        "--dump-state", metavar="DIR", help="also write every table item, execution history, log and report as JSON"
    )
    tenant = parser.add_argument_group("bring your own tenant (AWS stays local)")
    tenant.add_argument("--issuer", metavar="URL", help="issuer URL of your Auth0 tenant or OpenID provider")
    tenant.add_argument("--client-id", metavar="ID")
    tenant.add_argument("--client-secret-file", metavar="FILE", help="a file holding the client secret")
    tenant.add_argument("--approver-sub", metavar="SUB", help="the user id whose phone approves")
    tenant.add_argument("--audience", metavar="AUD", help=f"API identifier (default {DEFAULT_AUDIENCE})")
    tenant.add_argument("--connection", metavar="NAME", help=f"Token Vault connection (default {DEFAULT_CONNECTION})")
    tenant.add_argument(
        "--killswitch-client-id", metavar="ID", help="the kill switch's M2M application (default: --client-id)"
    )
    tenant.add_argument("--killswitch-client-secret-file", metavar="FILE", help="that application's client secret")
    tenant.add_argument(
        "--executor-client-id",
        metavar="ID",
        help="the executor's application, the API's Custom API Client (default: --client-id, which then needs the "
        "token-exchange grant too)",
    )
    tenant.add_argument("--executor-client-secret-file", metavar="FILE", help="that application's client secret")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND,
        help="run a whole mission on the local stack, with a report and a leak audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=command)
    return parser
