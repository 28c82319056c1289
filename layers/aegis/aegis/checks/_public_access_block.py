"""Shared by the two S3 Block Public Access checks (account and bucket): the change that turns on all four switches
of the block their finding's evidence records."""

from __future__ import annotations

from aegis.catalogue.kinds.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.states import PublicAccessBlock
from aegis.checks.base import change_for, evidence_withheld
from aegis.models import Finding, Risk


def propose_all_on[C: (EnableAccountPublicAccessBlock, EnableBucketPublicAccessBlock)](
    finding: Finding, kind: type[C], risk: Risk
) -> C | None:
    """From the block in the evidence (`public_access_block`) to all four switches on."""
    if evidence_withheld(finding, "public_access_block"):
        return None
    return change_for(
        finding,
        kind,
        risk=risk,
        before=PublicAccessBlock.model_validate(finding.evidence["public_access_block"]),
        after=PublicAccessBlock.all_on(),
    )
