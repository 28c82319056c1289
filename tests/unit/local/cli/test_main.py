"""`aegis-local`'s parser and dispatch, and its help: every command module registers its subcommands, usage errors
exit 2, a command's failure exits with its own status, and every help page speaks to users (what the command does,
with an example), never to the developers of the tool."""

from __future__ import annotations

import argparse
import re

import pytest

from aegis_local.cli.common import EXIT_AUTH, CommandFailed
from aegis_local.cli.main import build_parser, main

# Words of the module's developer notes that a user's help page must never show.
DEVELOPER_WORDS = ("COMMAND_MODULES", "later issues", "register", "subparsers", "handler")
OPERATOR_COMMANDS = {"login", "logout", "missions", "show", "findings", "audit", "scan", "undo", "kill", "rearm"}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    [action] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_is_there_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    commands = subcommands()
    assert {"up", "seed", "demo", "pending", "approve", "deny", "scan-account", "leak-audit"} <= set(commands)
    assert set(commands) >= OPERATOR_COMMANDS
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert main(["kill"]) == 2  # --reason is required
    capsys.readouterr()


def test_the_top_level_help_describes_the_tool_and_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: aegis-local")
    assert "Run AegisCloud on this machine, and operate it here or in AWS." in text
    for name in subcommands():
        assert f"\n    {name} " in text, name
    assert "aegis-local login" in text
    for word in DEVELOPER_WORDS:
        assert word not in text, word


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_each_command_help_says_what_it_does_with_an_example(name: str) -> None:
    parser = subcommands()[name]
    text = parser.format_help()
    assert parser.description, f"{name} has no description"
    # An example is a command line a user can type, on a line of its own: the tool, then this command.
    assert re.search(rf"^ +aegis-local {re.escape(name)}\b", text, re.MULTILINE), f"{name} shows no example"
    for word in DEVELOPER_WORDS:
        assert word not in text, f"{name}: {word}"


def test_a_commands_failure_exits_with_its_own_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Expired(CommandFailed):
        exit_code = EXIT_AUTH

    def fail(args: argparse.Namespace) -> int:
        raise Expired("your token expired: run `aegis-local login`")

    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    action.choices["missions"].set_defaults(handler=fail)
    monkeypatch.setattr("aegis_local.cli.main.build_parser", lambda: parser)
    assert main(["missions"]) == EXIT_AUTH
    assert capsys.readouterr().err == "aegis-local missions: error: your token expired: run `aegis-local login`\n"
