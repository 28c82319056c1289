"""OrgScanFunction: the organization-scan state machine's listing and summary steps."""
