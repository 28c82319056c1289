"""The remediation catalogue: the only changes AegisCloud can ever propose or apply.

A closed pydantic discriminated union on `kind`. The agent builds members of it; the approval half shows them to a
human; the executor applies exactly the approved member. No free-form API call exists anywhere.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.catalogue.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis.catalogue.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.enable_account_public_access_block import EnableAccountPublicAccessBlock
from aegis.catalogue.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.catalogue.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.catalogue.forward import FORWARD_KINDS, ForwardChange
from aegis.catalogue.public_access_block import PublicAccessBlock
from aegis.catalogue.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.catalogue.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from aegis.catalogue.undo import Undo

ProposedChange = Annotated[ForwardChange | Undo, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(ProposedChange)

KINDS: dict[str, type[ChangeBase]] = {cls.model_fields["kind"].default: cls for cls in (*FORWARD_KINDS, Undo)}


class InvalidChange(ValueError):
    """Input that is not an exact member of the catalogue (unknown kind, extra field, forged id, widening)."""


def parse_change(data: Any) -> ChangeBase:
    """Validate untrusted input (a dict or JSON text) into a catalogue member."""
    try:
        if isinstance(data, str | bytes):
            return _ADAPTER.validate_json(data)
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidChange(f"not a valid ProposedChange: {where}: {first.get('msg')}") from None


def forward_target(change: ChangeBase) -> ChangeBase:
    """The forward change whose resource and remediation a change concerns: itself, or what an Undo undoes."""
    return change.original if isinstance(change, Undo) else change


def declared_actions() -> frozenset[str]:
    """Every IAM action any remediation kind declares: exactly what RemediationRole grants."""
    return frozenset(
        action for kind in FORWARD_KINDS for action in (*kind.APPLY_ACTIONS, *kind.READ_ACTIONS, *kind.UNDO_ACTIONS)
    )


__all__ = [
    "KINDS",
    "ChangeBase",
    "CreateMultiRegionTrail",
    "CreateVpcFlowLogs",
    "DetachPolicy",
    "EbsDefaultEncryption",
    "EnableAccountPublicAccessBlock",
    "EnableBucketPublicAccessBlock",
    "EnableEbsDefaultEncryption",
    "EnableKmsKeyRotation",
    "FlowLogDestination",
    "ForwardChange",
    "InvalidChange",
    "KeyRotation",
    "MultiRegionTrails",
    "PasswordPolicy",
    "PolicyAttachments",
    "ProposedChange",
    "PublicAccessBlock",
    "RevokeSecurityGroupRules",
    "SecurityGroupRule",
    "SecurityGroupRules",
    "StrengthenPasswordPolicy",
    "TrailSpec",
    "Undo",
    "VpcFlowLogs",
    "WideningChange",
    "declared_actions",
    "forward_target",
    "parse_change",
]
