"""What every check shares: its metadata, the planning configuration, the module protocol and ARN conventions.

A check is a module with `METADATA`, `evaluate(inventory) -> list[Finding]` and
`propose(finding, config) -> ChangeBase | None`. `evaluate` only reads the inventory (read-only collectors);
`propose` is pure: it builds a catalogue member from the finding's evidence and the configuration, never calling AWS.

Every ARN a check builds is in the partition of the region it is about (`aegis.partitions`): `arn:aws-us-gov:` in
us-gov-west-1, `arn:aws-cn:` in cn-north-1, the commercial `aws` partition in us-east-1. A regional ARN's builder
takes the region and derives the partition from it; an ARN without a region (the account's root, a bucket) is told
its partition.

ARN conventions for findings that are about an account-wide setting rather than one resource (documented here so
that suppressions written against them stay valid):

- IAM-level and S3 account-level settings (password policy, root access keys, account Block Public Access) use the
  account's root principal ARN `arn:<partition>:iam::<account>:root` and IAM's home region of the partition
  (us-east-1 in `aws`, `aegis.partitions.home_region`), so their finding ids do not depend on which regions a scan
  covers.
- EBS encryption by default is a per-region setting governing every new volume:
  `arn:<partition>:ec2:<region>:<account>:volume/*`.
- "No multi-region trail" is about the account's trails: `arn:<partition>:cloudtrail:<region>:<account>:trail/*`, in
  the scan's home region (the first region scanned), where a new trail would be created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field, JsonValue, model_validator

from aegis.cis import DEFAULT_CIS_VERSION, CisVersion
from aegis.models import Finding, Frozen, Risk, Severity
from aegis.partitions import partition_of
from aegis.secrets_guard import SHAPES, WITHHELD, IdentifierShape, parse_path, walk_strings

if TYPE_CHECKING:
    from aegis.catalogue import ChangeBase
    from aegis.collectors import Inventory

EXEMPT_TAG = "aegis:exempt"
DEFAULT_TRAIL_NAME = "aegis-multi-region-trail"

TrafficType = Literal["ALL", "ACCEPT", "REJECT"]


class CheckMetadata(Frozen):
    """What a check is, beside its code: the CIS controls it covers and what it can propose."""

    check_id: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)+$")
    title: str
    # The control's id in each CIS AWS Foundations Benchmark version: v3.0.0, v5.0.0, v7.0.0 (the current one), and
    # v6.0.0 only where it differs from v7.0.0. Ids not read from a published mapping (docs/CATALOGUE.md says which)
    # are listed in `cis_unsure` rather than passed off as certain.
    cis_v3: str
    cis_v5: str
    cis_v7: str
    cis_v6: str | None = None
    cis_unsure: tuple[CisVersion, ...] = ()
    severity: Severity
    rationale: str
    remediation_kind: str | None  # the default (safest) catalogue kind, or None: notify-only
    # Other kinds that fix the same finding, which a deployment may pin instead (REMEDIATION_CHOICES). A check with
    # alternatives defines `candidates(finding, config)`, every applicable fix, safest first.
    alternative_kinds: tuple[str, ...] = ()
    # What a human should do where no remediation is proposed (notify-only, or a fix that needs a destination the
    # deployment has not set): the console step and the AWS API call.
    manual_fix: str = ""
    resource_type: str
    services: tuple[str, ...]  # AWS services (boto3 client names) the check reads
    scope: Literal["region", "account"]  # evaluated once per scanned region, or once per account
    # Evidence paths (e.g. "attachments.users[]") holding resource names, and the AWS identifier shape each must fit
    # (`aegis.secrets_guard.SHAPES`). A name there that fits its shape is kept whatever it looks like: the change
    # built from the evidence needs it. Anything else in the evidence that looks like a secret is withheld.
    evidence_identifiers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_kind(self) -> CheckMetadata:
        from aegis.catalogue import KINDS

        for kind in (self.remediation_kind, *self.alternative_kinds):
            if kind is not None and kind not in KINDS:
                raise ValueError(f"{self.check_id}: unknown remediation kind {kind!r}")
        if self.alternative_kinds and self.remediation_kind is None:
            raise ValueError(f"{self.check_id}: alternative kinds without a default remediation kind")
        for path, shape in self.evidence_identifiers.items():
            if shape not in SHAPES or not parse_path(path):
                raise ValueError(f"{self.check_id}: evidence identifier {path!r} names no known shape")
        return self

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every kind that may fix this check's findings, the default first."""
        return () if self.remediation_kind is None else (self.remediation_kind, *self.alternative_kinds)

    def cis_id(self, version: CisVersion = DEFAULT_CIS_VERSION) -> str:
        """The control's id in `version` of the benchmark ("" where it has none)."""
        if version == "v6":
            return self.cis_v6 or self.cis_v7
        return {"v3": self.cis_v3, "v5": self.cis_v5, "v7": self.cis_v7}[version]

    def identifier_shapes(self) -> dict[str, IdentifierShape]:
        return {path: SHAPES[name] for path, name in self.evidence_identifiers.items()}

    def finding(
        self,
        *,
        resource_arn: str,
        account_id: str,
        region: str,
        evidence: Mapping[str, JsonValue],
        tags: Mapping[str, str] | None = None,
    ) -> Finding:
        """A finding of this check. Of the resource's tags only `aegis:exempt` is kept: tags are data, and the
        planner needs nothing else from them."""
        return Finding(
            check_id=self.check_id,
            title=self.title,
            cis_v3=self.cis_v3,
            cis_v5=self.cis_v5,
            cis_v6=self.cis_id("v6"),
            cis_v7=self.cis_v7,
            severity=self.severity,
            resource_arn=resource_arn,
            resource_type=self.resource_type,
            account_id=account_id,
            region=region,
            evidence=dict(evidence),
            remediation=self.remediation_kind,
            tags=kept_tags(tags or {}),
        )


