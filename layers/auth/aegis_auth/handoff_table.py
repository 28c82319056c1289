"""The Handoff table's shape (template.yaml, HandoffTable), apart from the sealing code: the kill switch purges
handoffs and needs these names, but not the cryptography that sealing and opening load."""

from __future__ import annotations

# The table's key.
HANDOFF_KEY = "handoff_id"
# The attribute naming the execution a handoff was sealed for, and the keys-only global index on it.
EXECUTION_ATTRIBUTE = "execution_arn"
EXECUTION_INDEX = "by-execution"
