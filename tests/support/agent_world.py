"""A small world for the agent's tests: moto tables shaped as in the template, a state machine to start, findings
built directly, a scanner double that records its calls, and events as EventBridge delivers them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from aegis.approvals.policy import ApprovalPolicy, ApproverRouting
from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import ChangeResult, Finding, Risk, ScanError, Severity
from aegis_agent import wiring
from aegis_agent.report import MissionReport, build_report
from aegis_agent.scanner import ScanOutcome
from aegis_agent.service import AgentService
from aegis_agent.settings import AgentSettings
from aegis_agent.state import MissionRequest, Plan, PlanPolicy, Trigger, Verification, WithheldNote
from tests.support.stack import create_declared_table

ACCOUNT = "123456789012"
REGION = "us-east-1"
STATE_MACHINE_NAME = "aegis-mission"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}"
# Each table of the agent, by the name the tests use, and the template's logical id it is created as.
TABLES = {
    "Checkpoints": "CheckpointsTable",
    "Missions": "MissionsTable",
    "Audit": "AuditTable",
    "Control": "ControlTable",
}
BUCKET_CHECK = "s3-bucket-public"
EBS_CHECK = "ec2-ebs-default-encryption-off"
ROOT_KEYS_CHECK = "iam-root-access-keys"
# The operator who asks for an undo through the ops API (the token's `sub`).
OPERATOR_SUB = "auth0|65f0c1d2e3a4b5c6d7e8f901"
APPROVERS = ("auth0|approver-a", "auth0|approver-b")
# The template's defaults with two approvers: every change of the tests' worlds can be approved.
APPROVAL_POLICY = ApprovalPolicy(approver_subs=APPROVERS)


def report_of(
    findings: Sequence[Finding],
    plan: Plan,
    policy: PlanPolicy,
    *,
    scan_errors: Sequence[ScanError] = (),
    results: Sequence[ChangeResult] = (),
    verification: Sequence[Verification] = (),
) -> MissionReport:
    """The report of a scheduled mission that found `findings` and planned `plan` (by default with no scan error,
    result or re-scan): what a test of the report's dispositions and texts needs."""
    return build_report(
        request=MissionRequest(
            mission_id="m-0123456789abcdef0123",
            trigger=Trigger.SCHEDULED,
            regions=(REGION,),
            policy=policy,
            requested_at="2026-03-01T12:00:00+00:00",
        ),
        account_id=ACCOUNT,
        findings=findings,
        plan=plan,
        scan_errors=scan_errors,
        withheld=[],
        results=results,
        verification=verification,
        finished_at="2026-03-01T12:05:00+00:00",
        status="completed",
    )


def create_tables(session: boto3.Session) -> dict[str, Any]:
    """The agent's tables as template.yaml declares them, named aegis-<name>."""
    dynamodb = session.resource("dynamodb", region_name=REGION)
    return {name: create_declared_table(dynamodb, logical_id, f"aegis-{name}") for name, logical_id in TABLES.items()}


def create_state_machine(session: boto3.Session) -> Any:
    sfn = session.client("stepfunctions", region_name=REGION)
    sfn.create_state_machine(
        name=STATE_MACHINE_NAME,
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/aegis-mission-state-machine",
    )
    return sfn


def settings(**overrides: Any) -> AgentSettings:
    values: dict[str, Any] = {
        "checkpoints_table": "aegis-Checkpoints",
        "missions_table": "aegis-Missions",
        "audit_table": "aegis-Audit",
        "control_table": "aegis-Control",
        "state_machine_arn": STATE_MACHINE_ARN,
        "scan_regions": (REGION,),
        "max_changes_per_mission": 40,
        "max_share_per_resource_type": 1.0,
        "approval": APPROVAL_POLICY,
    }
    return AgentSettings(**(values | overrides))


def env_for(agent_settings: AgentSettings) -> dict[str, str]:
    """The environment variables the template would set for these settings."""
    return {
        "CHECKPOINTS_TABLE": agent_settings.checkpoints_table,
        "MISSIONS_TABLE": agent_settings.missions_table,
        "AUDIT_TABLE": agent_settings.audit_table,
        "CONTROL_TABLE": agent_settings.control_table,
        "STATE_MACHINE_ARN": agent_settings.state_machine_arn,
        "SCAN_REGIONS": ",".join(agent_settings.scan_regions),
        "DRY_RUN": "true" if agent_settings.dry_run else "false",
        "MAX_CHANGES_PER_MISSION": str(agent_settings.max_changes_per_mission),
        "MAX_SHARE_PER_RESOURCE_TYPE": str(agent_settings.max_share_per_resource_type),
        "SUPPRESSIONS": json.dumps([s.model_dump(mode="json") for s in agent_settings.suppressions]),
        "TRUST_EXEMPTION_TAGS": "true" if agent_settings.trust_exemption_tags else "false",
        "CHECKPOINT_TTL_DAYS": str(agent_settings.checkpoint_ttl_days),
    } | approval_env(agent_settings.approval or APPROVAL_POLICY)


