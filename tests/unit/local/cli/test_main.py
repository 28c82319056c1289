"""`aegis-local`'s parser and dispatch: every command module registers its subcommands, usage errors exit 2, a
command's one-line failure exits 1."""

from __future__ import annotations

import pytest

from aegis_local.cli.main import COMMAND_MODULES, build_parser, main


def test_every_command_is_registered_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"up", "seed", "pending", "approve", "deny", "scan-account"} <= set(commands)
    assert COMMAND_MODULES  # subcommands of later issues plug in here
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "up" in capsys.readouterr().out
