"""Secrets of each shape the project must never let through, generated at run time: tests plant them and prove they
appear nowhere they must not. Nothing key-shaped is committed; each call gives a new value."""

from __future__ import annotations

import secrets
import string

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_BASE64URL = string.ascii_letters + string.digits + "-_"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def jwt() -> str:
    """A JWT-shaped token: three base64url parts, the first two starting like encoded JSON objects."""
    return f"eyJhbGciOiJSUzI1NiJ9.eyJ{_random(_BASE64URL, 40)}.{_random(_BASE64URL, 86)}"


def access_key_id() -> str:
    return "AKIA" + _random(string.ascii_uppercase + string.digits, 16)


def secret_access_key() -> str:
    return _random(string.ascii_letters + string.digits + "/+", 40)


def bearer() -> str:
    return "Bearer " + secrets.token_urlsafe(24)


def high_entropy() -> str:
    return secrets.token_urlsafe(48)


def pem_private_key() -> str:
    """A real RSA private key in PEM, made now (about 50 ms)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()