def approval_env(policy: ApprovalPolicy) -> dict[str, str]:
    """The approval policy's environment as the template sets it (routing left empty: everyone approves)."""
    if policy.routing != ApproverRouting():
        raise ValueError("approval_env writes no routing; give the routing's JSON to the test's environment itself")

    def threshold(risk: Risk | None) -> str:
        return "none" if risk is None else risk.value

    return {
        "APPROVER_SUBS": ",".join(policy.approver_subs),
        "APPROVAL_BATCH_MAX_RISK": threshold(policy.batch_max_risk),
        "APPROVAL_BATCH_MAX_CHANGES": str(policy.batch_max_changes),
        "APPROVAL_TWO_PERSON_RISK": threshold(policy.two_person_risk),
        "APPROVER_ROUTING": "",
        "APPROVAL_REVIEW_URL_BASE": policy.review_url_base,
    }


def bucket_finding(name: str, tags: dict[str, str] | None = None, **evidence: Any) -> Finding:
    return Finding(
        check_id=BUCKET_CHECK,
        title="S3 bucket is public",
        cis_v3="2.1.4",
        cis_v5="2.1.4",
        cis_v6="3.1.4",
        cis_v7="3.1.4",
        severity=Severity.HIGH,
        resource_arn=f"arn:aws:s3:::{name}",
        resource_type="AWS::S3::Bucket",
        account_id=ACCOUNT,
        region=REGION,
        evidence={"public_acl": True, **evidence},
        remediation="enable-bucket-public-access-block",
        tags=tags or {},
    )


def ebs_finding(region: str = REGION) -> Finding:
    return Finding(
        check_id=EBS_CHECK,
        title="EBS encryption by default is off",
        cis_v3="2.2.1",
        cis_v5="5.1.1",
        cis_v6="6.1.1",
        cis_v7="6.1.1",
        severity=Severity.MEDIUM,
        resource_arn=f"arn:aws:ec2:{region}:{ACCOUNT}:volume/*",
        resource_type="AWS::EC2::EBSDefaultEncryption",
        account_id=ACCOUNT,
        region=region,
        evidence={"enabled": False},
        remediation="enable-ebs-default-encryption",
    )


def root_keys_finding() -> Finding:
    return Finding(
        check_id=ROOT_KEYS_CHECK,
        title="Root account has access keys",
        cis_v3="1.4",
        cis_v5="1.3",
        cis_v6="2.3",
        cis_v7="2.4",
        severity=Severity.CRITICAL,
        resource_arn=f"arn:aws:iam::{ACCOUNT}:root",
        resource_type="AWS::IAM::Root",
        account_id=ACCOUNT,
        region=REGION,
        evidence={"access_keys_present": True},
        remediation=None,
    )


def propose(finding: Finding) -> ChangeBase | None:
    """What the real checks would propose for these findings, built the same way (catalogue `propose`)."""
    common = {
        "check_id": finding.check_id,
        "resource_arn": finding.resource_arn,
        "account_id": finding.account_id,
        "region": finding.region,
    }
    if finding.check_id == BUCKET_CHECK:
        return EnableBucketPublicAccessBlock.propose(
            before=PublicAccessBlock(configured=False), after=PublicAccessBlock.all_on(), risk=Risk.MEDIUM, **common
        )
    if finding.check_id == EBS_CHECK:
        return EnableEbsDefaultEncryption.propose(
            before=EbsDefaultEncryption(enabled=False),
            after=EbsDefaultEncryption(enabled=True),
            risk=Risk.LOW,
            **common,
        )
    return None


