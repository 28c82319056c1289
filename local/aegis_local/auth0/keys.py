"""RS256 signing keys generated at run time, their JWKS, and compact JWT signing/verification.

Signing and verification use `cryptography` directly so that tests can cross-check every token with an
independent library (python-jose).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

RSA_KEY_BITS = 2048


class TokenInvalid(Exception):
    """A presented JWT is malformed, badly signed, expired or meant for someone else."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _uint_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey
    kid: str
    public_jwk: dict[str, Any]

    @classmethod
    def generate(cls, common_name: str) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
        numbers = private_key.public_key().public_numbers()
        thumbprint_input = {"e": _uint_b64(numbers.e), "kty": "RSA", "n": _uint_b64(numbers.n)}
        # RFC 7638 thumbprint: stable and unique per key, like Auth0's opaque kids.
        kid = b64url_encode(hashlib.sha256(_canonical_json(thumbprint_input)).digest())
        certificate = _self_signed_certificate(private_key, common_name)
        der = certificate.public_bytes(serialization.Encoding.DER)
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": thumbprint_input["n"],
            "e": thumbprint_input["e"],
            "x5c": [base64.b64encode(der).decode("ascii")],
            "x5t": b64url_encode(hashlib.sha1(der).digest()),  # noqa: S324 -- x5t is SHA-1 by definition
        }
        return cls(private_key=private_key, kid=kid, public_jwk=jwk)

    def sign(self, claims: dict[str, Any], media_type: str = "JWT") -> str:
        header = {"alg": "RS256", "typ": media_type, "kid": self.kid}
        signing_input = f"{b64url_encode(_canonical_json(header))}.{b64url_encode(_canonical_json(claims))}"
        signature = self.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url_encode(signature)}"

    def verify_signature(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            self.private_key.public_key().verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


def _self_signed_certificate(private_key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(private_key, hashes.SHA256())
    )


@dataclass
class KeyRing:
    """The signing key plus the previous one, both published: tokens signed before a rotation keep
    verifying until the previous key is retired."""

    common_name: str
    _keys: list[SigningKey] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self._keys:
            self._keys.append(SigningKey.generate(self.common_name))

    @property
    def current(self) -> SigningKey:
        with self._lock:
            return self._keys[0]

    def rotate(self) -> str:
        """Sign with a fresh key from now on; keep publishing the one it replaces. Returns the new kid."""
        new_key = SigningKey.generate(self.common_name)
        with self._lock:
            self._keys = [new_key, self._keys[0]]
        return new_key.kid

    def retire(self, kid: str) -> None:
        with self._lock:
            if self._keys[0].kid == kid:
                raise ValueError("the current signing key cannot be retired; rotate first")
            remaining = [key for key in self._keys if key.kid != kid]
            if len(remaining) == len(self._keys):
                raise KeyError(kid)
            self._keys = remaining

    def kids(self) -> list[str]:
        with self._lock:
            return [key.kid for key in self._keys]

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [dict(key.public_jwk) for key in self._keys]}

    def sign(self, claims: dict[str, Any], media_type: str = "JWT") -> str:
        return self.current.sign(claims, media_type)

    def verify(self, token: str, *, issuer: str, now: float) -> dict[str, Any]:
        """Signature (key by kid, RS256 only), issuer and expiry; the caller checks the audience."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenInvalid("not a compact JWS")
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            signature = b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenInvalid("malformed token") from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenInvalid("malformed token")
        if header.get("alg") != "RS256":
            raise TokenInvalid("unexpected algorithm")
        with self._lock:
            key = next((k for k in self._keys if k.kid == header.get("kid")), None)
        if key is None:
            raise TokenInvalid("unknown signing key")
        if not key.verify_signature(f"{parts[0]}.{parts[1]}".encode("ascii"), signature):
            raise TokenInvalid("bad signature")
        if claims.get("iss") != issuer:
            raise TokenInvalid("wrong issuer")
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now:
            raise TokenInvalid("expired")
        return claims


def audiences(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []
