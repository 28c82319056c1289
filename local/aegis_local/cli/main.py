"""`aegis-local`: run AegisCloud on this machine and drive it.

    aegis-local up                      start the local stack in the foreground and print where everything is
    aegis-local seed                    create the seeded vulnerable account in a running stack
    aegis-local pending                 the phone: list the approver's pending requests
    aegis-local approve [ID] | deny [ID]    the phone: answer one (or --all) of them
    aegis-local demo --approve all      a whole mission on a fresh stack, with its report and leak audit
    aegis-local scan | missions | show ID | audit ID | kill | rearm | leak-audit
                                        operate the stack `up` runs (found through the state file it writes)

Each subcommand is one function taking the parsed arguments and returning the exit code (0 ok, 1 failed,
2 usage). The modules that hold them are listed in `COMMAND_MODULES`; each module's `register(subparsers)` adds its
parsers and sets `handler` on each.
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
    "aegis_local.cli.phone",
    "aegis_local.cli.scan_account",
    "aegis_local.scenario.demo",
    "aegis_local.cli.ops",
)

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aegis-local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    raise SystemExit(main())
