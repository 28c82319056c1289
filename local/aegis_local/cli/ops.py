"""Operate a running local stack from another shell: the commands an operator has besides the demo.

    aegis-local scan [--check CHECK_ID] [--dry-run]    put a scan request on the event bus (as EventBridge users do)
    aegis-local missions                                 every mission, newest first
    aegis-local show MISSION_ID [--json] [--html FILE]   the mission report (findings, changes, decisions, re-scan)
    aegis-local audit MISSION_ID [--json]                the mission's audit trail
    aegis-local kill --reason TEXT                       trigger the kill switch (KillSwitchFunction, direct invoke)
    aegis-local rearm --reason TEXT                      re-arm it
    aegis-local leak-audit [DIR] [--secrets-file FILE]   search a --dump-state directory, or the running stack

They find the stack through the state file `aegis-local up` writes while it runs (endpoints and physical ids, no
secret): `--state FILE`, else `$AEGIS_LOCAL_STATE`, else the default place for the stack name. The kill switch is
invoked directly, the IAM-authorised path; its function URL (Auth0 bearer tokens with the aegis:killswitch scope) is
what `up` prints for people with a token.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aegis_local.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, endpoint_session
from aegis_local.reporting.leak_audit import (
    LeakAuditResult,
    audit,
    audit_fingerprints,
    dynamodb_places,
    file_places,
    sqs_places,
    stepfunctions_places,
)

__all__ = [
    "STATE_ENV",
    "StackState",
    "StateFileError",
    "default_state_path",
    "register",
    "remove_state_file",
    "write_state_file",
]

STATE_ENV = "AEGIS_LOCAL_STATE"
STATE_DIR_ENV = "AEGIS_LOCAL_STATE_DIR"
DEFAULT_STACK_NAME = "aegis-local"
REQUESTED_BY = "aegis-local cli"
# How long `audit verify` waits for the chainer to link records written just before it runs.
CHAINER_GRACE_SECONDS = 5.0


class StateFileError(RuntimeError):
    """No running stack could be found; the message says how to start or point at one."""


# ----------------------------------------------------------------------------------------------------------------
# the state file


def default_state_path(stack_name: str = DEFAULT_STACK_NAME) -> Path:
    directory = os.environ.get(STATE_DIR_ENV) or str(Path(tempfile.gettempdir()) / f"aegis-local-{os.getuid()}")
    return Path(directory) / f"{stack_name}.json"


def write_state_file(description: Mapping[str, Any], path: Path | None = None) -> Path:
    """Record where a running stack is (`cli.up.describe_stack`'s output: endpoints and physical ids, no secret)."""
    target = path or default_state_path(str(description["stack_name"]))
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = {**description, "pid": os.getpid(), "written_at": datetime.now(UTC).isoformat()}
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    temporary.replace(target)
    return target


def remove_state_file(path: Path) -> None:
    """Remove the state file if this process wrote it (another `up` may have replaced it meanwhile)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if document.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StackState:
    """A running stack as its state file describes it, with boto3 access to its moto server."""

    def __init__(self, document: Mapping[str, Any], path: Path) -> None:
        self.document = dict(document)
        self.path = path

    @classmethod
    def load(cls, explicit: str | None = None) -> StackState:
        path = Path(explicit or os.environ.get(STATE_ENV) or default_state_path())
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StateFileError(
                f"no running stack: {path} does not exist (start one with `aegis-local up`, or give --state)"
            ) from None
        except (OSError, ValueError) as error:
            raise StateFileError(f"cannot read the state file {path}: {error}") from None
        pid = document.get("pid")
        if isinstance(pid, int) and not _alive(pid):
            raise StateFileError(f"the stack of {path} is gone (process {pid} ended); start `aegis-local up` again")
        return cls(document, path)

    @property
    def moto_url(self) -> str:
        return str(self.document["moto"])

    @property
    def region(self) -> str:
        return str(self.document["region"])

    def session(self) -> Any:
        return endpoint_session(self.moto_url, self.region)

    def table(self, logical_id: str) -> Any:
        # boto3 resources create their clients without Session.client: the endpoint must be given here too.
        resource = self.session().resource("dynamodb", endpoint_url=self.moto_url)
        return resource.Table(self.document["tables"][logical_id])

    def function(self, logical_id: str) -> str:
        return str(self.document["functions"][logical_id])

    def rule(self, logical_id: str) -> str:
        return str(self.document["rules"][logical_id])


# ----------------------------------------------------------------------------------------------------------------
# commands


def cmd_scan(args: argparse.Namespace) -> int:
    from aegis_agent.missions import mission_id_for_event

    state = StackState.load(args.state)
    events = state.session().client("events")
    rule = events.describe_rule(Name=state.rule("ScanRequestRule"))
    pattern = json.loads(rule.get("EventPattern") or "{}")
    detail_types = pattern.get("detail-type") or []
    if len(detail_types) != 1:
        raise StateFileError(f"the scan rule matches detail-types {detail_types}; cannot choose one")
    detail: dict[str, Any] = {"regions": args.region or [state.region], "dry_run": args.dry_run}
    if args.check:
        detail["checks"] = args.check
    entry: dict[str, Any] = {
        "Source": (pattern.get("source") or ["aegis.scan"])[0],
        "DetailType": detail_types[0],
        "Detail": json.dumps(detail),
    }
    if rule.get("EventBusName", "default") != "default":
        entry["EventBusName"] = rule["EventBusName"]
    answer = events.put_events(Entries=[entry])["Entries"][0]
    if "EventId" not in answer:
        why = f"{answer.get('ErrorCode')}: {answer.get('ErrorMessage')}"
        print(f"aegis-local scan: EventBridge refused the event: {why}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"event {answer['EventId']}: mission {mission_id_for_event(answer['EventId'])}")
    return EXIT_OK


def _missions(state: StackState) -> list[dict[str, Any]]:
    table = state.table("MissionsTable")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items += [item for item in page.get("Items", []) if "status" in item]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda item: str(item.get("created_at", "")), reverse=True)


def cmd_missions(args: argparse.Namespace) -> int:
    state = StackState.load(args.state)
    missions = _missions(state)
    if args.json:
        print(json.dumps(missions, default=str, sort_keys=True))
        return EXIT_OK
    if not missions:
        print("no missions yet (start one with `aegis-local scan`)")
    for item in missions:
        counts = item.get("counts") or {}
        print(
            f"{item['mission_id']}  {item.get('status')!s:<18} {item.get('created_at', '')}  "
            f"{counts.get('findings', '-')} findings, {counts.get('changes', '-')} changes"
            + ("  (dry run)" if item.get("dry_run") else "")
        )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from aegis_local.reporting.mission_report import MissionSources, assemble_report
    from aegis_local.reporting.report import render_html

    state = StackState.load(args.state)
    missions = state.table("MissionsTable")
    item = missions.get_item(Key={"mission_id": args.mission_id}, ConsistentRead=True).get("Item")
    if item is None or "status" not in item:
        print(f"aegis-local show: no mission {args.mission_id}", file=sys.stderr)
        return EXIT_FAILURE
    control = state.table("ControlTable").get_item(Key={"name": "halt"}, ConsistentRead=True).get("Item") or {}
    halted = bool(control.get("engaged")) and item.get("status") == "awaiting_approval" and not item.get("report_pages")
    sources = MissionSources(
        missions=missions,
        audit=state.table("AuditTable"),
        checkpoints=state.table("CheckpointsTable"),
        session_factory=state.session,
    )
    report = assemble_report(sources, args.mission_id, halted=halted)
    if args.html:
        Path(args.html).write_text(render_html(report), encoding="utf-8")
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=1))
    else:
        print(report.terminal_summary())
        if args.html:
            print(f"  HTML report: {args.html}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from aegis.audit import read_trail

    words = list(args.words)
    if len(words) == 2 and words[0] == "verify":
        return _verify_audit(args, words[1])
    if len(words) != 1:
        print("aegis-local audit: expected MISSION or `verify MISSION`", file=sys.stderr)
        return EXIT_USAGE
    args.mission_id = words[0]
    state = StackState.load(args.state)
    trail = sorted(read_trail(state.table("AuditTable"), args.mission_id), key=lambda item: str(item.get("seq")))
    if args.json:
        print(json.dumps(trail, default=str))
        return EXIT_OK
    if not trail:
        print(f"no audit items for {args.mission_id}")
    for item in trail:
        details = json.loads(item.get("details") or "{}")
        change = f" {details['change_id']}" if details.get("change_id") else ""
        who = f" {details['approver_sub']}" if details.get("approver_sub") else ""
        print(f"{item.get('at')}  {item.get('actor'):<10} {item.get('action'):<26} {item.get('outcome')}{change}{who}")
    return EXIT_OK


def _verify_audit(args: argparse.Namespace, mission_id: str) -> int:
    """Recompute the mission's hash chain; exit 1 naming the first record changed, removed, inserted or moved."""
    from aegis.audit_chain import verify_mission

    state = StackState.load(args.state)
    audit, missions = state.table("AuditTable"), state.table("MissionsTable")
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


def _kill_switch(args: argparse.Namespace, action: str) -> int:
    from aegis_local.scenario.driver import invoke_kill_switch

    state = StackState.load(args.state)
    report = invoke_kill_switch(
        state.session().client("lambda"), state.function("KillSwitchFunction"), action, args.reason, REQUESTED_BY
    )
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"kill switch {action}: halted={report.get('halted')} ok={report.get('ok')}")
        for step in report.get("steps", []):
            print(f"  {'ok  ' if step.get('ok') else 'FAIL'} {step.get('step')}: {step.get('reason')}")
    return EXIT_OK if report.get("ok") else EXIT_FAILURE


