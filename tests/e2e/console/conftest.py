"""The browser console on one local stack for the module: the console server (console/dist, built when its inputs
changed), the stack with the console's origin allowed by the ops API and registered with the emulator, one
completed mission approved on the emulated phone, and Debian's Chromium driven headless by Playwright; `sign_in` signs
a seeded user in through the emulator's login page.

Chromium or Playwright missing: the browser tests skip with the reason, except under CI (env CI set), where that is a
failure (`make setup-browser` installs Chromium; requirements-dev.txt pins Playwright)."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aegis_local.aws.stack import LocalStack
from aegis_local.console.build import ConsoleBuildError, ensure_built
from aegis_local.console.server import ConsoleServer
from aegis_local.scenario.demo import Console, DemoOptions, DemoResult, run_on_stack, stack_arguments
from aegis_local.scenario.phone import ApprovalPolicy

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "reports" / "console"
# Debian's package installs it as /usr/bin/chromium (reference, section 7); another PATH entry of that name also does.
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# This machine has no network beyond loopback: nothing in the background may try to reach one (reference, section 7).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Two changes the executor applies and records for undo (tests/e2e/test_demo_e2e.py, APPLIED).
MISSION_CHECKS = ("ec2-ebs-default-encryption-off", "s3-account-public-access-block-off")
PHONE_SIZE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; under CI the browser tests must run (make setup-browser)")
    pytest.skip(reason)


@dataclass
class ConsoleStack:
    stack: LocalStack
    console: ConsoleServer
    mission: DemoResult

    @property
    def url(self) -> str:
        return self.console.url

    def password(self, email: str) -> str:
        return str(self.stack.emulator.config.user_password(email))

    def user_sub(self, email: str) -> str:
        return str(self.stack.emulator.config.user_by_email(email).sub)


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (pip install -r requirements-dev.txt)")
    found = next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)
    if found is None:
        _unavailable("chromium is not installed (make setup-browser installs Debian's chromium)")
    return Path(str(found))


@pytest.fixture(scope="module")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path), args=list(CHROMIUM_FLAGS))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def console_stack(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    if shutil.which("npm") is None and not (ROOT / "console" / "dist" / "index.html").is_file():
        _unavailable("npm is missing, so the console cannot be built")
    try:
        ensure_built(log=lambda _: None)
    except ConsoleBuildError as error:
        pytest.fail(f"the console does not build: {error}")
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=MISSION_CHECKS,
        report_dir=tmp_path_factory.mktemp("console-mission"),
    )
    arguments = stack_arguments(options)
    with ConsoleServer() as console:
        arguments["parameters"] = {**arguments["parameters"], **console.stack_parameters()}
        with LocalStack(**arguments) as stack:
            console.attach(stack)
            mission = run_on_stack(stack, options, Console(io.StringIO()))
            assert mission.exit_code == 0, mission.problems
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            yield ConsoleStack(stack=stack, console=console, mission=mission)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@dataclass
class SignedIn:
    """A user's page in a browser profile of its own, and the bearer tokens the console sent to the ops API."""

    page: Any
    bearer_tokens: list[str]


@pytest.fixture
def sign_in(browser: Any, console_stack: ConsoleStack) -> Iterator[Callable[[str], SignedIn]]:
    """A fresh browser profile per user, signed in through the emulator's login page."""
    contexts: list[Any] = []

    def signed_in(email: str) -> SignedIn:
        context = browser.new_context(viewport=PHONE_SIZE)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        tokens: list[str] = []
        api = console_stack.stack.http_api_url()

        def record(request: Any) -> None:
            header = request.headers.get("authorization", "")
            if request.url.startswith(api) and header.startswith("Bearer "):
                tokens.append(header.removeprefix("Bearer "))

        page.on("request", record)
        page.goto(console_stack.url)
        page.click("#login")
        # The emulator's Universal Login page, on the issuer's origin.
        expect(page.locator("#email")).to_be_visible()
        assert page.url.startswith(console_stack.stack.endpoints.issuer)
        page.fill("#email", email)
        page.fill("#password", console_stack.password(email))
        page.click("button[type=submit]")
        expect(page.locator("#signed-in-as")).to_have_text(email)
        # The code and state never stay in the address bar.
        assert "code=" not in page.url
        assert not errors, errors
        return SignedIn(page, tokens)

    yield signed_in
    for context in contexts:
        context.close()


def open_page(page: Any, route: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/{route}")
    expect(page.locator("main .notice", has_text="Loading…")).to_have_count(0)
