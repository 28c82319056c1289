"""The local console server: the build's files and a config.json for the running stack, every response with the
CSP and security headers; nothing outside the build (no traversal, no dot file), and no config before the stack is
known."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aegis_local.console.server import (
    CONSOLE_CLIENT_ID,
    ConsoleRuntimeConfig,
    ConsoleServer,
    content_security_policy,
    origin_of,
)

ISSUER = "http://127.0.0.1:4100/"
API_URL = "http://127.0.0.1:4200"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    build = tmp_path / "dist"
    build.mkdir()
    (build / "index.html").write_text("<!doctype html><title>console</title>", encoding="utf-8")
    (build / "app.js").write_text("export {};", encoding="utf-8")
    (build / ".inputs-sha256").write_text("stamp", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("not part of the build", encoding="utf-8")
    return build


@pytest.fixture
def server(dist: Path) -> Iterator[ConsoleServer]:
    with ConsoleServer(dist) as running:
        yield running


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def configured(server: ConsoleServer) -> ConsoleRuntimeConfig:
    config = ConsoleRuntimeConfig(
        issuer=ISSUER, client_id=CONSOLE_CLIENT_ID, audience="https://aegis.local/ops", api_url=API_URL
    )
    server.configure(config)
    return config


def test_the_page_and_its_script_come_with_the_strict_csp(server: ConsoleServer) -> None:
    configured(server)
    status, headers, body = fetch(server.url)
    assert status == 200
    assert body.startswith(b"<!doctype html>")
    assert headers["Content-Type"].startswith("text/html")
    csp = headers["Content-Security-Policy"]
    assert csp == content_security_policy(ISSUER, API_URL)
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "connect-src 'self' http://127.0.0.1:4100 http://127.0.0.1:4200;" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    status, headers, _ = fetch(server.url + "app.js")
    assert status == 200
    assert headers["Content-Type"].startswith("text/javascript")


def test_config_json_describes_the_stack_and_waits_for_it(server: ConsoleServer) -> None:
    status, _, _ = fetch(server.url + "config.json")
    assert status == 503
    config = configured(server)
    status, headers, body = fetch(server.url + "config.json")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {
        "issuer": ISSUER,
        "clientId": CONSOLE_CLIENT_ID,
        "audience": config.audience,
        "apiUrl": API_URL,
        "myAccountAudience": f"{ISSUER}me/",
    }


@pytest.mark.parametrize("path", ["../outside.txt", "%2e%2e/outside.txt", ".inputs-sha256", "missing.js", "sub/"])
def test_nothing_outside_the_build_is_served(server: ConsoleServer, path: str) -> None:
    configured(server)
    status, _, body = fetch(server.url + path)
    assert status == 404
    assert b"not part of the build" not in body
    assert b"stamp" not in body


def test_attach_registers_the_console_with_the_stacks_emulator(server: ConsoleServer) -> None:
    registered: dict[str, Any] = {}

    def register(client_id: str, **urls: tuple[str, ...]) -> None:
        registered[client_id] = urls

    stack = SimpleNamespace(
        endpoints=SimpleNamespace(issuer=ISSUER),
        parameters={"OpsApiAudience": "https://aegis.local/ops"},
        http_api_url=lambda logical_id="OpsApi": API_URL if logical_id == "OpsApi" else "",
        emulator=SimpleNamespace(register_application_urls=register),
    )
    config = server.attach(stack)
    assert config.api_url == API_URL
    assert server.config == config
    assert registered == {
        CONSOLE_CLIENT_ID: {
            "callbacks": (server.url,),
            "web_origins": (origin_of(server.url),),
            "logout_urls": (server.url,),
        }
    }
    assert server.stack_parameters() == {"ConsoleOrigins": origin_of(server.url)}


def test_a_config_with_an_issuer_without_its_slash_is_refused() -> None:
    with pytest.raises(ValueError, match="must end with a slash"):
        ConsoleRuntimeConfig(issuer="http://127.0.0.1:4100", client_id="c", audience="a", api_url=API_URL)