class InvalidRemediationChoice(ValueError):
    """A pinned fix (REMEDIATION_CHOICES) naming an unknown check, or a kind that does not fix that check."""


class PlanConfig(Frozen):
    """Where remediations that create something must send their output, and which fix each check takes.

    An unset destination means notify-only for the checks that need it: the agent never invents a destination.
    `remediation_choices` pins a fix per check (check id -> kind, one of the check's `kinds`); a check not pinned
    gets its safest candidate."""

    trail_bucket: str | None = None
    trail_name: str = DEFAULT_TRAIL_NAME
    flow_logs_log_group: str | None = None
    flow_logs_role_arn: str | None = None
    flow_logs_traffic_type: TrafficType = "REJECT"
    config_bucket: str | None = None
    remediation_choices: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_choices(self) -> PlanConfig:
        assert_known_choices(self.remediation_choices)
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlanConfig:
        """From the agent's environment (TRAIL_BUCKET, FLOW_LOGS_LOG_GROUP, FLOW_LOGS_ROLE_ARN, CONFIG_BUCKET,
        REMEDIATION_CHOICES, and the optional FLOW_LOGS_TRAFFIC_TYPE); empty values mean unset.
        InvalidRemediationChoice for a malformed or unknown pinned fix."""
        env = os.environ if environ is None else environ
        traffic = env.get("FLOW_LOGS_TRAFFIC_TYPE") or "REJECT"
        return cls(
            trail_bucket=env.get("TRAIL_BUCKET") or None,
            flow_logs_log_group=env.get("FLOW_LOGS_LOG_GROUP") or None,
            flow_logs_role_arn=env.get("FLOW_LOGS_ROLE_ARN") or None,
            flow_logs_traffic_type=traffic,
            config_bucket=env.get("CONFIG_BUCKET") or None,
            remediation_choices=assert_known_choices(parse_remediation_choices(env.get("REMEDIATION_CHOICES") or "")),
        )


def parse_remediation_choices(text: str) -> dict[str, str]:
    """`check-id=kind,check-id=kind` as a mapping; InvalidRemediationChoice for a malformed pair or a check pinned
    twice."""
    choices: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        check_id, sep, kind = pair.partition("=")
        if not sep or not check_id.strip() or not kind.strip():
            raise InvalidRemediationChoice(f"REMEDIATION_CHOICES: {pair!r} is not check-id=kind")
        if check_id.strip() in choices:
            raise InvalidRemediationChoice(f"REMEDIATION_CHOICES: {check_id.strip()} is pinned twice")
        choices[check_id.strip()] = kind.strip()
    return choices


def assert_known_choices(choices: dict[str, str]) -> dict[str, str]:
    """`choices`, once every pinned kind is known to fix its check; InvalidRemediationChoice otherwise."""
    from aegis.checks import CHECKS  # the registry imports every check, and every check imports this module

    for check_id, kind in choices.items():
        check = CHECKS.get(check_id)
        if check is None:
            raise InvalidRemediationChoice(f"REMEDIATION_CHOICES: unknown check {check_id!r}")
        if kind not in check.METADATA.kinds:
            known = ", ".join(check.METADATA.kinds) or "none: it is notify-only"
            raise InvalidRemediationChoice(
                f"REMEDIATION_CHOICES: {kind!r} does not fix {check_id} (its fixes: {known})"
            )
    return choices


