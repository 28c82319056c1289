"""Approve X, execute X: open the sealed approval once and prove it releases exactly this change.

The handoff is consumed (conditional delete, then KMS decrypt under the expected encryption context); the access
token inside is verified (RS256, key by kid, issuer, audience, expiry); it must have been issued to the approval
application (`azp` or `client_id`), so that only a token CIBA gave that client is accepted; its own
`authorization_details` claim must hold exactly one aegis-change object, carrying this change's digest; and the
approver named by the state machine, the handoff and the token must be one. A handoff carrying a refresh token is
refused: none may cross the hand-off, and this client could not revoke one issued to the approval application.
Any failure is `Executor.ApprovalInvalid` and the handoff is gone all the same: an approval is never opened twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from aegis.catalogue import ChangeBase
from aegis_auth.errors import HandoffError
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import require_granted_digest
from aegis_executor.errors import ApprovalInvalid
from aegis_jwt.errors import TokenInvalid
from aegis_jwt.verify import TokenVerifier, require_authorized_party


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
    approval_client_id: str,
    execution_arn: str,
    change: ChangeBase,
    handoff_id: str,
    approver_sub: str,
) -> VerifiedApproval:
    """Consume and verify the approval of `change`. Raises ApprovalInvalid (nothing applied) on any mismatch."""
    try:
        opened = handoffs.consume(handoff_id, execution_arn=execution_arn, change_digest=change.digest)
    except HandoffError as exc:
        raise ApprovalInvalid(f"handoff refused ({type(exc).__name__}): {exc}") from None
    token_response: dict[str, Any] = opened.token_response
    try:
        if opened.change_id != change.change_id:
            raise ApprovalInvalid("the handoff was sealed for another change id")
        if "refresh_token" in token_response:
            raise ApprovalInvalid(
                "the handoff carries a refresh token: the approval function never seals one, and the executor could"
                " not revoke a refresh token issued to another client"
            )
        access_token = token_response.get("access_token")
        if not isinstance(access_token, str):
            raise ApprovalInvalid("the sealed token response holds no access token")
        try:
            claims = verifier.verify(access_token, audience)
            require_authorized_party(claims, approval_client_id)
            require_granted_digest(claims, change.digest)
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
        del opened, token_response