def cmd_kill(args: argparse.Namespace) -> int:
    return _kill_switch(args, "trigger")


def cmd_rearm(args: argparse.Namespace) -> int:
    return _kill_switch(args, "rearm")


def _secrets_file(path: str) -> list[str]:
    source = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        return [line.strip() for line in source if line.strip()]
    finally:
        if source is not sys.stdin:
            source.close()


def cmd_leak_audit(args: argparse.Namespace) -> int:
    from aegis_local.reporting.state_dump import FINGERPRINTS_FILE, read_fingerprints

    values = _secrets_file(args.secrets_file) if args.secrets_file else []
    if args.directory:
        directory = Path(args.directory)
        if not directory.is_dir():
            print(f"aegis-local leak-audit: {directory} is not a directory", file=sys.stderr)
            return EXIT_USAGE
        fingerprints_path = Path(args.fingerprints) if args.fingerprints else directory / FINGERPRINTS_FILE
        fingerprints = read_fingerprints(fingerprints_path) if fingerprints_path.is_file() else {}
        places = [
            place for place in file_places([directory], root=directory) if place[0] != f"file:{FINGERPRINTS_FILE}"
        ]
        results = []
        if fingerprints:
            results.append(audit_fingerprints(fingerprints, places))
        if values:
            results.append(audit(values, places))
        if not results:
            print(
                f"aegis-local leak-audit: nothing to search for: no {FINGERPRINTS_FILE} in {directory}, "
                "and no --secrets-file",
                file=sys.stderr,
            )
            return EXIT_USAGE
        result = _merge(results)
    else:
        state = StackState.load(args.state)
        session = state.session()
        values += _stack_secrets(session)
        result = audit(values, [*dynamodb_places(session), *stepfunctions_places(session), *sqs_places(session)])
    print(result.summary())
    for kind, count in result.places.items():
        print(f"  {count} {kind}")
    for hit in result.hits:
        print(f"  LEAK: secret {hit.fingerprint}… found in {hit.place}")
    return EXIT_OK if result.clean else EXIT_FAILURE


