"""A scripted OpenID provider behind httpx.MockTransport, for wire-level edge cases the Auth0 emulator does not
produce on demand (400 slow_down without Retry-After, HTTP-date Retry-After, a lost answer, forged tokens).

It signs real RS256 JWTs with real RSA keys and serves discovery and JWKS like any provider; the token and
backchannel endpoints answer from a script of responses, and every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ISSUER = "https://idp.example.test/"
CLIENT_ID = "aegis-test-client"
AUDIENCE = "https://aegis.example.test/api"


_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_POOL_SIZE = 8
_draws = itertools.count()


def _next_pooled_key() -> rsa.RSAPrivateKey:
    index = next(_draws) % _KEY_POOL_SIZE
    while len(_KEY_POOL) <= index:
        _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEY_POOL[index]


def b64url_json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class RsaKey:
    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str | None = None) -> RsaKey:
        """A fresh kid on a key from a small pool: 2048-bit generation costs ~0.1 s, and no test uses more than a
        few keys, so consecutive draws are always distinct keys."""
        return cls(kid or uuid.uuid4().hex[:16], _next_pooled_key())

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
        # Signed with `cryptography` directly: python-jose re-parses (and re-validates) the PEM on every call.
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid, **(headers or {})}
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
        signature = self.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@dataclass
class Recorded:
    method: str
    path: str
    form: dict[str, str]
    headers: dict[str, str]
    at: float


Reply = tuple[int, Any, dict[str, str]]
Script = Callable[..., Reply]


class ProviderDouble:
    def __init__(self, *, issuer: str = ISSUER, clock: Callable[[], float] = time.time) -> None:
        self.issuer = issuer
        self.clock = clock
        self.keys = [RsaKey.generate()]
        self.requests: list[Recorded] = []
        self.token_script: deque[Reply | Script | Exception] = deque()
        self.backchannel_script: deque[Reply | Script | Exception] = deque()
        self.discovery_overrides: dict[str, Any] = {}
        self.discovery_outages = 0  # answer this many discovery requests with 503 first
        self.issued: set[str] = set()

    # --- what a provider publishes -------------------------------------------------------------------------------
    @property
    def signing_key(self) -> RsaKey:
        return self.keys[-1]

    def rotate(self) -> RsaKey:
        key = RsaKey.generate()
        self.keys.append(key)
        return key

    def discovery(self) -> dict[str, Any]:
        base = self.issuer.rstrip("/")
        document: dict[str, Any] = {
            "issuer": self.issuer,
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "backchannel_authentication_endpoint": f"{base}/bc-authorize",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "backchannel_token_delivery_modes_supported": ["poll"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["urn:openid:params:grant-type:ciba"],
        }
        document.update(self.discovery_overrides)
        return {k: v for k, v in document.items() if v is not None}

    # --- tokens ---------------------------------------------------------------------------------------------------
    def access_claims(self, sub: str, *, digest: str | None, details_type: str, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": [AUDIENCE, f"{self.issuer}userinfo"],
            "iat": now,
            "exp": now + 600,
            "scope": "openid",
            "azp": CLIENT_ID,
        }
        if digest is not None:
            claims["authorization_details"] = [
                {"type": details_type, "instruction": "x", "properties": {"digest": {"value": digest}}}
            ]
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token_response(
        self,
        sub: str,
        *,
        digest: str | None,
        details_type: str,
        key: RsaKey | None = None,
        with_id_token: bool = True,
        **claim_overrides: Any,
    ) -> dict[str, Any]:
        signer = key or self.signing_key
        access_token = signer.sign(self.access_claims(sub, digest=digest, details_type=details_type, **claim_overrides))
        response: dict[str, Any] = {"access_token": access_token, "token_type": "Bearer", "expires_in": 600}
        if with_id_token:
            now = int(self.clock())
            response["id_token"] = signer.sign(
                {"iss": self.issuer, "sub": sub, "aud": CLIENT_ID, "iat": now, "exp": now + 600}
            )
        if digest is not None:
            response["authorization_details"] = self.access_claims(sub, digest=digest, details_type=details_type)[
                "authorization_details"
            ]
        self.issued.update(v for k, v in response.items() if k.endswith("_token"))
        return response

    # --- the wire -------------------------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport(), timeout=5)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode() if request.content else ""
        record = Recorded(
            method=request.method,
            path=request.url.path,
            form=dict(parse_qsl(body)) if request.method == "POST" else {},
            headers={k.lower(): v for k, v in request.headers.items()},
            at=self.clock(),
        )
        self.requests.append(record)
        if record.path == "/.well-known/openid-configuration":
            if self.discovery_outages > 0:
                self.discovery_outages -= 1
                return httpx.Response(503, text="unavailable")
            return httpx.Response(200, json=self.discovery())
        if record.path == "/.well-known/jwks.json":
            return httpx.Response(200, json={"keys": [key.public_jwk() for key in self.keys]})
        if record.path == "/oauth/token":
            return self._scripted(self.token_script, record, request)
        if record.path == "/bc-authorize":
            if not self.backchannel_script:
                self.backchannel_script.append(
                    (200, {"auth_req_id": f"req-{uuid.uuid4().hex}", "expires_in": 300, "interval": 5}, {})
                )
            return self._scripted(self.backchannel_script, record, request)
        return httpx.Response(404, json={"error": "not_found"})

    def _scripted(
        self, script: deque[Reply | Script | Exception], record: Recorded, request: httpx.Request
    ) -> httpx.Response:
        if not script:
            raise AssertionError(f"unscripted request to {record.path}")
        step = script.popleft()
        if isinstance(step, Exception):
            if isinstance(step, httpx.TransportError):
                step.request = request
            raise step
        status, payload, headers = step(self, record) if callable(step) else step
        if isinstance(payload, str):
            return httpx.Response(status, text=payload, headers=headers)
        return httpx.Response(status, content=json.dumps(payload).encode(), headers=headers)


def oauth_error(status: int, error: str, headers: dict[str, str] | None = None) -> Reply:
    return (status, {"error": error, "error_description": f"{error} (scripted)"}, headers or {})


# --- forgeries ------------------------------------------------------------------------------------------------------
def forge_unsigned(claims: dict[str, Any], kid: str) -> str:
    """`alg: none`: no signature at all."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64url_json(claims)}."


def forge_hs256_with_public_key(claims: dict[str, Any], kid: str, public_pem: bytes) -> str:
    """HS256 keyed with the provider's public key PEM: valid HMAC, which a verifier trusting `alg` would accept."""
    signing_input = f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64url_json(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
