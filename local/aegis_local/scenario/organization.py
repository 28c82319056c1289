"""`aegis-local demo --accounts N --regions R1,R2`: an organization mission on the local stack, end to end.

The stack starts at the head of a local AWS Organization (`aegis_local.aws.organization`): N member accounts, each
with member/template.yaml's roles except the last `--unreachable K`, each seeded in every region like the demo's own
account. One `aegis.scan` event with `{"organization": true, "regions": [...]}` goes to the agent, which starts the
org-scan execution; its Distributed Map scans every account (the agent assuming each member's read-only
AegisScanRole), and every account with findings gets a mission of its own (the mission state machine, per account).

`OrganizationDriver` watches the org-scan execution and each account mission (the Missions table's `ByOrgScan`
index) and plays the approvers' phones for all of them at once: a request is matched to the plan of the mission it
belongs to — a single change by its digest, a batch by its Merkle root recomputed from that mission's ValidatePlan
output — and approved; a request that matches no mission's plan is denied once every plan is known. The run ends
when the org-scan execution ended and every account mission reached a final status (`unreachable` included).

Then `reports/org-report.json` (the layer's `aegis.reporting.organization.org_summary` of the org-scan item and its
account missions), a per-account table, and the leak audit over every table item, execution, queue, the org-scan
bucket's objects, the logs and the report: every STS credential (AegisScanRole, AegisRemediationRole sessions in each
member) and every token the emulator issued is searched for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aegis.approvals.merkle import merkle_root
from aegis.catalogue import ChangeBase, parse_change
from aegis_local.scenario.driver import PlannedRequest, Progress, planned_requests, validated_output
from aegis_local.scenario.phone import Answer, EmulatedPhone, PhoneRequest

__all__ = [
    "ORG_REPORT_FILE",
    "ORG_SCAN_STATE_MACHINE",
    "TERMINAL_MISSION_STATUSES",
    "AccountMission",
    "OrgRun",
    "OrganizationDriver",
    "account_table",
    "org_mission_items",
    "org_report",
]

ORG_REPORT_FILE = "org-report.json"
ORG_SCAN_STATE_MACHINE = "OrgScanStateMachine"
MISSION_STATE_MACHINE = "MissionStateMachine"
TERMINAL_MISSION_STATUSES = frozenset({"completed", "failed", "halted", "unreachable"})
ENDED_WITHOUT_RESUME = frozenset({"ABORTED", "FAILED", "TIMED_OUT"})
# A request that matches no known plan may belong to a mission whose plan is not readable yet.
UNMATCHED_GRACE_SECONDS = 20.0


@dataclass
class AccountMission:
    """One member account's mission, as the driver saw it."""

    account_id: str
    mission_id: str
    status: str = "unknown"
    execution_arn: str | None = None
    execution_status: str | None = None
    plan: list[ChangeBase] = field(default_factory=list)
    requests: dict[str, PlannedRequest] = field(default_factory=dict)
    requests_known: bool = False
    approved: int = 0  # phone requests approved for it

    @property
    def ended(self) -> bool:
        # A stopped (the kill switch) or failed execution never resumes the agent: the item keeps its last status.
        if self.execution_status in ENDED_WITHOUT_RESUME:
            return True
        return self.status in TERMINAL_MISSION_STATUSES and self.execution_status != "RUNNING"


@dataclass
class OrgRun:
    """What happened, for the report and the exit code."""

    event_id: str = ""
    org_scan_id: str = ""
    execution_arn: str = ""
    execution_status: str | None = None
    account_count: int | None = None
    missions: dict[str, AccountMission] = field(default_factory=dict)  # account id -> its mission
    approvals: int = 0
    denials: int = 0
    ended: bool = False
    problems: list[str] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at


