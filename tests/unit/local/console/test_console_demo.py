"""`aegis-local demo` and the console: `--keep-up` is read from the command line, the console is served only with
the local tenant (whose application it is), and the stack then lets the console's origin call the ops API."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from aegis_local.cli.main import build_parser
from aegis_local.scenario import demo
from aegis_local.scenario.demo import Console, DemoOptions, ExternalTenant, options_from_args


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["demo", *argv])


def test_keep_up_is_off_unless_asked() -> None:
    assert options_from_args(parse("--approve", "all"), terminal=False).keep_up is False
    assert options_from_args(parse("--approve", "all", "--keep-up"), terminal=False).keep_up is True


def test_with_your_own_tenant_the_console_is_not_served_and_says_why(tmp_path: Path) -> None:
    tenant = ExternalTenant(
        issuer="https://tenant.example.org/", client_id="a", client_secret=SecretStr("s"), approver_sub="x"
    )
    server, why = demo._console_server(DemoOptions(tenant=tenant, report_dir=tmp_path), Console(io.StringIO()))
    assert server is None
    assert "own tenant" in why


def test_the_local_tenants_console_is_built_served_and_allowed_by_the_ops_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html>", encoding="utf-8")

    def ensure_built(**_: Any) -> Path:
        built.append("built")
        return dist

    monkeypatch.setattr("aegis_local.console.build.ensure_built", ensure_built)
    server, why = demo._console_server(DemoOptions(report_dir=tmp_path), Console(io.StringIO()))
    try:
        assert why == ""
        assert built == ["built"]
        assert server is not None
        assert server.stack_parameters() == {"ConsoleOrigins": server.url.rstrip("/")}
    finally:
        if server is not None:
            server.stop()
