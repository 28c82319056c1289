"""The operator commands' side of the ops API, against a real HTTP server that answers as the gateway and the
function do: the cached token goes out as a bearer token, and 401, 403, 409 and the kill switch's 502 come back
as one clear line and an exit status a script can tell apart."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from aegis_local.cli.common import EXIT_AUTH, EXIT_CONFLICT, EXIT_FAILURE, EXIT_FORBIDDEN, EXIT_OK
from aegis_local.cli.login import CachedToken, LoginSettings, TokenCache
from aegis_local.cli.main import main
from tests.support.loopback_server import LoopbackServer, QuietHandler


def unsigned_token(claims: dict[str, Any]) -> str:
    """A JWT-shaped string: the CLI only reads its claims, for messages (the API verifies it)."""

    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


ISSUER = "https://tenant.test/"
AUDIENCE = "https://aegis.test/ops"
TOKEN = unsigned_token({"sub": "auth0|viewer"})


class FakeOpsApi:
    """Answers each `METHOD path` from a table, and records what came in."""

    def __init__(self, answers: dict[str, tuple[int, Any, dict[str, str]]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                parts = urlsplit(self.path)
                api.requests.append(
                    {
                        "route": f"{method} {parts.path}",
                        "query": parse_qs(parts.query),
                        "authorization": self.headers.get("authorization"),
                        "body": json.loads(self.rfile.read(length) or b"null"),
                    }
                )
                status, body, headers = api.answers.get(f"{method} {parts.path}", (404, {"message": "Not Found"}, {}))
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "text/html" if isinstance(body, str) else "application/json")
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LoopbackServer(Handler)


@pytest.fixture
def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("AEGIS_ISSUER", ISSUER)
    monkeypatch.setenv("AEGIS_API_AUDIENCE", AUDIENCE)
    token = CachedToken(
        issuer=ISSUER, audience=AUDIENCE, access_token=TOKEN, expires_at=time.time() + 3600, scope="aegis:read"
    )
    TokenCache().store(token, LoginSettings(issuer=ISSUER, audience=AUDIENCE))


@pytest.fixture
def api_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[FakeOpsApi] = []

    def make(answers: dict[str, tuple[int, Any, dict[str, str]]]) -> FakeOpsApi:
        made.append(FakeOpsApi(answers))
        monkeypatch.setenv("AEGIS_API_URL", made[-1].server.url)
        return made[-1]

    yield make
    for api in made:
        api.server.close()


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.usefixtures("logged_in")
def test_the_cached_token_is_sent_and_pages_are_followed(api_factory: Any, capsys: Any) -> None:
    first = {"missions": [{"mission_id": "m-1", "status": "completed", "dry_run": True}], "next": "CURSOR1"}
    api = api_factory({"GET /missions": (200, first, {})})
    code, out, _ = run(capsys, "missions", "--limit", "1")
    assert code == EXIT_OK
    assert "m-1  completed" in out
    assert "(dry run)" in out
    assert "--next CURSOR1" in out
    [request] = api.requests
    assert request["authorization"] == f"Bearer {TOKEN}"
    assert request["query"] == {"limit": ["1"]}


@pytest.mark.usefixtures("logged_in")
def test_401_says_to_log_in_and_exits_3(api_factory: Any, capsys: Any) -> None:
    refused = (401, {"message": "Unauthorized"}, {"www-authenticate": 'Bearer error="invalid_token"'})
    api_factory({"GET /missions": refused})
    code, _, err = run(capsys, "missions")
    assert code == EXIT_AUTH
    assert 'the ops API refused your token (Bearer error="invalid_token"): run `aegis-local login`' in err
    assert TOKEN not in err


@pytest.mark.usefixtures("logged_in")
def test_403_names_the_missing_scope_and_what_the_token_holds(api_factory: Any, capsys: Any) -> None:
    api_factory({"POST /kill": (403, {"message": "Forbidden"}, {})})
    code, _, err = run(capsys, "kill", "--reason", "test")
    assert code == EXIT_FORBIDDEN
    assert "POST /kill needs the aegis:killswitch scope" in err
    assert "your token for auth0|viewer" in err
    assert "(it holds: aegis:read)" in err


@pytest.mark.usefixtures("logged_in")
def test_409_shows_the_reason_and_exits_5(api_factory: Any, capsys: Any) -> None:
    change = "chg-00000000000000000000"
    refusal = {"message": "the change was never applied", "reason": "undo-not-applied"}
    api = api_factory({f"POST /changes/{change}/undo": (409, refusal, {})})
    code, _, err = run(capsys, "undo", change)
    assert code == EXIT_CONFLICT
    assert "refused: the change was never applied (reason: undo-not-applied)" in err
    assert api.requests[0]["body"] == {}


@pytest.mark.usefixtures("logged_in")
def test_an_id_cannot_reach_another_route(api_factory: Any, capsys: Any) -> None:
    api = api_factory({})
    code, _, err = run(capsys, "undo", "../../kill")
    assert code == EXIT_FAILURE
    assert "not found" in err
    assert api.requests[0]["route"] == "POST /changes/..%2F..%2Fkill/undo"


@pytest.mark.usefixtures("logged_in")
def test_a_kill_switch_partial_failure_is_its_report_and_exit_1(api_factory: Any, capsys: Any) -> None:
    report = {
        "ok": False,
        "halted": True,
        "steps": [
            {"step": "halt_flag", "ok": True, "reason": "engaged"},
            {"step": "auth0_sessions", "ok": False, "reason": "the tenant did not answer"},
        ],
    }
    api = api_factory({"POST /kill": (502, report, {})})
    code, out, _ = run(capsys, "kill", "--reason", "incident 12")
    assert code == EXIT_FAILURE
    assert "halted=True ok=False" in out
    assert "FAIL auth0_sessions: the tenant did not answer" in out
    assert api.requests[0]["body"] == {"reason": "incident 12"}


@pytest.mark.usefixtures("logged_in")
def test_scan_sends_what_was_asked_and_prints_the_mission(api_factory: Any, capsys: Any) -> None:
    answer = {"event_id": "e-1", "mission_id": "m-0123456789abcdef0123"}
    api = api_factory({"POST /scans": (202, answer, {})})
    code, out, _ = run(capsys, "scan", "--dry-run", "--region", "eu-west-1", "--check", "s3-bucket-public")
    assert code == EXIT_OK
    assert "dry run requested: event e-1: mission m-0123456789abcdef0123" in out
    assert api.requests[0]["body"] == {"dry_run": True, "regions": ["eu-west-1"], "checks": ["s3-bucket-public"]}


@pytest.mark.usefixtures("logged_in")
def test_audit_reads_by_filter_and_follows_every_page(api_factory: Any, capsys: Any) -> None:
    pages = iter(
        [
            {"records": [{"at": "t1", "mission_id": "m-1", "action": "mission.created"}], "next": "C2"},
            {"records": [{"at": "t2", "mission_id": "m-1", "action": "mission.completed"}], "next": None},
        ]
    )

    class Paged(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            return (200, next(pages), {}) if key == "GET /audit" else default

    api = api_factory({})
    api.answers = Paged()
    code, out, _ = run(capsys, "audit", "--mission", "m-1", "--since", "2030-01-01T00:00:00Z", "--all")
    assert code == EXIT_OK
    assert "mission.created" in out
    assert "mission.completed" in out
    assert [r["query"].get("next") for r in api.requests] == [None, ["C2"]]
    assert api.requests[1]["query"]["since"] == ["2030-01-01T00:00:00Z"]
    code, _, err = run(capsys, "audit")
    assert code == EXIT_FAILURE
    assert "give a MISSION_ID, --mission, --change or --action" in err


def test_without_a_login_the_commands_say_so(
    api_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("AEGIS_ISSUER", ISSUER)
    monkeypatch.setenv("AEGIS_API_AUDIENCE", AUDIENCE)
    api = api_factory({})
    code, _, err = run(capsys, "missions")
    assert code == EXIT_AUTH
    assert f"not logged in to {ISSUER} for {AUDIENCE}: run `aegis-local login`" in err
    assert api.requests == []
    monkeypatch.delenv("AEGIS_API_URL")
    code, _, err = run(capsys, "missions")
    assert code == EXIT_FAILURE
    assert "give --api (or set AEGIS_API_URL)" in err


@pytest.mark.usefixtures("logged_in")
def test_an_organization_scan_is_asked_for_and_its_accounts_listed(api_factory: Any, capsys: Any) -> None:
    api = api_factory(
        {
            "POST /scans": (202, {"event_id": "e-2", "org_scan_id": "org-0123456789abcdef0123"}, {}),
            "GET /missions": (
                200,
                {
                    "org_scan": {"org_scan_id": "org-0123456789abcdef0123", "status": "scanned", "account_count": 2},
                    "accounts": [
                        {
                            "account_id": "111111111111",
                            "mission_id": "m-1",
                            "status": "completed",
                            "counts": {"findings": 4, "changes": 3},
                            "outcomes": {"applied": 3},
                        },
                        {
                            "account_id": "222222222222",
                            "mission_id": "m-2",
                            "status": "unreachable",
                            "error": "AccessDenied",
                        },
                    ],
                },
                {},
            ),
        }
    )
    code, out, _ = run(capsys, "scan", "--organization")
    assert code == EXIT_OK
    assert "organization scan requested: event e-2: organization scan org-0123456789abcdef0123" in out
    assert api.requests[0]["body"] == {"dry_run": False, "organization": True}
    code, out, _ = run(capsys, "missions", "--org-scan", "org-0123456789abcdef0123")
    assert code == EXIT_OK
    assert api.requests[1]["query"] == {"org_scan": ["org-0123456789abcdef0123"]}
    assert "111111111111  completed" in out
    assert "4 findings, 3 changes, 3 applied" in out
    assert "222222222222  unreachable" in out
    assert "(AccessDenied)" in out
