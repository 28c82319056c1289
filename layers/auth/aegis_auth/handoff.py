"""The sealed handoff: how an approval's token response travels from the approval function to the executor.

The approval function *seals* the token response: envelope encryption under the handoff KMS key with the encryption
context `{"execution_arn", "change_digest"}`, stored in the Handoff table with a TTL at the token's expiry. Step
Functions only ever sees the random `handoff_id`.

The executor *consumes* it exactly once: a conditional DeleteItem returns and removes the item in one step (a second
consumer gets HandoffAlreadyConsumed), then KMS decrypts the data key only under the encryption context the executor
expects (another execution or another change → HandoffContextMismatch). DeleteItem with `ReturnValues=ALL_OLD` is the
only call the executor's role may make on the table (an IAM condition on `dynamodb:ReturnValues`): no GetItem, no
delete that returns nothing. On its paths that end before consuming (the kill switch engaged, the
provider unusable) it *discards* the handoff with the same call, without opening it.

Handoffs nobody consumed are purged by the kill switch (`aegis_killswitch.handoffs`), which finds them through the
`EXECUTION_INDEX` global secondary index (`aegis_auth.handoff_table`): it projects the keys only (`handoff_id`,
`execution_arn`), so the purger never reads a ciphertext.

Why envelope encryption rather than KMS Encrypt of the token response itself: KMS Encrypt takes at most 4096 bytes
and a token response with an ID token and a Rich Authorization Request access token can exceed that. The data key
comes from KMS GenerateDataKey under the same encryption context, and the AES-256-GCM associated data binds the
ciphertext to that context and to its handoff id, so the key alone opens nothing else.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from aegis_auth.errors import (
    HandoffAlreadyConsumed,
    HandoffContextMismatch,
    HandoffCorrupt,
    HandoffError,
    HandoffExpired,
)
from aegis_auth.handoff_table import EXECUTION_ATTRIBUTE, HANDOFF_KEY

Clock = Callable[[], float]

KIND_APPROVAL = "approval"
SEALED_FORMAT = "kms-envelope-aes256gcm/v1"
_NONCE_BYTES = 12


def encryption_context(execution_arn: str, change_digest: str) -> dict[str, str]:
    """The KMS encryption context a handoff is sealed under and can only be opened with."""
    if not execution_arn or not change_digest:
        raise ValueError("execution_arn and change_digest are required")
    return {"execution_arn": execution_arn, "change_digest": change_digest}


def _associated_data(context: Mapping[str, str], handoff_id: str) -> bytes:
    return json.dumps({**context, "handoff_id": handoff_id}, sort_keys=True, separators=(",", ":")).encode()


def _as_bytes(value: Any) -> bytes:
    # The boto3 resource layer returns Binary attributes as boto3.dynamodb.types.Binary.
    raw = getattr(value, "value", value)
    if not isinstance(raw, bytes | bytearray):
        raise HandoffCorrupt("the stored handoff lacks a binary attribute")
    return bytes(raw)


def _expiry(item: Mapping[str, Any]) -> int:
    # DynamoDB numbers come back as Decimal; a missing expiry is treated as long past.
    value = item.get("expires_at", 0)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise HandoffCorrupt("the stored handoff's expiry is not a number")
    return int(value)


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name, "")
    if not isinstance(value, str):
        raise HandoffCorrupt(f"the stored handoff's {name} is not text")
    return value


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class OpenedHandoff:
    """A consumed handoff. `token_response` holds the provider's tokens: excluded from repr, never log it."""

    handoff_id: str
    execution_arn: str
    change_id: str
    change_digest: str
    approver_sub: str
    created_at: str
    expires_at: int
    token_response: dict[str, Any] = field(repr=False)


