"""JWT verification: only RS256 tokens signed by the key the provider's JWKS names by kid, for us, from our issuer,
within their lifetime."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import httpx
import pytest

from aegis_jwt.discovery import ProviderMetadata
from aegis_jwt.errors import TokenInvalid
from aegis_jwt.verify import JwksCache, TokenVerifier, require_authorized_party
from tests.support.provider_double import (
    AUDIENCE,
    CLIENT_ID,
    ISSUER,
    ProviderDouble,
    RsaKey,
    forge_hs256_with_public_key,
    forge_unsigned,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def provider(clock: Clock) -> ProviderDouble:
    return ProviderDouble(clock=clock)


@pytest.fixture
def verifier(provider: ProviderDouble, clock: Clock) -> TokenVerifier:
    metadata = ProviderMetadata.from_document(provider.discovery(), ISSUER)
    return TokenVerifier.for_provider(metadata, provider.client(), clock=clock, leeway=30)


def claims(clock: Clock, **overrides: object) -> dict[str, object]:
    now = int(clock())
    base: dict[str, object] = {"iss": ISSUER, "sub": "auth0|approver", "aud": AUDIENCE, "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_a_token_from_our_provider_for_our_audience_verifies(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    token = provider.signing_key.sign(claims(clock))
    assert verifier.verify(token, AUDIENCE)["sub"] == "auth0|approver"


def test_the_audience_may_be_a_list_in_the_token_and_in_the_expectation(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    token = provider.signing_key.sign(claims(clock, aud=[AUDIENCE, f"{ISSUER}userinfo"]))
    assert verifier.verify(token, AUDIENCE)["aud"] == [AUDIENCE, f"{ISSUER}userinfo"]
    assert verifier.verify(token, ["https://other.example/api", AUDIENCE])["sub"] == "auth0|approver"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"aud": "https://other.example/api"}, "audience"),
        ({"aud": ["https://other.example/api", "x"]}, "audience"),
        ({"iss": "https://evil.example/"}, "issuer"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"iat": None}, "iat"),
        ({"iss": None}, "iss"),
        ({"sub": None}, "sub"),
        ({"exp": "tomorrow"}, "exp"),
    ],
)
def test_wrong_or_missing_registered_claims_are_refused(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock, overrides: dict[str, object], reason: str
) -> None:
    token = provider.signing_key.sign(claims(clock, **overrides))
    with pytest.raises(TokenInvalid, match=f"(?i){reason}"):
        verifier.verify(token, AUDIENCE)


def test_expiry_and_issue_time_are_judged_by_the_injected_clock_with_leeway(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    token = provider.signing_key.sign(claims(clock))
    clock.now += 300 + 29
    assert verifier.verify(token, AUDIENCE)  # within the 30 s leeway
    clock.now += 2
    with pytest.raises(TokenInvalid, match="expired"):
        verifier.verify(token, AUDIENCE)
    future = provider.signing_key.sign(claims(clock, iat=int(clock.now) + 120, exp=int(clock.now) + 600))
    with pytest.raises(TokenInvalid, match="future"):
        verifier.verify(future, AUDIENCE)
    not_yet = provider.signing_key.sign(claims(clock, nbf=int(clock.now) + 120))
    with pytest.raises(TokenInvalid, match="not yet valid"):
        verifier.verify(not_yet, AUDIENCE)


def _signed_by_another_key_under_a_known_kid(provider: ProviderDouble, clock: Clock) -> str:
    return RsaKey.generate(kid=provider.signing_key.kid).sign(claims(clock))


def _alg_none(provider: ProviderDouble, clock: Clock) -> str:
    return forge_unsigned(claims(clock), provider.signing_key.kid)


def _hs256_signed_with_the_public_key_as_secret(provider: ProviderDouble, clock: Clock) -> str:
    # The classic confusion: the attacker knows the public key and uses it as an HMAC secret.
    return forge_hs256_with_public_key(claims(clock), provider.signing_key.kid, provider.signing_key.public_pem)


def _keys_named_in_the_token_header(provider: ProviderDouble, clock: Clock) -> str:
    # They are never used: only the JWKS names keys.
    attacker = RsaKey.generate()
    return attacker.sign(claims(clock), headers={"kid": provider.signing_key.kid, "jwk": attacker.public_jwk()})


@pytest.mark.parametrize(
    ("forge", "refusal"),
    [
        (_signed_by_another_key_under_a_known_kid, "Signature verification failed"),
        (_alg_none, "algorithm 'none'"),
        (_hs256_signed_with_the_public_key_as_secret, "algorithm 'HS256'"),
        (_keys_named_in_the_token_header, "JWKS"),
    ],
    ids=lambda case: case.__name__.lstrip("_") if callable(case) else None,
)
def test_a_forged_token_is_refused(
    provider: ProviderDouble,
    verifier: TokenVerifier,
    clock: Clock,
    forge: Callable[[ProviderDouble, Clock], str],
    refusal: str,
) -> None:
    with pytest.raises(TokenInvalid, match=refusal):
        verifier.verify(forge(provider, clock), AUDIENCE)


def jwks_fetches(provider: ProviderDouble) -> int:
    return len(provider.requests_to("/.well-known/jwks.json"))


def fetches_after_a_verified_token(provider: ProviderDouble, verifier: TokenVerifier, clock: Clock) -> int:
    """How many times the JWKS was fetched once the verifier has accepted a token of the current key."""
    verifier.verify(provider.signing_key.sign(claims(clock)), AUDIENCE)
    return jwks_fetches(provider)


def test_an_unknown_kid_refetches_the_jwks_once_then_uses_the_rotated_key(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    fetches = fetches_after_a_verified_token(provider, verifier, clock)
    rotated = provider.rotate()
    assert verifier.verify(rotated.sign(claims(clock)), AUDIENCE)
    assert jwks_fetches(provider) == fetches + 1
    verifier.verify(rotated.sign(claims(clock)), AUDIENCE)
    assert jwks_fetches(provider) == fetches + 1  # cached now


def test_a_kid_unknown_even_after_refetch_is_refused_after_exactly_one_refetch(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    fetches = fetches_after_a_verified_token(provider, verifier, clock)
    stranger = RsaKey.generate()
    with pytest.raises(TokenInvalid, match="kid names no key"):
        verifier.verify(stranger.sign(claims(clock)), AUDIENCE)
    assert jwks_fetches(provider) == fetches + 1


def test_the_jwks_cache_expires(provider: ProviderDouble, clock: Clock) -> None:
    cache = JwksCache(provider.discovery()["jwks_uri"], provider.client(), clock=clock, max_age=600)
    cache.key_for(provider.signing_key.kid)
    cache.key_for(provider.signing_key.kid)
    assert jwks_fetches(provider) == 1
    clock.now += 601
    cache.key_for(provider.signing_key.kid)
    assert jwks_fetches(provider) == 2


def test_non_rs256_keys_in_the_jwks_are_ignored(provider: ProviderDouble, clock: Clock) -> None:
    original = provider.signing_key.public_jwk

    def as_encryption_key() -> dict[str, object]:
        return {**original(), "use": "enc"}

    provider.signing_key.public_jwk = as_encryption_key  # type: ignore[method-assign]
    cache = JwksCache(provider.discovery()["jwks_uri"], provider.client(), clock=clock)
    with pytest.raises(TokenInvalid, match="kid names no key"):
        cache.key_for(provider.signing_key.kid)


def test_an_id_token_at_hash_is_checked_against_the_access_token(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    access_token = provider.signing_key.sign(claims(clock))
    digest = hashlib.sha256(access_token.encode()).digest()
    at_hash = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    id_token = provider.signing_key.sign(claims(clock, aud=CLIENT_ID, at_hash=at_hash))
    assert verifier.verify(id_token, CLIENT_ID, access_token=access_token)["at_hash"] == at_hash
    other_access_token = provider.signing_key.sign(claims(clock, jti="other"))
    with pytest.raises(TokenInvalid, match="at_hash"):
        verifier.verify(id_token, CLIENT_ID, access_token=other_access_token)


def test_garbage_is_refused_with_a_named_error(verifier: TokenVerifier) -> None:
    for garbage in ("", "not-a-jwt", "a.b.c", "x" * 20_000):
        with pytest.raises(TokenInvalid):
            verifier.verify(garbage, AUDIENCE)


# --- ID tokens for several audiences, and which client an access token was issued to -------------------------------
def test_an_id_token_for_us_alone_needs_no_azp(provider: ProviderDouble, verifier: TokenVerifier, clock: Clock) -> None:
    for aud in (CLIENT_ID, [CLIENT_ID], [CLIENT_ID, CLIENT_ID]):
        token = provider.signing_key.sign(claims(clock, aud=aud))
        assert verifier.verify_id_token(token, CLIENT_ID)["sub"] == "auth0|approver"


def test_an_id_token_for_several_audiences_must_name_us_in_azp(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    several = [CLIENT_ID, "another-client"]
    named = provider.signing_key.sign(claims(clock, aud=several, azp=CLIENT_ID))
    assert verifier.verify_id_token(named, CLIENT_ID)["azp"] == CLIENT_ID
    unnamed = provider.signing_key.sign(claims(clock, aud=several))
    with pytest.raises(TokenInvalid, match="several audiences names no azp"):
        verifier.verify_id_token(unnamed, CLIENT_ID)
    # The plain audience check alone would have taken both: it is the azp rule that refuses.
    assert verifier.verify(unnamed, CLIENT_ID)["aud"] == several


@pytest.mark.parametrize("aud", [CLIENT_ID, [CLIENT_ID, "another-client"]])
def test_an_id_token_whose_azp_is_another_client_is_refused(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock, aud: object
) -> None:
    token = provider.signing_key.sign(claims(clock, aud=aud, azp="another-client"))
    with pytest.raises(TokenInvalid, match="azp is another client"):
        verifier.verify_id_token(token, CLIENT_ID)


def test_an_id_token_is_still_verified_for_audience_and_at_hash(
    provider: ProviderDouble, verifier: TokenVerifier, clock: Clock
) -> None:
    with pytest.raises(TokenInvalid, match="audience"):
        verifier.verify_id_token(provider.signing_key.sign(claims(clock, aud="another-client")), CLIENT_ID)
    access_token = provider.signing_key.sign(claims(clock))
    with pytest.raises(TokenInvalid, match="at_hash"):
        verifier.verify_id_token(
            provider.signing_key.sign(claims(clock, aud=CLIENT_ID, at_hash="AAAAAAAAAAAAAAAAAAAAAA")),
            CLIENT_ID,
            access_token=access_token,
        )


@pytest.mark.parametrize(
    "named", [{"azp": CLIENT_ID}, {"client_id": CLIENT_ID}, {"azp": CLIENT_ID, "client_id": CLIENT_ID}]
)
def test_an_access_token_issued_to_the_client_names_it_in_azp_or_client_id(named: dict[str, str]) -> None:
    require_authorized_party({"sub": "auth0|approver", **named}, CLIENT_ID)


@pytest.mark.parametrize(
    ("named", "reason"),
    [
        ({}, "names no authorized party"),
        ({"azp": "another-client"}, "another client"),
        ({"client_id": "another-client"}, "another client"),
        ({"azp": CLIENT_ID, "client_id": "another-client"}, "another client"),
        ({"azp": "another-client", "client_id": CLIENT_ID}, "another client"),
        ({"azp": [CLIENT_ID]}, "another client"),
    ],
)
def test_an_access_token_of_another_client_or_of_none_is_refused(named: dict[str, object], reason: str) -> None:
    with pytest.raises(TokenInvalid, match=reason):
        require_authorized_party({"sub": "auth0|approver", **named}, CLIENT_ID)


def flaky_jwks_cache(
    provider: ProviderDouble, clock: Clock, failures: list[int | httpx.TransportError], waits: list[float]
) -> tuple[JwksCache, list[str]]:
    """A cache whose first JWKS fetches meet `failures` (a status, or no answer) before the provider answers; the
    waits between attempts go to `waits`, and every attempt to the returned list."""
    attempts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            attempts.append(request.url.path)
            if failures:
                failure = failures.pop(0)
                if isinstance(failure, httpx.TransportError):
                    raise failure
                return httpx.Response(failure, text="unavailable")
        return provider.transport().handle_request(request)

    http = httpx.Client(transport=httpx.MockTransport(handle), timeout=5)
    return JwksCache(provider.discovery()["jwks_uri"], http, clock=clock, sleep=waits.append), attempts


@pytest.mark.parametrize("failure", [500, 503, httpx.ReadTimeout("no answer"), httpx.ConnectError("refused")], ids=str)
def test_a_jwks_fetch_without_an_answer_is_sent_once_more_after_a_wait(
    provider: ProviderDouble, clock: Clock, failure: int | httpx.TransportError
) -> None:
    waits: list[float] = []
    cache, attempts = flaky_jwks_cache(provider, clock, [failure], waits)

    assert cache.key_for(provider.signing_key.kid)["kid"] == provider.signing_key.kid
    assert (len(attempts), waits) == (2, [1.0])


def test_a_jwks_still_without_an_answer_after_the_retry_is_refused_by_name(
    provider: ProviderDouble, clock: Clock
) -> None:
    waits: list[float] = []
    cache, attempts = flaky_jwks_cache(provider, clock, [503, 502], waits)

    with pytest.raises(TokenInvalid, match="JWKS answered HTTP 502"):
        cache.key_for(provider.signing_key.kid)
    assert (len(attempts), waits) == (2, [1.0])


def test_a_jwks_refusal_is_not_asked_again(provider: ProviderDouble, clock: Clock) -> None:
    waits: list[float] = []
    cache, attempts = flaky_jwks_cache(provider, clock, [404], waits)

    with pytest.raises(TokenInvalid, match="JWKS answered HTTP 404"):
        cache.key_for(provider.signing_key.kid)
    assert (len(attempts), waits) == (1, [])