def _stack_secrets(session: Any) -> list[str]:
    """The client secrets the stack holds in its Secrets Manager: the one kind of secret the local side can read."""
    client = session.client("secretsmanager")
    values = []
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page.get("SecretList", []):
            value = client.get_secret_value(SecretId=secret["ARN"]).get("SecretString")
            if value:
                values.append(value)
    return values


def _merge(results: list[LeakAuditResult]) -> LeakAuditResult:
    first = results[0]
    return first.model_copy(
        update={
            "values_searched": sum(r.values_searched for r in results),
            "hits": [hit for r in results for hit in r.hits],
        }
    )


# ----------------------------------------------------------------------------------------------------------------
# the parsers


def _run(command: Any) -> Any:
    def guarded(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except StateFileError as error:
            print(f"aegis-local {args.command}: {error}", file=sys.stderr)
            return EXIT_FAILURE

    return guarded


def register(subparsers: Any) -> None:
    def add(name: str, help_text: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("--state", metavar="FILE", help=f"state file of the running stack (${STATE_ENV})")
        parser.set_defaults(handler=_run(handler))
        return parser

    scan = add("scan", "start a mission: put a scan request on the running stack's event bus", cmd_scan)
    scan.add_argument("--check", action="append", metavar="CHECK_ID", help="scan only these checks (repeatable)")
    scan.add_argument("--region", action="append", metavar="REGION", help="regions to scan (default: the stack's)")
    scan.add_argument("--dry-run", action="store_true", help="plan only: request no approval")

    missions = add("missions", "list the missions of the running stack", cmd_missions)
    missions.add_argument("--json", action="store_true")

    show = add("show", "a mission's report", cmd_show)
    show.add_argument("mission_id")
    show.add_argument("--json", action="store_true", help="print the report as JSON")
    show.add_argument("--html", metavar="FILE", help="also write the HTML report to FILE")

    trail = add("audit", "a mission's audit trail; `audit verify MISSION` checks its hash chain", cmd_audit)
    trail.add_argument("words", nargs="+", metavar="[verify] MISSION")
    trail.add_argument("--json", action="store_true")

    kill = add("kill", "trigger the kill switch of the running stack", cmd_kill)
    kill.add_argument("--reason", default="triggered from aegis-local", help="recorded in the audit trail")
    kill.add_argument("--json", action="store_true")

    rearm = add("rearm", "re-arm the kill switch of the running stack", cmd_rearm)
    rearm.add_argument("--reason", required=True, help="why it is safe again (recorded in the audit trail)")
    rearm.add_argument("--json", action="store_true")

    leak = add("leak-audit", "search a --dump-state directory (or the running stack) for secrets", cmd_leak_audit)
    leak.add_argument("directory", nargs="?", help="a --dump-state directory (default: the running stack)")
    leak.add_argument("--secrets-file", metavar="FILE", help="values to search for, one per line ('-': stdin)")
    leak.add_argument(
        "--fingerprints", metavar="FILE", help="SHA-256 fingerprints (default: DIR/issued-secrets.sha256)"
    )