def org_mission_items(missions_table: Any, org_scan_id: str) -> list[dict[str, Any]]:
    """Every account mission item of the organization scan (the sparse `ByOrgScan` index), by account."""
    from boto3.dynamodb.conditions import Key

    from aegis.missions_keys import ORG_SCAN_ATTRIBUTE, ORG_SCAN_INDEX

    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {
        "IndexName": ORG_SCAN_INDEX,
        "KeyConditionExpression": Key(ORG_SCAN_ATTRIBUTE).eq(org_scan_id),
    }
    while True:
        page = missions_table.query(**query)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda item: str(item.get("account_id")))
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class OrganizationDriver:
    """One organization scan on `stack` (a running `LocalStack` with an organization). `phone` None: nobody answers
    (a dry run, or a test that answers itself)."""

    def __init__(
        self,
        stack: Any,
        progress: Progress,
        phone: EmulatedPhone | None,
        *,
        timeout_seconds: float = 900.0,
        poll_seconds: float = 0.3,
        approve: bool = True,
    ) -> None:
        self._stack = stack
        self._progress = progress
        self._phone = phone
        self._timeout = timeout_seconds
        self._poll = poll_seconds
        self._approve = approve
        resource = stack.session().resource("dynamodb")
        self._missions = resource.Table(stack.physical_id("MissionsTable"))
        self._sfn = stack.client("stepfunctions")
        self._handled: set[str] = set()
        self._first_unmatched: dict[str, float] = {}

    def run(self, detail: Mapping[str, Any]) -> OrgRun:
        from aegis.missions_keys import org_scan_id_for_event

        run = OrgRun()
        run.event_id = self._stack.fire_scan({**detail, "organization": True})
        run.org_scan_id = org_scan_id_for_event(run.event_id)
        machine = self._stack.state_machine_arn(ORG_SCAN_STATE_MACHINE)
        run.execution_arn = machine.replace(":stateMachine:", ":execution:", 1) + f":{run.org_scan_id}"
        regions = ", ".join(detail.get("regions") or []) or "the configured regions"
        self._progress.step(
            "scan",
            f"event {run.event_id[:8]}… (organization, {regions}) → AgentScanFunction: org scan {run.org_scan_id}",
        )
        deadline = time.monotonic() + self._timeout
        try:
            while True:
                self._poll_org(run)
                self._poll_missions(run)
                if self._phone is not None:
                    self._answer_phone(run)
                if self._ended(run):
                    run.ended = not run.problems
                    return run
                if time.monotonic() > deadline:
                    run.problems.append(f"the organization scan did not end within {self._timeout:.0f} s")
                    self._progress.step("timeout", run.problems[-1])
                    return run
                time.sleep(self._poll)
        finally:
            self._stack.lambdas.wait_idle(timeout=30)
            run.finished_at = time.monotonic()

    # -- the org-scan execution -------------------------------------------------------------------------------

    def _poll_org(self, run: OrgRun) -> None:
        try:
            status = str(self._sfn.describe_execution(executionArn=run.execution_arn)["status"])
        except self._sfn.exceptions.ExecutionDoesNotExist:
            return
        if status != run.execution_status:
            run.execution_status = status
            self._progress.step("org", f"org-scan execution {run.org_scan_id}: {status}")
            if status in ("FAILED", "TIMED_OUT", "ABORTED"):
                run.problems.append(f"the org-scan execution ended {status}")
        if run.account_count is None:
            from aegis.missions_keys import org_scan_key

            item = self._missions.get_item(Key={"mission_id": org_scan_key(run.org_scan_id)}, ConsistentRead=True)
            found = item.get("Item")
            if found is not None and found.get("account_count") is not None:
                run.account_count = int(found["account_count"])
                self._progress.step("org", f"{run.account_count} accounts of the organization to scan")

    # -- the account missions ----------------------------------------------------------------------------------

    def _poll_missions(self, run: OrgRun) -> None:
        for item in org_mission_items(self._missions, run.org_scan_id):
            account = str(item.get("account_id"))
            mission = run.missions.get(account)
            if mission is None:
                mission = AccountMission(account_id=account, mission_id=str(item["mission_id"]))
                run.missions[account] = mission
            status = str(item.get("status"))
            if item.get("execution_arn") and mission.execution_arn is None:
                mission.execution_arn = str(item["execution_arn"])
            if status != mission.status:
                mission.status = status
                counts = item.get("counts") or {}
                extra = (
                    f" ({counts.get('findings', '?')} findings, {counts.get('changes', '?')} changes)" if counts else ""
                )
                self._progress.step("account", f"{account} {mission.mission_id}: {status}{extra}")
            if mission.execution_arn is not None:
                self._load_plan(mission)
                try:
                    described = self._sfn.describe_execution(executionArn=mission.execution_arn)
                    mission.execution_status = str(described["status"])
                except Exception:
                    mission.execution_status = None

    def _load_plan(self, mission: AccountMission) -> None:
        if mission.plan and mission.requests_known:
            return
        assert mission.execution_arn is not None
        try:
            if not mission.plan:
                described = self._sfn.describe_execution(executionArn=mission.execution_arn)
                raw = json.loads(described.get("input") or "{}").get("changes", [])
                mission.plan = [parse_change(change) for change in raw]
            if not mission.requests_known:
                output = validated_output(self._sfn, mission.execution_arn)
                if output is not None:
                    mission.requests = {r.request_id: r for r in planned_requests(output.get("requests"))}
                    mission.requests_known = True
                    if not mission.plan:
                        mission.plan = [c for r in mission.requests.values() for c in r.changes]
        except Exception:  # the execution is young: its input or history is read again on the next poll
            return

    # -- the phones ------------------------------------------------------------------------------------------

    def _answer_phone(self, run: OrgRun) -> None:
        assert self._phone is not None
        try:
            pending = self._phone.pending()
        except Exception as error:
            self._progress.step("phone", f"cannot read the phone: {error}")
            return
        for request in pending:
            if request.auth_req_id in self._handled:
                continue
            mission, changes = self._match(run, request)
            if mission is None:
                first = self._first_unmatched.setdefault(request.auth_req_id, time.monotonic())
                plans_known = run.missions and all(
                    m.requests_known or m.execution_arn is None for m in run.missions.values()
                )
                if not plans_known or time.monotonic() - first < UNMATCHED_GRACE_SECONDS:
                    continue
            self._handled.add(request.auth_req_id)
            answer = Answer.APPROVE if mission is not None and self._approve else Answer.DENY
            try:
                self._phone.answer(request, answer)
            except Exception as error:
                self._progress.step("phone", f"«{request.binding_message}»: could not {answer.value}: {error}")
                continue
            if answer is Answer.APPROVE:
                assert mission is not None
                run.approvals += 1
                mission.approved += 1
                what = f"batch of {len(changes)}" if request.is_batch else changes[0].change_id
                self._progress.step(
                    "phone",
                    f"{mission.account_id} «{request.binding_message}» ({what}) on {request.sub}'s phone → approve",
                )
            else:
                run.denials += 1
                why = "matches no mission's plan" if mission is None else "--approve was not given"
                self._progress.step("phone", f"«{request.binding_message}» → deny ({why})")

    def _match(self, run: OrgRun, request: PhoneRequest) -> tuple[AccountMission | None, list[ChangeBase]]:
        for mission in run.missions.values():
            if request.is_batch:
                for planned in mission.requests.values():
                    if (
                        planned.root == request.merkle_root
                        and request.count in (None, len(planned.changes))
                        and merkle_root(change.digest for change in planned.changes) == planned.root
                    ):
                        return mission, list(planned.changes)
            else:
                change = request.matching_change(mission.plan)
                if change is not None:
                    return mission, [change]
        return None, []

    # -- the end ---------------------------------------------------------------------------------------------

    def _ended(self, run: OrgRun) -> bool:
        if run.problems:
            return True
        if run.execution_status in (None, "RUNNING"):
            return False
        if run.account_count is not None and len(run.missions) < run.account_count:
            return False
        if not all(mission.ended for mission in run.missions.values()):
            return False
        return bool(self._stack.lambdas.wait_idle(0))


