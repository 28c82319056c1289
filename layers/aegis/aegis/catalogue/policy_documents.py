"""Policy documents (IAM policies and S3 bucket policies: one grammar) as the catalogue's kinds handle them: their
statements, a digest that names one document whatever its spelling, and the two edits the catalogue makes to them
(remove statements by index, put them back). The digest a check records at scan time is the one the executor
recomputes before it acts.

The digest is what a change carries instead of the document: the executor re-reads the document, compares digests,
and rebuilds the new document from what it read, so a change never holds a policy that could be replayed elsewhere.
Statements are addressed by their index in the document's `Statement` list (a lone statement object counts as a
list of one), which is stable as long as the digest is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from aegis.models import canonical_json, sha256_hex

SHA256_PATTERN = r"^[0-9a-f]{64}$"
# A change that removes statements carries them, so that undo puts back exactly what it took. Changes travel through
# Step Functions, whose every state holds at most 256 KiB for up to MaxChangesPerMission (100) changes, so what one
# change carries is bounded: about the size of the catalogue's other large changes (a password policy's two states).
CARRIED_STATEMENTS_MAX = 400  # bytes of canonical JSON


class StatementsTooLarge(ValueError):
    """Statements too large for one change to carry through a mission (CARRIED_STATEMENTS_MAX)."""


def assert_carriable(parts: Iterable[Any]) -> None:
    """StatementsTooLarge unless `parts` (the statements a change removes, and what undo needs with them) fit in
    CARRIED_STATEMENTS_MAX bytes of canonical JSON."""
    size = len(canonical_json(list(parts)).encode())
    if size > CARRIED_STATEMENTS_MAX:
        raise StatementsTooLarge(
            f"the statements to remove take {size} bytes; one change carries at most {CARRIED_STATEMENTS_MAX}"
        )


def parse_policy_document(raw: Any) -> dict[str, Any]:
    """A policy document as IAM returns it: a dict (botocore decodes it) or URL-encoded JSON text."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        parsed = json.loads(unquote(raw))
        if isinstance(parsed, dict):
            return parsed
    raise ValueError("policy document is neither a JSON object nor URL-encoded JSON")


def statements_of(document: Mapping[str, Any] | None) -> list[Any]:
    """The document's statements in order (none without a document); IAM and S3 accept one statement object in place
    of the list."""
    if not document:
        return []
    statements = document.get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def document_sha256(document: Mapping[str, Any]) -> str:
    """The SHA-256 of the document's canonical JSON: equal for equal documents, whatever whitespace or key order IAM
    kept from the text it was given, and whether a lone statement is written as an object or a list of one."""
    normal = {**document, "Statement": statements_of(document)} if "Statement" in document else dict(document)
    return sha256_hex(canonical_json(normal))


def frame_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """Everything in the document but its statements (Version, Id): what a document rebuilt from statements alone
    needs to be the same document again."""
    return {key: value for key, value in document.items() if key != "Statement"}


def without_statements(document: Mapping[str, Any], indices: Iterable[int]) -> dict[str, Any]:
    """The document with the statements at `indices` removed and everything else (Version, Id, the other statements
    in their order) kept."""
    removed = set(indices)
    kept = [statement for index, statement in enumerate(statements_of(document)) if index not in removed]
    return {**document, "Statement": kept}


def with_statements(document: Mapping[str, Any], statements: Mapping[int, Any]) -> dict[str, Any]:
    """The inverse of `without_statements`: `statements` (index in the full document -> statement) put back at
    their indices among the document's statements."""
    remaining = iter(statements_of(document))
    total = len(statements_of(document)) + len(statements)
    if any(not 0 <= index < total for index in statements):
        raise ValueError("a statement's index is outside the rebuilt document")
    rebuilt = [statements[index] if index in statements else next(remaining) for index in range(total)]
    return {**document, "Statement": rebuilt}


def same_statement(left: Any, right: Any) -> bool:
    return canonical_json(left) == canonical_json(right)


def policy_text(document: Mapping[str, Any]) -> str:
    """The document as the JSON text IAM's Put*Policy and CreatePolicyVersion and S3's PutBucketPolicy take: compact
    (both services limit a policy's size), keys in their order."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
