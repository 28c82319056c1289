"""The phone from another shell: `aegis-local pending` lists the approver's pending backchannel requests, and
`approve` / `deny` answer them, through the Auth0 emulator's Guardian endpoints."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from aegis_local.cli.common import EXIT_OK, ISSUER_ENV, CommandFailed

__all__ = ["cmd_approve", "cmd_deny", "cmd_pending", "detail_lines", "ids_as_positionals", "register"]

HTTP_TIMEOUT_SECONDS = 10.0


def _default_approver() -> str:
    from aegis_local.auth0 import DEFAULT_APPROVER_SUB

    return DEFAULT_APPROVER_SUB


def _guardian(args: argparse.Namespace) -> str:
    issuer = args.issuer or os.environ.get(ISSUER_ENV)
    if not issuer:
        raise CommandFailed(f"give --issuer (or set {ISSUER_ENV}) to the issuer URL `aegis-local up` printed")
    return issuer.rstrip("/") + "/__guardian/"


def _call(method: str, url: str) -> Any:
    try:
        response = httpx.request(method, url, timeout=HTTP_TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        raise CommandFailed(f"cannot reach {url}: {error}") from error
    try:
        body = response.json()
    except ValueError:
        body = {"error": "not_json", "message": response.text[:200]}
    if response.status_code >= 400:
        details = body if isinstance(body, dict) else {}
        code = details.get("error", "error")
        message = details.get("message") or details.get("error_description") or ""
        raise CommandFailed(f"{response.status_code} {code}: {message}".rstrip(": "))
    return body


def _pending(args: argparse.Namespace) -> list[dict[str, Any]]:
    body = _call("GET", f"{_guardian(args)}users/{quote(args.user, safe='')}/requests")
    return list(body.get("requests", []))


def cmd_pending(args: argparse.Namespace) -> int:
    """List the user's pending backchannel requests with what each one asks to approve."""
    requests = _pending(args)
    if args.json:
        print(json.dumps(requests, sort_keys=True))
        return EXIT_OK
    if not requests:
        print(f"no pending requests for {args.user}")
        return EXIT_OK
    for request in requests:
        print(f"{request['auth_req_id']}  {request.get('binding_message', '')}")
        print(f"  expires {request.get('expires_at', '?')}  scope {request.get('scope', '')}")
        for detail in request.get("authorization_details") or []:
            for line in detail_lines(detail):
                print(line)
    return EXIT_OK


def detail_lines(detail: Mapping[str, Any]) -> list[str]:
    """One authorization_details object as the phone shows it: its type, its instruction, then each Guardian
    property (`{name, value, display_order}`) as `label  value` in display order (a batch's seven: mission, count,
    counts by kind, highest risk, account, review link, Merkle root); any other field as key=value."""
    fields = ", ".join(
        f"{key}={value}" for key, value in detail.items() if key not in ("type", "instruction", "properties")
    )
    lines = [f"  {detail.get('type', '?')}: {fields}".rstrip(": ")]
    if detail.get("instruction"):
        lines.append(f"    {detail['instruction']}")
    properties = detail.get("properties")
    if isinstance(properties, Mapping):
        shown = sorted(
            ((name, value) for name, value in properties.items() if isinstance(value, Mapping)),
            key=lambda item: item[1].get("display_order", 99),
        )
        width = max((len(str(value.get("name") or name)) for name, value in shown), default=0)
        lines += [f"    {value.get('name') or name!s:<{width}}  {value.get('value', '')}" for name, value in shown]
    return lines


def _decide(args: argparse.Namespace, *, approve: bool) -> int:
    verb = "approve" if approve else "deny"
    if args.all and args.auth_req_id:
        raise CommandFailed("give a request id or --all, not both")
    if args.auth_req_id:
        chosen = [args.auth_req_id]
    else:
        pending = [request["auth_req_id"] for request in _pending(args)]
        if not pending:
            raise CommandFailed(f"no pending requests for {args.user}")
        if len(pending) > 1 and not args.all:
            raise CommandFailed(f"{len(pending)} pending requests ({', '.join(pending)}): give one id or --all")
        chosen = pending
    for auth_req_id in chosen:
        answer = _call("POST", f"{_guardian(args)}requests/{quote(auth_req_id, safe='')}/{verb}")
        print(f"{auth_req_id}: {answer.get('status', verb)}")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a pending request, as the approver would on the phone."""
    return _decide(args, approve=True)


def cmd_deny(args: argparse.Namespace) -> int:
    """Deny a pending request, as the approver would on the phone."""
    return _decide(args, approve=False)


# Subcommands whose positional argument is an id from the provider, and their options (True: takes a value);
# filled in by `register`, which defines those options.
_ID_COMMANDS: dict[str, dict[str, bool]] = {}


def _option_arity(parser: argparse.ArgumentParser) -> dict[str, bool]:
    return {option: action.nargs != 0 for action in parser._actions for option in action.option_strings}


def ids_as_positionals(argv: Sequence[str]) -> list[str]:
    """`argv` with the ids of the phone commands placed after `--`, where argparse cannot take them for options.

    A request id is the provider's random text: base64url ids begin with '-' one time in 64 (`-vFFz...`), and argparse
    reads such a word as an unknown option. Every word after `approve` or `deny` that is not exactly one of that
    command's options (or an option's value) is therefore an id; a `--` the user typed keeps its meaning. An option's
    value is joined to it (`--user=VALUE`), so that a value beginning with '-' is not read as an option either.
    """
    words = list(argv)
    if not words or words[0] not in _ID_COMMANDS:
        return words
    arity = _ID_COMMANDS[words[0]]
    options: list[str] = []
    positionals: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        if word == "--":
            positionals.extend(rest)
        elif word in arity:
            value = next(rest, None) if arity[word] else None
            options.append(word if value is None else f"{word}={value}")
        elif word.partition("=")[0] in arity and arity[word.partition("=")[0]]:
            options.append(word)
        else:
            positionals.append(word)
    return [words[0], *options, *(["--", *positionals] if positionals else [])]


def _add_phone_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--issuer", help=f"issuer URL of the Auth0 emulator (default: ${ISSUER_ENV})")
    parser.add_argument("--user", default=_default_approver(), help="the approver's user id (sub)")


def register(subparsers: Any) -> None:
    pending = subparsers.add_parser(
        "pending",
        help="the phone: list the approver's pending requests",
        description="Stand in for the approver's phone: list the approval requests waiting for them, with what each "
        "asks to change.",
        epilog="examples:\n  aegis-local pending\n  aegis-local pending --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_phone_arguments(pending)
    pending.add_argument("--json", action="store_true")
    pending.set_defaults(handler=cmd_pending)

    for name, handler, help_text in (
        ("approve", cmd_approve, "the phone: approve a pending request"),
        ("deny", cmd_deny, "the phone: deny a pending request"),
    ):
        # No abbreviations: a word is one of these options exactly, or it is the request id.
        decide = subparsers.add_parser(
            name,
            help=help_text,
            description=f"Stand in for the approver's phone: {name} one pending request, or all of them.",
            epilog=f"examples:\n  aegis-local {name}                       the only pending request\n"
            f"  aegis-local {name} --all\n  aegis-local {name} AUTH_REQ_ID",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        _add_phone_arguments(decide)
        decide.add_argument(
            "auth_req_id",
            nargs="?",
            help="the request (default: the only pending one); it may begin with '-', as the provider's ids can",
        )
        decide.add_argument("--all", action="store_true", help="answer every pending request")
        decide.set_defaults(handler=handler)
        _ID_COMMANDS[name] = _option_arity(decide)
