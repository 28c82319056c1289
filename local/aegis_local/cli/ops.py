"""The operator commands: what an operator does with AegisCloud every day, through its ops HTTP API, against the
local stack (`aegis-local up` prints the settings to export) or a deployed stack (`--api`, `--issuer`,
`--audience`). Each call carries the access token `aegis-local login` cached; the API and its gateway check it and
its scopes on every route, so these commands can do exactly what the operator's token allows, no more."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aegis.cis import CIS_VERSIONS
from aegis_local.cli.common import DEFAULT_REGION, ENDPOINT_ENV, EXIT_FAILURE, EXIT_OK, CommandFailed
from aegis_local.cli.ops_api import OpsApiClient, add_api_options, path_segment

__all__ = ["register"]

READ_SCOPE = "aegis:read"
AUDIT_SCOPE = "aegis:audit"
SCAN_SCOPE = "aegis:scan"
UNDO_SCOPE = "aegis:undo"
KILLSWITCH_SCOPE = "aegis:killswitch"
REARM_SCOPE = "aegis:rearm"
# The kill switch answers 502 with its full report when some step failed: that report is the answer to show.
KILL_SWITCH_PARTIAL_FAILURE = 502
MISSIONS_TABLE_ENV = "AEGIS_MISSIONS_TABLE"
AUDIT_TABLE_ENV = "AEGIS_AUDIT_TABLE"
# How long `audit verify` waits for the chainer to link records written just before it runs.
CHAINER_GRACE_SECONDS = 5.0


def _collect(
    api: OpsApiClient, path: str, scope: str, *, params: dict[str, str], key: str, follow: bool
) -> tuple[list[dict[str, Any]], str | None]:
    """The items (under `key`) of one page of a paged route, or of every page from there if `follow`; and the
    cursor of the page after the last one read (None at the end)."""
    items: list[dict[str, Any]] = []
    while True:
        page = api.get_json(path, scope, params)
        items += list(page.get(key) or [])
        cursor = page.get("next") or None
        if not follow or cursor is None:
            return items, cursor
        params = {**params, "next": str(cursor)}


def _paging_params(args: argparse.Namespace) -> dict[str, str]:
    params: dict[str, str] = {}
    if args.limit is not None:
        params["limit"] = str(args.limit)
    if args.next:
        params["next"] = args.next
    return params


# ----------------------------------------------------------------------------------------------------------------
# missions, show, findings


def cmd_missions(args: argparse.Namespace) -> int:
    if args.org_scan:
        return _org_scan(args)
    with OpsApiClient.from_args(args) as api:
        missions, cursor = _collect(
            api, "/missions", READ_SCOPE, params=_paging_params(args), key="missions", follow=args.all
        )
    if args.json:
        print(json.dumps({"missions": missions, "next": cursor}, sort_keys=True))
        return EXIT_OK
    if not missions:
        print("no missions yet (start one with `aegis-local scan`)")
    for item in missions:
        counts = item.get("counts") or {}
        print(
            f"{item.get('mission_id')}  {item.get('status')!s:<18} {item.get('created_at', '')}  "
            f"{counts.get('findings', '-')} findings, {counts.get('changes', '-')} changes"
            + ("  (dry run)" if item.get("dry_run") else "")
            + (f"  (undo of {item['undo_of']})" if item.get("undo_of") else "")
        )
    if cursor:
        print(f"more: aegis-local missions --next {cursor}   (or --all)")
    return EXIT_OK


def _org_scan(args: argparse.Namespace) -> int:
    """One organization scan: a line per account (`GET /missions?org_scan=`)."""
    with OpsApiClient.from_args(args) as api:
        summary = api.get_json("/missions", READ_SCOPE, {"org_scan": args.org_scan})
    if args.json:
        print(json.dumps(summary, sort_keys=True))
        return EXIT_OK
    org = summary.get("org_scan") or {}
    print(
        f"{org.get('org_scan_id', args.org_scan)}  {org.get('status', '-')}  {org.get('account_count', '-')} accounts"
    )
    for line in summary.get("accounts") or []:
        counts = line.get("counts") or {}
        outcomes = line.get("outcomes") or {}
        print(
            f"  {line.get('account_id')}  {line.get('status')!s:<18} {line.get('mission_id')}  "
            f"{counts.get('findings', 0)} findings, {counts.get('changes', 0)} changes, "
            f"{outcomes.get('applied', 0)} applied" + (f"  ({line['error']})" if line.get("error") else "")
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from aegis.reporting.html import MissionReportDocument

    mission = path_segment(args.mission_id)
    with OpsApiClient.from_args(args) as api:
        detail = api.get_json(f"/missions/{mission}", READ_SCOPE)
        if args.html:
            page = api.get_text(f"/missions/{mission}/report.html", READ_SCOPE)
            Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        print(json.dumps(detail, indent=1, sort_keys=True))
        return EXIT_OK
    report = MissionReportDocument.model_validate(detail.get("report") or {})
    print(report.terminal_summary())
    if args.html:
        print(f"  HTML report: {args.html}")
    return EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    with OpsApiClient.from_args(args) as api:
        body = api.get_json("/findings", READ_SCOPE, params={"cis": args.cis} if args.cis else None)
    if args.json:
        print(json.dumps(body, sort_keys=True))
        return EXIT_OK
    for control in body.get("controls") or []:
        resources = control.get("resources") or []
        failing = sum(1 for resource in resources if resource.get("status") == "failing")
        latest = control.get("latest_mission_id")
        print(
            f"CIS {control.get('cis') or '-':<8} {control.get('check_id')!s:<36} {control.get('severity')!s:<8} "
            f"{control.get('state')!s:<14} {len(resources)} resources, {failing} failing"
            + (f"  (mission {latest})" if latest else "")
        )
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------
# audit


def cmd_audit(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words[:1] == ["verify"]:
        if len(words) != 2:
            raise CommandFailed("expected `audit verify MISSION_ID`")
        return _verify_audit(args, words[1])
    if len(words) > 1:
        raise CommandFailed("expected at most one MISSION_ID (or `verify MISSION_ID`)")
    mission = words[0] if words else args.mission
    if words and args.mission and args.mission != words[0]:
        raise CommandFailed("give the mission once: as MISSION_ID or as --mission")
    if not (mission or args.change or args.action):
        raise CommandFailed("give a MISSION_ID, --mission, --change or --action: the trail is read by one of them")
    filters = (("mission", mission), ("change", args.change), ("action", args.action), ("since", args.since))
    params = {name: value for name, value in filters if value}
    params.update(_paging_params(args))
    with OpsApiClient.from_args(args) as api:
        records, cursor = _collect(api, "/audit", AUDIT_SCOPE, params=params, key="records", follow=args.all)
    if args.json:
        print(json.dumps({"records": records, "next": cursor}, sort_keys=True))
        return EXIT_OK
    if not records:
        print("no audit records match")
    for record in records:
        details = record.get("details") or {}
        change = (
            f" {record.get('change_id') or details.get('change_id')}"
            if record.get("change_id") or details.get("change_id")
            else ""
        )
        who = f" {details['approver_sub']}" if details.get("approver_sub") else ""
        print(
            f"{record.get('at')}  {record.get('mission_id')}  {record.get('actor')!s:<10} "
            f"{record.get('action')!s:<26} {record.get('outcome')}{change}{who}"
        )
    if cursor:
        print(f"more: add --next {cursor}   (or --all)")
    return EXIT_OK


def _verify_audit(args: argparse.Namespace, mission_id: str) -> int:
    """Recompute the mission's hash chain from the tables themselves; exit 1 naming the first record changed,
    removed, inserted or moved.

    This reads DynamoDB directly with the caller's AWS credentials, not through the ops API: a check of the trail's
    integrity should not trust the service whose data it checks."""
    from aegis.audit_chain import verify_mission
    from aegis_local.cli.common import endpoint_session

    audit_name = args.audit_table or os.environ.get(AUDIT_TABLE_ENV)
    missions_name = args.missions_table or os.environ.get(MISSIONS_TABLE_ENV)
    if not audit_name or not missions_name:
        raise CommandFailed(
            f"audit verify reads the tables: give --audit-table and --missions-table (or set {AUDIT_TABLE_ENV} and "
            f"{MISSIONS_TABLE_ENV}; `aegis-local up` prints them, a deployed stack has them as outputs)"
        )
    endpoint = args.endpoint_url or os.environ.get(ENDPOINT_ENV)
    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    if endpoint:
        resource = endpoint_session(endpoint, region).resource("dynamodb", endpoint_url=endpoint)
    else:
        import boto3

        resource = boto3.Session(region_name=region).resource("dynamodb")
    audit, missions = resource.Table(audit_name), resource.Table(missions_name)
    # The chainer runs a stream delay behind the writers: give it that long before calling a record unlinked.
    deadline = time.monotonic() + CHAINER_GRACE_SECONDS
    verdict = verify_mission(audit, missions, mission_id, settled=False)
    while verdict.unlinked and verdict.intact and time.monotonic() < deadline:
        time.sleep(0.2)
        verdict = verify_mission(audit, missions, mission_id, settled=False)
    verdict = verify_mission(audit, missions, mission_id, settled=True)
    if args.json:
        print(json.dumps(verdict.as_document(), sort_keys=True))
    else:
        print(verdict.summary())
    return EXIT_OK if verdict.intact else EXIT_FAILURE


# ----------------------------------------------------------------------------------------------------------------
# scan, undo


def cmd_scan(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"dry_run": args.dry_run}
    if args.organization:
        body["organization"] = True
    if args.region:
        body["regions"] = args.region
    if args.check:
        body["checks"] = args.check
    with OpsApiClient.from_args(args) as api:
        answer = api.post_json("/scans", SCAN_SCOPE, body)
    if args.json:
        print(json.dumps(answer, sort_keys=True))
    else:
        kind = ("organization " if args.organization else "") + ("dry run" if args.dry_run else "scan")
        started = (
            f"organization scan {answer.get('org_scan_id')}"
            if args.organization
            else f"mission {answer.get('mission_id')}"
        )
        print(f"{kind} requested: event {answer.get('event_id')}: {started}")
    return EXIT_OK


def cmd_undo(args: argparse.Namespace) -> int:
    with OpsApiClient.from_args(args) as api:
        answer = api.post_json(f"/changes/{path_segment(args.change_id)}/undo", UNDO_SCOPE)
    if args.json:
        print(json.dumps(answer, sort_keys=True))
    else:
        print(
            f"undo of {answer.get('change_id')} requested: event {answer.get('event_id')}: "
            f"mission {answer.get('mission_id')} (it asks the approver's phone like any change)"
        )
    return EXIT_OK


# ----------------------------------------------------------------------------------------------------------------
# the kill switch


def _kill_switch(args: argparse.Namespace, path: str, scope: str) -> int:
    body = {"reason": args.reason} if args.reason else {}
    with OpsApiClient.from_args(args) as api:
        report = api.post_json(path, scope, body, accept=(KILL_SWITCH_PARTIAL_FAILURE,))
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        action = "trigger" if path == "/kill" else "rearm"
        print(f"kill switch {action}: halted={report.get('halted')} ok={report.get('ok')}")
        for step in report.get("steps", []):
            print(f"  {'ok  ' if step.get('ok') else 'FAIL'} {step.get('step')}: {step.get('reason')}")
    return EXIT_OK if report.get("ok") else EXIT_FAILURE


def cmd_kill(args: argparse.Namespace) -> int:
    return _kill_switch(args, "/kill", KILLSWITCH_SCOPE)


def cmd_rearm(args: argparse.Namespace) -> int:
    return _kill_switch(args, "/rearm", REARM_SCOPE)


# ----------------------------------------------------------------------------------------------------------------
# the parsers

EXAMPLES = {
    "missions": """\
