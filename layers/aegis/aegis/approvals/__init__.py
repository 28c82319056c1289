"""Approvals at scale: who approves which changes, how changes are grouped into requests, and the Merkle tree that
binds every change of a batch to the one root its approver signs (issue 16)."""