@dataclass
class FakeScanner:
    """Returns the findings it is given; after `fix(...)`, later scans no longer report those resources."""

    findings: list[Finding]
    errors: list[ScanError] = field(default_factory=list)
    withheld: list[WithheldNote] = field(default_factory=list)
    resource_counts: dict[str, int] = field(default_factory=dict)
    proposer: Callable[[Finding], ChangeBase | None] = propose
    fail_with: BaseException | None = None
    calls: list[tuple[tuple[str, ...], tuple[str, ...] | None]] = field(default_factory=list)
    fixed: set[str] = field(default_factory=set)

    def scan(self, regions: Sequence[str], check_ids: Sequence[str] | None) -> ScanOutcome:
        self.calls.append((tuple(regions), tuple(check_ids) if check_ids else None))
        if self.fail_with is not None:
            raise self.fail_with
        findings = [
            f
            for f in self.findings
            if f.resource_arn not in self.fixed and (check_ids is None or f.check_id in check_ids)
        ]
        return ScanOutcome(
            account_id=ACCOUNT,
            findings=findings,
            errors=list(self.errors),
            withheld=list(self.withheld),
            api_calls=3 * len(regions),
            resource_counts=dict(self.resource_counts),
        )

    def propose(self, finding: Finding) -> ChangeBase | None:
        return self.proposer(finding)

    def known_check_ids(self) -> frozenset[str]:
        return frozenset({BUCKET_CHECK, EBS_CHECK, ROOT_KEYS_CHECK})

    def fix(self, *resource_arns: str) -> None:
        self.fixed.update(resource_arns)


class Clock:
    """A clock the test moves; missions record its times."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def build_service(
    session: boto3.Session, scanner: Any, agent_settings: AgentSettings | None = None, clock: Any = None
) -> AgentService:
    """A fresh service: new saver, serializer and compiled graph, as a new Lambda container would build them (the
    function's own wiring, on the test's session and scanner)."""
    return wiring.build_service(
        scanner=scanner, settings=agent_settings or settings(), session=session, clock=clock or Clock()
    )


def _event(
    event_id: str,
    detail_type: str,
    source: str,
    resources: list[str],
    detail: Any,
    event_time: str = "2026-03-01T12:00:00Z",
) -> dict[str, Any]:
    """An event of the account and region as EventBridge delivers it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": event_time,
        "region": REGION,
        "resources": resources,
        "detail": detail,
    }


def scheduled_event(event_id: str = "7bf73129-1428-4cd3-a780-95db273d1602") -> dict[str, Any]:
    schedule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/aegis-schedule"
    return _event(event_id, "Scheduled Event", "aws.events", [schedule], {})


def scan_event(event_id: str = "0d5e0b3a-5a1c-4f55-9a57-2b1f3f5c9a10", **detail: Any) -> dict[str, Any]:
    return _event(event_id, "AegisCloud Scan Requested", "aegis.scan", [], detail)


def undo_event(change_id: str, event_id: str = "undo-event-1", requested_by: str = OPERATOR_SUB) -> dict[str, Any]:
    """The ops API's `Undo Requested` event for an applied change, an hour after the scheduled mission applied it."""
    detail = {"change_id": change_id, "requested_by": requested_by}
    return _event(event_id, "Undo Requested", "aegis.undo", [], detail, event_time="2026-03-01T13:00:00Z")


def all_items(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {}
    while True:
        page = table.scan(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def executions(sfn: Any) -> list[dict[str, Any]]:
    return list(sfn.list_executions(stateMachineArn=STATE_MACHINE_ARN)["executions"])


def approved(change_ids: Sequence[str], outcome: str = "applied") -> list[dict[str, Any]]:
    return [{"change_id": c, "decision": "approved", "outcome": outcome, "reason": ""} for c in change_ids]


def iter_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from iter_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_strings(item)


def raw_text(*tables: Any) -> str:
    """Every item of the tables as text, deserializing nothing: binary attributes as raw bytes (latin-1) and
    base64, so a planted value is found wherever it was stored."""

    def default(value: Any) -> str:
        raw = getattr(value, "value", None)
        if isinstance(raw, bytes | bytearray):
            return base64.b64encode(raw).decode() + " " + bytes(raw).decode("latin-1")
        return str(value)

    return json.dumps([all_items(table) for table in tables], default=default, ensure_ascii=False)


@dataclass
class LambdaContext:
    aws_request_id: str = "5f0d9c8e-1b2a-4c3d-8e9f-0a1b2c3d4e5f"
    function_name: str = "aegis-agent-scan"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aegis-agent-scan"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


POWERTOOLS_ENV = {
    "POWERTOOLS_SERVICE_NAME": "aegis-agent",
    "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
