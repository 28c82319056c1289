"""The notifier: tells the operator, through the stack's SNS topic, what the audit trail says they must know (a
mission waiting for approval, completed or failed, a change that failed or whose outcome is unknown, drift, the kill
switch, a scan that could not run). It reads the Audit table's stream, publishes identifiers only, and holds no
secret (see aegis_notifier.service)."""
