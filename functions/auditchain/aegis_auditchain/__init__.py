"""AuditChainFunction: links each new audit record into its mission's hash chain (aegis.audit_chain)."""
