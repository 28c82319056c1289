"""The org-scan function's named errors, spelled as Step Functions sees them (aegis.named_errors): the state
machine's ListAccounts catcher ends the execution as `OrgScan.ListFailed` with the Lambda error, whose `errorType`
is one of these names.

Messages are built from fixed texts and identifiers of AWS's own form only: the execution's input is chosen by
whoever may start it, and none of its values is echoed.
"""

from __future__ import annotations

from aegis.named_errors import ConfigurationError, NamedError


class OrgScanError(NamedError):
    """Base class of the errors the org-scan function raises to the state machine."""


class MalformedEvent(OrgScanError):
    """The task's payload is not `{action: list, org_scan_id, request}` or `{action: summarize, org_scan_id,
    failure?}` of the organization-scan state machine."""

    error_name = "OrgScan.MalformedEvent"


class Halted(OrgScanError):
    """The kill switch is engaged: no account is listed, so no account's scan starts."""

    error_name = "OrgScan.Halted"


class NotConfigured(OrgScanError):
    """ORGANIZATION_ID is empty: the deployment covers its own account only, and every member role this stack may
    assume is conditioned on an organization id it does not have."""

    error_name = "OrgScan.NotConfigured"


class WrongOrganization(OrgScanError):
    """The organization these credentials see is not ORGANIZATION_ID: the member roles would refuse every
    AssumeRole (aws:ResourceOrgID), so nothing is listed."""

    error_name = "OrgScan.WrongOrganization"


class UnknownOrgScan(OrgScanError):
    """The summary's organization scan has no item: it was never listed."""

    error_name = "OrgScan.UnknownOrgScan"


class InvalidSettings(OrgScanError, ConfigurationError):
    """An environment setting of the org-scan function is missing or invalid: the deployment is incomplete."""

    error_name = "OrgScan.InvalidSettings"


ERRORS: tuple[type[OrgScanError], ...] = (
    MalformedEvent,
    Halted,
    NotConfigured,
    WrongOrganization,
    UnknownOrgScan,
    InvalidSettings,
)