_RISK_ORDER = {Risk.LOW: 0, Risk.MEDIUM: 1, Risk.HIGH: 2}


def choose(finding: Finding, config: PlanConfig, candidates: Sequence[ChangeBase]) -> ChangeBase | None:
    """The fix a plan takes among a finding's candidates: the deployment's pinned kind for the check when it is
    among them, else the safest (the lowest risk; among equals, the check's order). None without a candidate."""
    pinned = config.remediation_choices.get(finding.check_id)
    for candidate in candidates:
        if candidate.kind == pinned:
            return candidate
    return min(candidates, key=lambda c: _RISK_ORDER[c.risk], default=None)


class CheckModule(Protocol):
    METADATA: CheckMetadata

    def evaluate(self, inventory: Inventory) -> list[Finding]: ...

    def propose(self, finding: Finding, config: PlanConfig) -> ChangeBase | None: ...


def candidates_of(check: CheckModule, finding: Finding, config: PlanConfig) -> list[ChangeBase]:
    """Every fix `check` can build for `finding`, safest first: its `candidates` where it has alternatives, else
    what `propose` builds (none for a notify-only finding)."""
    build = getattr(check, "candidates", None)
    if build is not None:
        return list(build(finding, config))
    change = check.propose(finding, config)
    return [] if change is None else [change]


def setting_findings(
    metadata: CheckMetadata,
    inventory: Inventory,
    *,
    compliant: bool,
    resource_arn: str,
    evidence: Mapping[str, JsonValue],
    region: str | None = None,
) -> list[Finding]:
    """What a check of one setting finds (an account's or a region's, e.g. its password policy): the setting counts
    as one resource, in `region` (default: the inventory's), and is one finding unless it is compliant."""
    where = region or inventory.region
    inventory.count(metadata.resource_type, 1, region=where)
    if compliant:
        return []
    return [
        metadata.finding(resource_arn=resource_arn, account_id=inventory.account_id, region=where, evidence=evidence)
    ]


def change_for[C: ChangeBase](finding: Finding, kind: type[C], **fields: Any) -> C:
    """A change of `kind` for a finding: about the finding's check, resource, account and region (a `resource_arn`
    in `fields` names another resource, e.g. the trail a change creates), with the kind's own `fields`."""
    about = {
        "check_id": finding.check_id,
        "resource_arn": finding.resource_arn,
        "account_id": finding.account_id,
        "region": finding.region,
    }
    return kind.propose(**(about | fields))


def as_list(value: Any) -> list[Any]:
    """A policy element that IAM accepts as one value or a list of them (Action, Resource, Statement...), as a list."""
    return value if isinstance(value, list) else [value]


def kept_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {EXEMPT_TAG: tags[EXEMPT_TAG]} if EXEMPT_TAG in tags else {}


def evidence_identifiers(check_id: str) -> dict[str, IdentifierShape]:
    """The identifier positions in the evidence of `check_id`'s findings (none for an unknown check)."""
    from aegis.checks import CHECKS  # the registry imports every check, and every check imports this module

    check = CHECKS.get(check_id)
    return check.METADATA.identifier_shapes() if check is not None else {}


def evidence_withheld(finding: Finding, *keys: str) -> bool:
    """True when the scan replaced a value the change is built from (the evidence under `keys`, or all of it) by the
    withheld marker: a change built from it would carry the marker instead of the real value, so there is nothing
    safe to propose. A value withheld elsewhere in the evidence (a policy's free text, say) stops nothing."""
    used = [finding.evidence.get(key) for key in keys] if keys else [finding.evidence]
    return any(text == WITHHELD for value in used for _, text in walk_strings(value))


def account_root_arn(partition: str, account_id: str) -> str:
    return f"arn:{partition}:iam::{account_id}:root"


def security_group_arn(region: str, account_id: str, group_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:security-group/{group_id}"


def vpc_arn(region: str, account_id: str, vpc_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:vpc/{vpc_id}"


def ebs_default_encryption_arn(region: str, account_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:volume/*"


def trails_arn(region: str, account_id: str) -> str:
    return f"arn:{partition_of(region)}:cloudtrail:{region}:{account_id}:trail/*"


def trail_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:{partition_of(region)}:cloudtrail:{region}:{account_id}:trail/{name}"


def bucket_arn(partition: str, name: str) -> str:
    return f"arn:{partition}:s3:::{name}"
