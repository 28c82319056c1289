"""`aegis-local login`'s parts: the token cache (a private file per issuer and audience, refused when others could
read it, expired or for another tenant) and the device-grant poll loop against a real HTTP server that answers as
the reference's error table says (authorization_pending, slow_down, expired_token, access_denied)."""

from __future__ import annotations

import base64
import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from aegis_local.cli.common import EXIT_AUTH, EXIT_FORBIDDEN, EXIT_OK
from aegis_local.cli.login import (
    DEVICE_CODE_GRANT,
    CachedToken,
    DeviceAuthorization,
    LoginDenied,
    LoginExpired,
    LoginSettings,
    NotLoggedIn,
    TokenCache,
    poll_for_token,
    provider_endpoints,
    start_device_authorization,
)
from aegis_local.cli.main import main
from tests.support.loopback_server import LoopbackServer, QuietHandler

AUDIENCE = "https://aegis.test/ops"


def settings_for(issuer: str, client_id: str | None = "aegis-cli") -> LoginSettings:
    return LoginSettings(issuer=issuer, audience=AUDIENCE, client_id=client_id)


def unsigned_token(claims: dict[str, Any]) -> str:
    """A JWT-shaped string: the cache and the CLI only read its claims for messages (the API verifies)."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


# ----------------------------------------------------------------------------------------------------------------
# the token cache


def cached(issuer: str = "https://tenant.test/", *, expires_in: float = 3600) -> CachedToken:
    return CachedToken(
        issuer=issuer,
        audience=AUDIENCE,
        access_token=unsigned_token({"sub": "auth0|someone"}),
        expires_at=time.time() + expires_in,
        scope="aegis:read aegis:audit",
    )


def test_the_cache_file_is_private_from_its_first_byte(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "cache" / "aegis-local")
    settings = settings_for("https://tenant.test/")
    path = cache.store(cached(), settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not list(path.parent.glob("*.tmp"))
    loaded = cache.load(settings)
    assert loaded.scopes == {"aegis:read", "aegis:audit"}
    assert loaded.subject == "auth0|someone"
    # The token is never in a repr or a message.
    assert loaded.access_token not in repr(loaded)


def test_a_cache_entry_is_keyed_by_issuer_and_audience(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    first, second = settings_for("https://one.test/"), settings_for("https://two.test/")
    cache.store(cached("https://one.test/"), first)
    assert cache.path(first) != cache.path(second)
    with pytest.raises(NotLoggedIn, match=r"not logged in to https://two\.test/"):
        cache.load(second)
    other_audience = LoginSettings(issuer="https://one.test/", audience="https://elsewhere.test/")
    with pytest.raises(NotLoggedIn, match="run `aegis-local login`"):
        cache.load(other_audience)


def test_a_cache_file_others_can_read_is_refused(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    settings = settings_for("https://tenant.test/")
    path = cache.store(cached(), settings)
    path.chmod(0o640)
    with pytest.raises(NotLoggedIn, match="open to other users"):
        cache.load(settings)


def test_an_expired_or_nearly_expired_token_asks_for_login(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    settings = settings_for("https://tenant.test/")
    cache.store(cached(expires_in=10), settings)  # inside the margin: it would expire mid-command
    with pytest.raises(NotLoggedIn, match=r"expired: run `aegis-local login`"):
        cache.load(settings)


def test_a_corrupt_or_foreign_cache_file_asks_for_login(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path)
    settings = settings_for("https://tenant.test/")
    path = cache.store(cached(), settings)
    path.write_text("{not json")
    with pytest.raises(NotLoggedIn, match="unreadable"):
        cache.load(settings)
    # A file copied from another tenant's entry does not pass for this one.
    path.write_text(cached("https://other.test/").model_dump_json())
    with pytest.raises(NotLoggedIn, match="another tenant"):
        cache.load(settings)


def test_logout_deletes_the_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = settings_for("https://tenant.test/")
    path = TokenCache().store(cached(), settings)
    assert path.parent == tmp_path / "aegis-local"
    assert main(["logout", "--issuer", "https://tenant.test", "--audience", AUDIENCE]) == EXIT_OK
    assert not path.exists()
    assert "Logged out" in capsys.readouterr().out
    assert main(["logout", "--issuer", "https://tenant.test/", "--audience", AUDIENCE]) == EXIT_OK
    assert "nothing to delete" in capsys.readouterr().out


def test_an_issuer_in_clear_text_off_loopback_is_refused(capsys: Any) -> None:
    code = main(["login", "--issuer", "http://tenant.test/", "--audience", AUDIENCE, "--client-id", "c"])
    assert code == 1
    assert "must use https" in capsys.readouterr().err


def test_missing_settings_name_the_option_and_the_variable(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    for name in ("AEGIS_ISSUER", "AEGIS_API_AUDIENCE", "AEGIS_CLI_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    assert main(["login"]) == 1
    assert "give --issuer (or set AEGIS_ISSUER" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------------------------
# the device grant, against a real server


class DeviceProvider:
    """An authorization server that plays a script of answers to the token polls, and records each poll."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]], *, expires_in: int = 900, interval: int = 1) -> None:
        self.answers = list(answers)
        self.polls: list[dict[str, list[str]]] = []
        self.device_requests: list[dict[str, list[str]]] = []
        self.expires_in = expires_in
        self.interval = interval
        self.lock = threading.Lock()
        provider = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    base = provider.issuer
                    self._send(200, {"issuer": base, "token_endpoint": base + "oauth/token"})
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                with provider.lock:
                    if self.path == "/oauth/device/code":
                        provider.device_requests.append(form)
                        self._send(200, provider.device_answer())
                        return
                    provider.polls.append(form)
                    status, body = provider.answers.pop(0) if provider.answers else (400, {"error": "invalid_grant"})
                self._send(status, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LoopbackServer(Handler)
        self.issuer = self.server.url + "/"

    def device_answer(self) -> dict[str, Any]:
        return {
            "device_code": "device-code-not-a-secret",
            "user_code": "ABCD-EFGH",
            "verification_uri": self.issuer + "activate",
            "verification_uri_complete": self.issuer + "activate?user_code=ABCD-EFGH",
            "expires_in": self.expires_in,
            "interval": self.interval,
        }


@pytest.fixture
def provider_factory() -> Iterator[Any]:
    made: list[DeviceProvider] = []

    def make(answers: list[tuple[int, dict[str, Any]]], **kwargs: Any) -> DeviceProvider:
        made.append(DeviceProvider(answers, **kwargs))
        return made[-1]

    yield make
    for provider in made:
        provider.server.close()


class FakeTime:
    """The poll loop's clock and sleep: sleeping advances the clock, so a test waits for nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def authorize(provider: DeviceProvider) -> tuple[httpx.Client, Any, LoginSettings, DeviceAuthorization]:
    http = httpx.Client(timeout=5)
    settings = settings_for(provider.issuer)
    endpoints = provider_endpoints(http, provider.issuer)
    authorization = start_device_authorization(http, endpoints, settings, ["openid", "aegis:read"])
    return http, endpoints, settings, authorization


PENDING = (403, {"error": "authorization_pending", "error_description": "User has yet to authorize device code."})
SUCCESS = (200, {"access_token": unsigned_token({"sub": "auth0|op"}), "token_type": "Bearer", "expires_in": 600})


def test_pending_then_success_waits_the_interval_before_every_poll(provider_factory: Any) -> None:
    provider = provider_factory([PENDING, PENDING, SUCCESS], interval=2)
    http, endpoints, settings, authorization = authorize(provider)
    # Discovery named no device endpoint: Auth0's fixed path was used, with the audience and scopes asked for.
    [device_request] = provider.device_requests
    assert device_request == {"client_id": ["aegis-cli"], "scope": ["openid aegis:read"], "audience": [AUDIENCE]}
    fake = FakeTime()
    body = poll_for_token(http, endpoints, settings, authorization, sleep=fake.sleep, clock=fake.clock)
    assert body["access_token"] == SUCCESS[1]["access_token"]
    assert fake.sleeps == [2, 2, 2]
    assert [poll["grant_type"] for poll in provider.polls] == [[DEVICE_CODE_GRANT]] * 3
    assert {poll["device_code"][0] for poll in provider.polls} == {"device-code-not-a-secret"}


def test_slow_down_adds_five_seconds_to_every_later_wait(provider_factory: Any) -> None:
    slow_down = (429, {"error": "slow_down", "error_description": "You are polling faster than allowed."})
    provider = provider_factory([slow_down, PENDING, SUCCESS], interval=1)
    http, endpoints, settings, authorization = authorize(provider)
    fake, told = FakeTime(), list[float]()
    poll_for_token(
        http, endpoints, settings, authorization, sleep=fake.sleep, clock=fake.clock, on_slow_down=told.append
    )
    assert fake.sleeps == [1, 6, 6]
    assert told == [6]


def test_expired_token_stops_with_the_login_hint(provider_factory: Any) -> None:
    expired = (403, {"error": "expired_token", "error_description": "User did not authorize in time."})
    provider = provider_factory([PENDING, expired])
    http, endpoints, settings, authorization = authorize(provider)
    fake = FakeTime()
    with pytest.raises(LoginExpired, match=r"ABCD-EFGH expired .*expired_token.*run `aegis-local login`") as caught:
        poll_for_token(http, endpoints, settings, authorization, sleep=fake.sleep, clock=fake.clock)
    assert caught.value.exit_code == EXIT_AUTH
    assert len(provider.polls) == 2


def test_access_denied_stops_with_its_own_exit_code(provider_factory: Any) -> None:
    denied = (403, {"error": "access_denied", "error_description": "User denied the request."})
    provider = provider_factory([denied])
    http, endpoints, settings, authorization = authorize(provider)
    fake = FakeTime()
    with pytest.raises(LoginDenied, match="denied") as caught:
        poll_for_token(http, endpoints, settings, authorization, sleep=fake.sleep, clock=fake.clock)
    assert caught.value.exit_code == EXIT_FORBIDDEN


def test_the_code_expires_on_the_client_side_too(provider_factory: Any) -> None:
    # A provider that keeps answering "pending": the loop stops once the code's lifetime is over, without a poll.
    provider = provider_factory([PENDING] * 10, expires_in=5, interval=2)
    http, endpoints, settings, authorization = authorize(provider)
    fake = FakeTime()
    with pytest.raises(LoginExpired):
        poll_for_token(http, endpoints, settings, authorization, sleep=fake.sleep, clock=fake.clock)
    assert len(provider.polls) == 2  # at 2 s and 4 s; at 6 s the code is over


def test_login_prints_the_code_caches_the_token_and_never_prints_it(
    provider_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    token = unsigned_token({"sub": "auth0|op", "scope": "aegis:read aegis:scan"})
    provider = provider_factory([(200, {"access_token": token, "token_type": "Bearer", "expires_in": 600})], interval=0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = main(["login", "--issuer", provider.issuer, "--audience", AUDIENCE, "--client-id", "aegis-cli"])
    output = capsys.readouterr()
    assert code == EXIT_OK, output.err
    assert f"open {provider.issuer}activate and enter the code ABCD-EFGH" in output.out
    assert "Logged in as auth0|op" in output.out
    assert "aegis:read aegis:scan" in output.out  # no `scope` in the answer: the token's claim says what it holds
    assert token not in output.out + output.err
    [poll] = provider.polls
    assert poll["client_id"] == ["aegis-cli"]
    stored = TokenCache().load(settings_for(provider.issuer))
    assert stored.access_token == token
    assert stored.expires_at == pytest.approx(time.time() + 600, abs=30)


def test_login_denied_exits_4(
    provider_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    provider = provider_factory([(403, {"error": "access_denied", "error_description": "no"})], interval=0)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = main(["login", "--issuer", provider.issuer, "--audience", AUDIENCE, "--client-id", "aegis-cli"])
    assert code == EXIT_FORBIDDEN
    assert "the sign-in was denied (access_denied: no)" in capsys.readouterr().err
    assert not (tmp_path / "aegis-local").exists() or not list((tmp_path / "aegis-local").iterdir())
