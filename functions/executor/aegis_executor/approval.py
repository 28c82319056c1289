"""Approve X, execute X: open the sealed approval once and prove it releases exactly this change.

The handoff is consumed (conditional delete, then KMS decrypt under the expected encryption context); the access
token inside is verified (RS256, key by kid, issuer, audience, expiry); its granted `authorization_details` must
carry this change's digest; and the approver named by the state machine, the handoff and the token must be one.
Any failure is `Executor.ApprovalInvalid` and the handoff is gone all the same: an approval is never opened twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from aegis.catalogue import ChangeBase
from aegis_auth.errors import HandoffError, TokenInvalid
from aegis_auth.handoff import HandoffStore
from aegis_auth.jwt_verify import TokenVerifier
from aegis_auth.rar import require_granted_digest
from aegis_executor.errors import ApprovalInvalid


@dataclass(frozen=True)
class VerifiedApproval:
    """An opened, verified approval. The token is a secret: excluded from repr, never logged or stored."""

    approver_sub: str
    handoff_id: str
    token_expires_at: int
    access_token: SecretStr = field(repr=False)


def open_approval(
    handoffs: HandoffStore,
    verifier: TokenVerifier,
    *,
    audience: str,
    execution_arn: str,
    change: ChangeBase,
    handoff_id: str,
    approver_sub: str,
    revocable: list[SecretStr],
) -> VerifiedApproval:
    """Consume and verify the approval of `change`. Raises ApprovalInvalid (nothing applied) on any mismatch.

    A refresh token found in the handoff is appended to `revocable` at once, before any check, so that the caller
    revokes it whether or not the approval turns out to be valid."""
    try:
        opened = handoffs.consume(handoff_id, execution_arn=execution_arn, change_digest=change.digest)
    except HandoffError as exc:
        raise ApprovalInvalid(f"handoff refused ({type(exc).__name__}): {exc}") from None
    token_response: dict[str, Any] = opened.token_response
    refresh_token = token_response.get("refresh_token")
    if isinstance(refresh_token, str) and refresh_token:
        revocable.append(SecretStr(refresh_token))
    try:
        if opened.change_id != change.change_id:
            raise ApprovalInvalid("the handoff was sealed for another change id")
        access_token = token_response.get("access_token")
        if not isinstance(access_token, str):
            raise ApprovalInvalid("the sealed token response holds no access token")
        try:
            claims = verifier.verify(access_token, audience)
            require_granted_digest(token_response, claims, change.digest)
        except TokenInvalid as exc:  # ApprovalMismatch is a TokenInvalid
            reason = f"the approval token does not release this change ({type(exc).__name__}): {exc}"
            raise ApprovalInvalid(reason) from None
        if not (claims["sub"] == opened.approver_sub == approver_sub):
            raise ApprovalInvalid("the approver of the token, the handoff and the request differ")
        return VerifiedApproval(
            approver_sub=claims["sub"],
            handoff_id=opened.handoff_id,
            token_expires_at=int(claims["exp"]),
            access_token=SecretStr(access_token),
        )
    finally:
        token_response.clear()
        del opened, token_response, refresh_token