examples:
  aegis-local missions                    the 25 newest missions
  aegis-local missions --all --json       every mission, as JSON""",
    "show": """\
examples:
  aegis-local show m-0123456789abcdef0123
  aegis-local show m-0123456789abcdef0123 --html report.html    also write the self-contained HTML diff report""",
    "findings": """\
examples:
  aegis-local findings
  aegis-local findings --cis v5         grouped by CIS AWS Foundations v5.0.0 (default: the deployment's, v7)
  aegis-local findings --json""",
    "audit": """\
examples:
  aegis-local audit m-0123456789abcdef0123                   a mission's trail, oldest first
  aegis-local audit --change chg-0123456789abcdef0123        everything that happened to one change
  aegis-local audit --mission killswitch --since 2030-01-31T00:00:00Z       the kill switch's operations
  aegis-local audit --action approval.requested --all
  aegis-local audit verify m-0123456789abcdef0123            recompute its hash chain from the tables""",
    "scan": """\
examples:
  aegis-local scan --dry-run                                  find and plan, change nothing
  aegis-local scan --region eu-west-1 --check s3-bucket-public""",
    "undo": """\
examples:
  aegis-local undo chg-0123456789abcdef0123

The undo is a mission of its own: the approver's phone asks for it like for any change. It is refused (exit 5)
when undo is not configured, or the change was never applied or is undone already.""",
    "kill": """\
examples:
  aegis-local kill --reason "unexpected changes in production"

It raises the halt flag, denies the remediation roles every session, disables the scan rules, stops the running
missions and their waiting approvals, and revokes the approvers' Auth0 sessions. `aegis-local rearm` undoes what
can be undone.""",
    "rearm": """\
examples:
  aegis-local rearm --reason 'incident closed, see ticket 4711'""",
}
EXIT_STATUS = (
    "exit status: 0 done, 1 failed, 2 usage, 3 not logged in (or the token expired), 4 the token lacks the scope, "
    "5 refused (conflict)"
)


def _add(subparsers: Any, name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=f"{EXAMPLES[name]}\n\n{EXIT_STATUS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    return parser


def _add_paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, metavar="N", help="how many per page (1 to 100; default 25)")
    parser.add_argument("--next", metavar="CURSOR", help="the page after the one that printed this cursor")
    parser.add_argument("--all", action="store_true", help="follow every page")


def register(subparsers: Any) -> None:
    missions = _add(subparsers, "missions", "list the missions, newest first", cmd_missions)
    _add_paging(missions)
    missions.add_argument("--org-scan", metavar="ORG_SCAN_ID", help="one organization scan's accounts instead")
    missions.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_api_options(missions)

    show = _add(subparsers, "show", "show a mission: findings, changes with before and after, outcomes", cmd_show)
    show.add_argument("mission_id", metavar="MISSION_ID")
    show.add_argument("--json", action="store_true", help="print the mission and its report as JSON")
    show.add_argument("--html", metavar="FILE", help="also write the HTML diff report to FILE")
    add_api_options(show)

    findings = _add(subparsers, "findings", "the latest state of every CIS control, by control", cmd_findings)
    findings.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    findings.add_argument("--cis", choices=CIS_VERSIONS, help="the CIS benchmark version (default: the deployment's)")
    add_api_options(findings)

    trail = _add(subparsers, "audit", "read the audit trail of a mission, a change or an action", cmd_audit)
    trail.add_argument("words", nargs="*", metavar="[verify] MISSION_ID", help="a mission (same as --mission)")
    trail.add_argument("--mission", metavar="MISSION_ID", help="the records of this mission")
    trail.add_argument("--change", metavar="CHANGE_ID", help="the records of this change")
    trail.add_argument("--action", metavar="ACTION", help="the records of this action, e.g. approval.requested")
    trail.add_argument("--since", metavar="TIME", help="only records from this ISO 8601 time on")
    _add_paging(trail)
    trail.add_argument("--json", action="store_true", help="print the records (or the chain's verdict) as JSON")
    add_api_options(trail)
    tables = trail.add_argument_group("audit verify (reads the tables with your AWS credentials)")
    tables.add_argument("--audit-table", metavar="NAME", help=f"the Audit table (default: ${AUDIT_TABLE_ENV})")
    tables.add_argument("--missions-table", metavar="NAME", help=f"the Missions table (default: ${MISSIONS_TABLE_ENV})")
    tables.add_argument("--endpoint-url", metavar="URL", help=f"the local AWS endpoint (default: ${ENDPOINT_ENV})")
    tables.add_argument("--region", help="the stack's region (default: $AWS_REGION or $AWS_DEFAULT_REGION)")

    scan = _add(subparsers, "scan", "start a mission now: scan, plan and (unless a dry run) ask for approval", cmd_scan)
    scan.add_argument("--dry-run", action="store_true", help="scan and plan only: change nothing, ask nobody")
    scan.add_argument(
        "--organization", action="store_true", help="scan every account of the organization (one mission each)"
    )
    scan.add_argument("--region", action="append", metavar="REGION", help="scan this region (repeatable)")
    scan.add_argument("--check", action="append", metavar="CHECK_ID", help="run only this check (repeatable)")
    scan.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_api_options(scan)

    undo = _add(subparsers, "undo", "request the undo of an applied change", cmd_undo)
    undo.add_argument("change_id", metavar="CHANGE_ID")
    undo.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    add_api_options(undo)

    kill = _add(subparsers, "kill", "trigger the kill switch: halt AegisCloud now", cmd_kill)
    kill.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    kill.add_argument("--json", action="store_true", help="print the kill switch's report as JSON")
    add_api_options(kill)

    rearm = _add(subparsers, "rearm", "re-arm the kill switch: let AegisCloud run again", cmd_rearm)
    rearm.add_argument("--reason", required=True, help="why it is safe again (kept in the audit trail)")
    rearm.add_argument("--json", action="store_true", help="print the kill switch's report as JSON")
    add_api_options(rearm)
