"""The `aegis-local` command line: parse the arguments, run the chosen command, turn its failure into an exit status.

Each command module contributes its subcommands through `register(subparsers)` (listed in `COMMAND_MODULES`, in the
order the help shows them), setting `handler(args) -> int` on each parser. A command signals a failure by raising
`CommandFailed` (one line for the user, and its `exit_code`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from aegis_local.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandFailed
from aegis_local.cli.phone import ids_as_positionals

__all__ = ["COMMAND_MODULES", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

# Modules that contribute subcommands through `register(subparsers)`, in the order `--help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "aegis_local.cli.up",
    "aegis_local.scenario.demo",
    "aegis_local.cli.login",
    "aegis_local.cli.ops",
    "aegis_local.cli.phone",
    "aegis_local.cli.scan_account",
    "aegis_local.cli.catalogue",
    "aegis_local.cli.leak_audit",
)

# What `aegis-local --help` tells a user: what the tool is, and where to start.
DESCRIPTION = """\
Run AegisCloud on this machine, and operate it here or in AWS.

AegisCloud finds misconfigured AWS resources (CIS benchmark checks), plans a fix for each, asks an approver on their
phone, and applies only what was approved. `aegis-local up` runs the whole stack locally (AWS emulated, an Auth0
emulator, every function of the template); the operator commands talk to its ops HTTP API, or to a deployed
stack's, with your own login."""

EPILOG = """\
getting started:
  aegis-local demo --approve all          one whole mission on a fresh local stack, with its report
  aegis-local up --seed                   start the local stack; it prints the lines to export in another shell
  aegis-local login                       sign in (as operator@aegis.local locally; `up` prints the password)
  aegis-local scan --dry-run              then: missions, show MISSION_ID, audit MISSION_ID, findings

against a deployed stack: export AEGIS_API_URL (the stack's OpsApiUrl output), AEGIS_ISSUER, AEGIS_API_AUDIENCE
and AEGIS_CLI_CLIENT_ID, or give --api, --issuer, --audience and --client-id.

`aegis-local COMMAND --help` says what a command does, with examples."""

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aegis-local",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(ids_as_positionals(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Command = args.handler
    try:
        return handler(args)
    except CommandFailed as error:
        print(f"aegis-local {args.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