# ---------------------------------------------------------------------------------------------------------------
# the report


def org_report(stack: Any, org_scan_id: str) -> dict[str, Any]:
    """The organization report: `org_summary` of the org-scan item and its account missions (the ops API's)."""
    from aegis.missions_keys import org_scan_key
    from aegis.reporting.organization import org_summary

    missions = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
    org_item = missions.get_item(Key={"mission_id": org_scan_key(org_scan_id)}, ConsistentRead=True).get("Item")
    if org_item is None:
        raise LookupError(f"no organization scan item for {org_scan_id}")
    summary: dict[str, Any] = org_summary(
        _plain(org_item), [_plain(i) for i in org_mission_items(missions, org_scan_id)]
    )
    return summary


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals as ints or floats, for JSON."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def write_org_report(report: Mapping[str, Any], report_dir: Path) -> Path:
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / ORG_REPORT_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def account_table(
    run: OrgRun,
    items: Iterable[Mapping[str, Any]],
    unreachable: Iterable[str] = (),
    applied: Mapping[str, int] | None = None,
) -> list[str]:
    """One line per member account: its mission, status, findings, changes, approvals and what was applied."""
    expected_unreachable = set(unreachable)
    rows = [("account", "mission", "status", "findings", "changes", "approved", "applied", "note")]
    for item in sorted(items, key=lambda i: str(i.get("account_id"))):
        account = str(item.get("account_id"))
        counts = item.get("counts") or {}
        outcomes = item.get("outcomes") or {}
        mission = run.missions.get(account)
        note = ""
        if item.get("status") == "unreachable":
            note = f"AssumeRole refused ({item.get('error') or 'no member roles'})"
        elif account in expected_unreachable:
            note = "expected unreachable"
        rows.append(
            (
                account,
                str(item.get("mission_id")),
                str(item.get("status")),
                str(counts.get("findings", "-")),
                str(counts.get("changes", "-")),
                str(mission.approved if mission else 0),
                str((applied or {}).get(account, outcomes.get("applied", "-"))),
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def applied_by_account(stack: Any, run: OrgRun) -> dict[str, int]:
    """How many changes the executor applied in each account's mission (its audit trail's `executor.result`)."""
    from aegis.audit import read_trail

    audit = stack.session().resource("dynamodb").Table(stack.physical_id("AuditTable"))
    return {
        account: sum(
            1
            for entry in read_trail(audit, mission.mission_id)
            if entry.get("action") == "executor.result" and entry.get("outcome") == "applied"
        )
        for account, mission in run.missions.items()
    }


# ---------------------------------------------------------------------------------------------------------------
# the demo


@dataclass
class OrgDemoResult:
    run: OrgRun
    report: dict[str, Any]
    report_file: Path
    leak_audit: Any
    seeded: dict[tuple[str, str], Any]  # (account, region) -> SeededAccount
    applied: dict[str, int]
    exit_code: int
    problems: list[str] = field(default_factory=list)


def seed_organization(
    stack: Any, regions: Iterable[str], progress: Progress, *, management: bool = True
) -> dict[tuple[str, str], Any]:
    """Seed every member account (reachable or not) in every region, as the demo seeds its own account, and (unless
    `management` is False) the security account too: it is an ACTIVE account of the organization, so an
    organization scan covers it (with the agent's own role) unless OrgScanExcludeAccounts names it."""
    from aegis_local.scenario.seed import seed_account

    organization = stack.organization
    regions = list(regions)
    seeded: dict[tuple[str, str], Any] = {}
    accounts = [organization.management_account_id] if management else []
    for account in [*accounts, *organization.member_account_ids]:
        for region in regions:
            seeded[(account, region)] = seed_account(organization.session(account, region), region)
        found = sum(len(seeded[(account, r)].expected_findings) for r in regions)
        where = "" if account not in organization.unreachable_account_ids else " (no member roles: unreachable)"
        role = "security account" if account == organization.management_account_id else "member"
        progress.step("seed", f"{role} {account}: {', '.join(regions)}: {found} misconfigurations{where}")
    return seeded


def run_org_demo(stack: Any, options: Any, console: Any, *, regions: list[str]) -> OrgDemoResult:
    """The organization demo on a running stack with an organization (see the module docstring). `options` is the
    demo's `DemoOptions`, `console` its `Console`."""
    import threading

    from aegis_local.aws.logs import LogCapture
    from aegis_local.aws.notifications import NOTIFICATIONS_FILE, NotificationCapture
    from aegis_local.cli.common import EXIT_FAILURE, EXIT_OK

    report_dir: Path = options.report_dir
    logs_dir = report_dir / "logs"
    if logs_dir.is_dir():
        for old in logs_dir.glob("*.log"):
            old.unlink()
    capture = LogCapture(logs_dir)
    notifications = NotificationCapture(
        report_dir / NOTIFICATIONS_FILE, on_notification=lambda published: console.step("notify", published.line())
    )
    with capture, notifications:
        preload = threading.Thread(target=stack.preload_handlers, name="aegis-org-demo-preload", daemon=True)
        preload.start()
        excluded = str(stack.parameters.get("OrgScanExcludeAccounts") or "").split(",")
        management = stack.organization.management_account_id not in excluded
        seeded = seed_organization(stack, regions, console, management=management)
        preload.join()
        approvers = [sub for sub in str(stack.parameters.get("ApproverSubs", "")).split(",") if sub]
        phone = EmulatedPhone(stack.emulator, approvers[0], also=approvers[1:]) if not options.dry_run else None
        driver = OrganizationDriver(
            stack, console, phone, timeout_seconds=options.timeout_seconds, approve=options.policy.approve_all
        )
        detail: dict[str, Any] = {"regions": regions, "dry_run": options.dry_run}
        if options.checks:
            detail["checks"] = list(options.checks)
        run = driver.run(detail)
        stack.drain_streams()
        problems = list(run.problems)
        try:
            report = org_report(stack, run.org_scan_id)
        except (LookupError, ImportError) as error:
            report = {"org_scan_id": run.org_scan_id, "error": str(error)}
            problems.append(f"no organization report: {error}")
        capture.flush()
        log_files = capture.files
    missions = stack.session().resource("dynamodb").Table(stack.physical_id("MissionsTable"))
    items = org_mission_items(missions, run.org_scan_id) if run.org_scan_id else []
    applied = applied_by_account(stack, run)
    leak_audit = _org_leak_audit(stack, report, log_files, report_dir / NOTIFICATIONS_FILE, report_dir)
    report_file = write_org_report(report, report_dir)
    problems += _org_problems(stack, run, items, leak_audit)
    console.lines(["", *account_table(run, items, stack.organization.unreachable_account_ids, applied), ""])
    console.step("report", f"{report_file} ({run.approvals} approvals on the phones, {run.denials} denials)")
    console.step("audit", leak_audit.summary())
    for hit in leak_audit.hits:
        console.step("LEAK", f"secret {hit.fingerprint}… found in {hit.place}")
    exit_code = EXIT_OK if run.ended and not problems else EXIT_FAILURE
    verdict = (
        "ok" if exit_code == EXIT_OK else "FAILED: " + "; ".join(problems or ["the organization scan did not end"])
    )
    console.step("done", f"{verdict} (exit {exit_code})")
    return OrgDemoResult(
        run=run,
        report=report,
        report_file=report_file,
        leak_audit=leak_audit,
        seeded=seeded,
        applied=applied,
        exit_code=exit_code,
        problems=problems,
    )


def _org_leak_audit(
    stack: Any, report: Mapping[str, Any], log_files: list[Path], notifications_file: Path, report_dir: Path
) -> Any:
    """Every secret issued during the run (the emulator's, every STS session's in every account) searched for in
    every table item, execution, queue, object of the security account's buckets (the org-scan bucket's item lists
    and Map results), log, notification and the report."""
    from aegis_local.reporting.leak_audit import (
        audit_sources,
        dynamodb_places,
        file_places,
        notification_places,
        s3_places,
        sqs_places,
        stepfunctions_places,
        text_places,
    )

    report_text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    secrets = {
        "Auth0 emulator: client secrets and every token it issued": sorted(stack.emulator.issued_secrets()),
        "moto STS: every AWS session (AegisScanRole, AegisRemediationRole, ...)": stack.issued_aws_credentials(),
    }
    session = stack.session()
    places = [
        *dynamodb_places(session),
        *stepfunctions_places(session),
        *sqs_places(session),
        *s3_places(session),
        *file_places(log_files, root=report_dir),
        *notification_places(notifications_file),
        *text_places("report", {ORG_REPORT_FILE: report_text}),
    ]
    return audit_sources(secrets, places)


def _org_problems(stack: Any, run: OrgRun, items: list[dict[str, Any]], leak_audit: Any) -> list[str]:
    """What keeps the run from being a success: an account that did not end as it should (unreachable where its
    member roles are missing, completed elsewhere), a missing mission, a leak."""
    problems: list[str] = []
    unreachable = stack.organization.unreachable_account_ids
    for item in items:
        account, status = str(item.get("account_id")), str(item.get("status"))
        wanted = "unreachable" if account in unreachable else "completed"
        if status != wanted:
            problems.append(f"account {account} ended {status}, not {wanted}")
    if run.account_count is not None and len(items) != run.account_count:
        problems.append(f"{len(items)} account missions for {run.account_count} accounts")
    if not leak_audit.clean:
        problems.append(f"the leak audit found {len(leak_audit.hits)} secret(s)")
    return problems
