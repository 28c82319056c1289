"""The JWT verifier on generated tokens: random headers and claims, signed with the provider's key and with keys it
never published, and every required field missing in turn. It returns claims only for an RS256 token of the JWKS
key its kid names, from our issuer, for our audience, within its lifetime; everything else is TokenInvalid, whose
text carries no planted secret."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from aegis.secrets_guard import secret_kind
from aegis_jwt.discovery import ProviderMetadata
from aegis_jwt.errors import TokenInvalid
from aegis_jwt.verify import TokenVerifier
from tests.support.properties import json_values, secret_values
from tests.support.provider_double import AUDIENCE, ISSUER, ProviderDouble, RsaKey

NOW = 1_800_000_000.0
LEEWAY = 30
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")
REQUIRED_HEADERS = ("alg", "kid")


@dataclass(frozen=True)
class Keys:
    provider: ProviderDouble
    verifier: TokenVerifier
    published: RsaKey
    # Never in the JWKS: one under the published key's kid (a forgery), one under a kid of its own.
    same_kid: RsaKey
    own_kid: RsaKey


def _fresh_key(kid: str) -> RsaKey:
    return RsaKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def keys() -> Keys:
    """RSA keys made once for the module, at run time; the verifier reads the JWKS the provider double serves."""
    provider = ProviderDouble(clock=lambda: NOW)
    published = _fresh_key(uuid.uuid4().hex[:16])
    provider.keys = [published]
    metadata = ProviderMetadata.from_document(provider.discovery(), ISSUER)
    verifier = TokenVerifier.for_provider(metadata, provider.client(), clock=lambda: NOW, leeway=LEEWAY)
    return Keys(provider, verifier, published, _fresh_key(published.kid), _fresh_key(uuid.uuid4().hex[:16]))


def good_claims() -> dict[str, Any]:
    return {"iss": ISSUER, "sub": "auth0|approver", "aud": AUDIENCE, "iat": int(NOW), "exp": int(NOW) + 300}


def claims_or_invalid(keys: Keys, token: Any) -> dict[str, Any] | TokenInvalid:
    try:
        claims = keys.verifier.verify(token, AUDIENCE)
    except TokenInvalid as exc:
        refused = exc
    else:
        assert isinstance(claims, dict)
        return claims
    assert secret_kind(str(refused)) is None
    return refused


def assert_acceptable(claims: dict[str, Any]) -> None:
    """What a verified token always is: ours, for us, current, of a subject."""
    assert claims["iss"] == ISSUER
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert AUDIENCE in audiences
    assert isinstance(claims["sub"], str)
    assert claims["sub"]
    assert claims["exp"] + LEEWAY >= NOW
    assert claims["iat"] <= NOW + LEEWAY


# Claim values near the ones that matter: the right and wrong issuer and audience, times around now, any JSON.
claim_values = st.one_of(
    st.sampled_from([ISSUER, AUDIENCE, [AUDIENCE], [AUDIENCE, "x"], "", "auth0|approver", True, None]),
    st.integers(min_value=int(NOW) - 1000, max_value=int(NOW) + 1000),
    st.floats(min_value=NOW - 1000, max_value=NOW + 1000),
    json_values(max_leaves=4),
)
claims_strategy = st.dictionaries(
    st.one_of(st.sampled_from([*REQUIRED_CLAIMS, "nbf", "azp", "jti", "authorization_details"]), st.text(max_size=8)),
    claim_values,
    max_size=8,
).map(lambda drawn: {**good_claims(), **drawn})
header_values = st.one_of(st.sampled_from(["RS256", "HS256", "none", "ES256", "JWT", ""]), json_values(max_leaves=3))
headers_strategy = st.dictionaries(
    st.one_of(st.sampled_from([*REQUIRED_HEADERS, "typ", "jku", "jwk", "x5u", "crit", "cty"]), st.text(max_size=8)),
    header_values,
    max_size=4,
)


@given(claims=claims_strategy)
def test_random_claims_signed_by_the_published_key_verify_only_when_acceptable(
    keys: Keys, claims: dict[str, Any]
) -> None:
    outcome = claims_or_invalid(keys, keys.published.sign(claims))
    if not isinstance(outcome, TokenInvalid):
        assert_acceptable(outcome)


@given(claims=claims_strategy, under_the_published_kid=st.booleans())
def test_any_claims_signed_by_an_unpublished_key_are_refused(
    keys: Keys, claims: dict[str, Any], under_the_published_kid: bool
) -> None:
    signer = keys.same_kid if under_the_published_kid else keys.own_kid
    assert isinstance(claims_or_invalid(keys, signer.sign(claims)), TokenInvalid)


@given(headers=headers_strategy)
def test_random_headers_verify_only_as_rs256_under_the_published_kid(keys: Keys, headers: dict[str, Any]) -> None:
    outcome = claims_or_invalid(keys, keys.published.sign(good_claims(), headers=headers))
    if not isinstance(outcome, TokenInvalid):
        header = {"alg": "RS256", "kid": keys.published.kid, **headers}
        assert header["alg"] == "RS256"
        assert header["kid"] == keys.published.kid
        assert not {"jku", "jwk", "x5u"} & set(header)
        assert_acceptable(outcome)


@pytest.mark.parametrize("missing", REQUIRED_CLAIMS)
@given(claims=claims_strategy)
def test_a_token_without_a_required_claim_is_refused(keys: Keys, missing: str, claims: dict[str, Any]) -> None:
    claims.pop(missing)
    assert isinstance(claims_or_invalid(keys, keys.published.sign(claims)), TokenInvalid)


@pytest.mark.parametrize("missing", REQUIRED_HEADERS)
@given(headers=headers_strategy)
def test_a_token_without_a_required_header_is_refused(keys: Keys, missing: str, headers: dict[str, Any]) -> None:
    token = keys.published.sign(good_claims(), headers=headers)
    header_part, payload, signature = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    header.pop(missing, None)
    rewritten = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    assert isinstance(claims_or_invalid(keys, f"{rewritten}.{payload}.{signature}"), TokenInvalid)


@given(
    token=st.one_of(
        st.text(max_size=300),
        st.lists(
            st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=60),
            min_size=1,
            max_size=5,
        ).map(".".join),
        st.lists(st.binary(max_size=40), min_size=3, max_size=3).map(
            lambda parts: ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in parts)
        ),
        json_values(max_leaves=3),
    )
)
def test_anything_that_is_not_a_signed_jwt_is_refused(keys: Keys, token: Any) -> None:
    assert isinstance(claims_or_invalid(keys, token), TokenInvalid)


@given(
    secret=secret_values(),
    name=st.sampled_from([*REQUIRED_CLAIMS, "nbf", "azp", "jti", "at_hash"]),
    in_header=st.booleans(),
)
def test_a_planted_secret_never_reaches_the_error_text(keys: Keys, secret: str, name: str, in_header: bool) -> None:
    if in_header:
        token = keys.published.sign(good_claims(), headers={"alg" if name == "iss" else name: secret})
    else:
        token = keys.published.sign({**good_claims(), name: secret})
    outcome = claims_or_invalid(keys, token)
    if isinstance(outcome, TokenInvalid):
        assert secret not in str(outcome)