class HandoffStore:
    """Seal and consume handoffs in the Handoff table (`handoff_id` key, `expires_at` TTL)."""

    def __init__(self, table: Any, kms: Any, *, key_id: str | None = None, clock: Clock = time.time) -> None:
        self._table = table
        self._kms = kms
        self._key_id = key_id
        self._clock = clock

    # --- approval side --------------------------------------------------------------------------------------------
    def seal(
        self,
        token_response: Mapping[str, Any],
        *,
        execution_arn: str,
        change_id: str,
        change_digest: str,
        approver_sub: str,
        expires_at: int,
    ) -> str:
        """Encrypt and store `token_response`; return the new handoff id (32 hex characters)."""
        if not self._key_id:
            raise HandoffError("sealing needs the handoff KMS key id")
        if not change_id or not approver_sub:
            raise ValueError("change_id and approver_sub are required")
        now = self._clock()
        if int(expires_at) <= now:
            raise HandoffExpired("refusing to seal a token that has already expired")
        context = encryption_context(execution_arn, change_digest)
        handoff_id = uuid.uuid4().hex
        plaintext = json.dumps(dict(token_response), separators=(",", ":")).encode()
        data_key = self._kms.generate_data_key(KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=context)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key["Plaintext"]).encrypt(
            nonce, plaintext, _associated_data(context, handoff_id)
        )
        self._table.put_item(
            Item={
                "handoff_id": handoff_id,
                "kind": KIND_APPROVAL,
                "format": SEALED_FORMAT,
                "ciphertext": ciphertext,
                "encrypted_key": data_key["CiphertextBlob"],
                "execution_arn": execution_arn,
                "change_id": change_id,
                "change_digest": change_digest,
                "approver_sub": approver_sub,
                "created_at": datetime.fromtimestamp(now, UTC).isoformat(),
                "expires_at": int(expires_at),
            },
            ConditionExpression="attribute_not_exists(handoff_id)",
        )
        return handoff_id

    # --- executor side --------------------------------------------------------------------------------------------
    def consume(self, handoff_id: str, *, execution_arn: str, change_digest: str) -> OpenedHandoff:
        """Remove the handoff and open it, once. Raises HandoffAlreadyConsumed, HandoffContextMismatch,
        HandoffExpired or HandoffCorrupt; a handoff that fails any check is gone all the same (fail closed)."""
        expected = encryption_context(execution_arn, change_digest)
        if not isinstance(handoff_id, str) or not handoff_id:
            raise HandoffAlreadyConsumed("no handoff id given")
        try:
            item = self._table.delete_item(
                Key={"handoff_id": handoff_id},
                ConditionExpression="attribute_exists(handoff_id) AND #kind = :approval",
                ExpressionAttributeNames={"#kind": "kind"},
                ExpressionAttributeValues={":approval": KIND_APPROVAL},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise HandoffAlreadyConsumed("the handoff was already consumed or never existed") from None
            raise
        if not item:
            raise HandoffAlreadyConsumed("the handoff was already consumed or never existed")
        if item.get("format") != SEALED_FORMAT:
            raise HandoffCorrupt("the stored handoff has an unknown format")
        if item.get("execution_arn") != execution_arn or item.get("change_digest") != change_digest:
            raise HandoffContextMismatch("the handoff was sealed for another execution or change")
        expires_at = _expiry(item)
        if expires_at <= self._clock():
            raise HandoffExpired("the handoff's token has expired")
        change_id, approver_sub, created_at = (
            _text(item, name) for name in ("change_id", "approver_sub", "created_at")
        )
        token_response = self._open(item, expected, handoff_id)
        return OpenedHandoff(
            handoff_id=handoff_id,
            execution_arn=execution_arn,
            change_id=change_id,
            change_digest=change_digest,
            approver_sub=approver_sub,
            created_at=created_at,
            expires_at=expires_at,
            token_response=token_response,
        )

    def discard(self, handoff_id: str, *, execution_arn: str) -> bool:
        """Delete this execution's handoff unopened (the executor, on a path that ends before consuming it).

        True if a handoff was deleted; False if none was left (consumed, purged, expired, or of another execution).
        The call is the consume call, ReturnValues=ALL_OLD included, because that is the only DeleteItem the
        executor's role is allowed; what it returns is dropped here without being opened.
        """
        if not isinstance(handoff_id, str) or not handoff_id or not execution_arn:
            return False
        try:
            response = self._table.delete_item(
                Key={HANDOFF_KEY: handoff_id},
                ConditionExpression="attribute_exists(handoff_id) AND #kind = :approval AND #execution = :execution",
                ExpressionAttributeNames={"#kind": "kind", "#execution": EXECUTION_ATTRIBUTE},
                ExpressionAttributeValues={":approval": KIND_APPROVAL, ":execution": execution_arn},
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        deleted = bool(response.get("Attributes"))
        del response
        return deleted

    def _open(self, item: Mapping[str, Any], context: dict[str, str], handoff_id: str) -> dict[str, Any]:
        blob = _as_bytes(item.get("ciphertext"))
        if len(blob) <= _NONCE_BYTES:
            raise HandoffCorrupt("the stored ciphertext is truncated")
        try:
            data_key = self._kms.decrypt(
                CiphertextBlob=_as_bytes(item.get("encrypted_key")), EncryptionContext=context
            )["Plaintext"]
        except ClientError as exc:
            if _error_code(exc) in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise HandoffContextMismatch("KMS refused the handoff's key under the expected context") from None
            raise HandoffError(f"KMS could not open the handoff ({_error_code(exc) or 'error'})") from None
        try:
            plaintext = AESGCM(data_key).decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated_data(context, handoff_id)
            )
        except InvalidTag:
            raise HandoffContextMismatch("the handoff ciphertext does not belong to this context") from None
        try:
            token_response = json.loads(plaintext)
        except ValueError:
            raise HandoffCorrupt("the opened handoff is not JSON") from None
        if not isinstance(token_response, dict):
            raise HandoffCorrupt("the opened handoff is not a token response object")
        return token_response
