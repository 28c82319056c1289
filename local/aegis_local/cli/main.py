"""`aegis-local`: run AegisCloud on this machine and drive it.

    aegis-local up                      start the local stack in the foreground and print where everything is
    aegis-local seed                    create the seeded vulnerable account in a running stack
    aegis-local pending                 the phone: list the approver's pending requests
    aegis-local approve [ID] | deny [ID]    the phone: answer one (or --all) of them
    aegis-local demo --approve all      a whole mission on a fresh stack, with its report and leak audit
    aegis-local scan | missions | show ID | audit ID | kill | rearm | leak-audit
                                        operate the stack `up` runs (found through the state file it writes)

Each subcommand is one function taking the parsed arguments and returning the exit code (0 ok, 1 failed,
2 usage). Subcommands that live in their own module (`scan-account`, and those later issues add) are listed in
`COMMAND_MODULES`; each module's `register(subparsers)` adds its parser and sets `handler` on it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from botocore.exceptions import ClientError

__all__ = ["COMMAND_MODULES", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
# `up` prints these for other shells; the phone and seed commands read them as defaults.
ISSUER_ENV = "AEGIS_LOCAL_ISSUER"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
DEFAULT_REGION = "us-east-1"
HTTP_TIMEOUT_SECONDS = 10.0
# Modules that contribute subcommands through `register(subparsers)`.
COMMAND_MODULES: tuple[str, ...] = ("aegis_local.cli.scan_account", "aegis_local.scenario.demo", "aegis_local.cli.ops")

Command = Callable[[argparse.Namespace], int]


class CommandFailed(Exception):
    """The command could not do its job; the message is one line for the user."""


def _default_approver() -> str:
    from aegis_local.auth0 import DEFAULT_APPROVER_SUB

    return DEFAULT_APPROVER_SUB


# ----------------------------------------------------------------------------------------------------------------
# up


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print every endpoint, wait for Ctrl-C (or SIGTERM), stop."""
    from aegis_local.aws.stack import LocalStack
    from aegis_local.aws.template import TemplateError

    parameters = _parse_parameters(args.parameter or [])
    stack = LocalStack(
        template_path=args.template, stack_name=args.stack_name, region=args.region, parameters=parameters
    )
    from aegis_local.cli.ops import remove_state_file, write_state_file

    stop_requested = threading.Event()
    state_file: Path | None = None
    previous = {
        signum: signal.signal(signum, lambda *_: stop_requested.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            stack.start()
        except (TemplateError, OSError, RuntimeError) as error:
            raise CommandFailed(f"the local stack did not start: {error}") from error
        seeded = None
        if args.seed:
            from aegis_local.scenario.seed import seed_account

            seeded = seed_account(_endpoint_session(stack.endpoints.moto_url, args.region), args.region)
        description = describe_stack(stack)
        description["handler_errors"] = stack.preload_handlers()
        if seeded is not None:
            description["seeded"] = _seed_summary(seeded)
        state_file = write_state_file(description, Path(args.state) if args.state else None)
        description["state_file"] = str(state_file)
        if args.json:
            print(json.dumps(description, sort_keys=True), flush=True)
        else:
            print(render_description(description), flush=True)
        stop_requested.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if state_file is not None:
            remove_state_file(state_file)
        stack.stop()
    if not args.json:
        print("stopped", flush=True)
    return EXIT_OK


def describe_stack(stack: Any) -> dict[str, Any]:
    """Everything a user (or a script) needs to reach the running stack. Secrets are never included."""
    endpoints = stack.endpoints
    created = stack.resources
    approvers = [sub for sub in str(stack.parameters.get("ApproverSubs", "")).split(",") if sub]
    phone: dict[str, str] = {}
    if endpoints.guardian_url:
        for sub in approvers:
            phone[sub] = f"{endpoints.guardian_url}users/{quote(sub, safe='')}/requests"
    functions = {spec.logical_id: spec.function_name for spec in created.functions}
    rules = {r.logical_id: str(r.ref) for r in created.of_type("AWS::Events::Rule")}
    machines = {
        r.logical_id: str(r.attributes["Arn"])
        for r in created.resources.values()
        if r.resource_type in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
    }
    return {
        "stack_name": stack.identity.stack_name,
        "region": endpoints.region,
        "account": endpoints.account_id,
        "startup_seconds": round(stack.startup_seconds or 0.0, 2),
        "moto": endpoints.moto_url,
        "issuer": endpoints.issuer,
        "guardian": endpoints.guardian_url,
        "phone": phone,
        "function_urls": stack.function_urls(),
        "state_machines": machines,
        "functions": functions,
        "tables": stack.table_names(),
        "rules": rules,
        "outputs": {name: value for name, value in stack.outputs.items() if isinstance(value, str)},
        "environment": {
            ENDPOINT_ENV: endpoints.moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": endpoints.region,
            **({ISSUER_ENV: endpoints.issuer} if endpoints.issuer else {}),
        },
    }


def render_description(description: dict[str, Any]) -> str:
    lines = [
        f"AegisCloud local stack {description['stack_name']!r} "
        f"(region {description['region']}, account {description['account']}) "
        f"ready in {description['startup_seconds']:.1f} s",
        "",
        "ENDPOINTS",
        f"  moto (AWS APIs)   {description['moto']}",
    ]
    if description.get("issuer"):
        lines.append(f"  Auth0 issuer      {description['issuer']}")
        lines.append(f"  Guardian (phone)  {description['guardian']}")
        for sub, url in description["phone"].items():
            lines.append(f"  phone of {sub}:  {url}")
    for name, url in description["function_urls"].items():
        lines.append(f"  URL of {name}:  {url}")
    sections = (
        ("STATE MACHINES", description["state_machines"]),
        ("FUNCTIONS", description["functions"]),
        ("TABLES", description["tables"]),
        ("RULES", description["rules"]),
        ("OUTPUTS", description["outputs"]),
    )
    for title, values in sections:
        if not values:
            continue
        width = max(len(name) for name in values)
        lines += ["", title, *(f"  {name.ljust(width)}  {value}" for name, value in values.items())]
    errors = description.get("handler_errors") or {}
    lines += ["", "HANDLERS"]
    if errors:
        lines += [f"  {name}: {error}" for name, error in errors.items()]
    else:
        lines.append(f"  all {len(description['functions'])} handlers load")
    if "seeded" in description:
        seeded = description["seeded"]
        lines += ["", "SEEDED ACCOUNT", *(f"  {name}: {value}" for name, value in seeded.items())]
    exports = " ".join(f"{name}={value}" for name, value in description["environment"].items())
    lines += [
        "",
        "FROM ANOTHER SHELL",
        f"  export {exports}",
        "  aegis-local seed",
        "  aegis-local pending",
        *(
            [f"  aegis-local scan | missions | show ID | kill   (they read {description['state_file']})"]
            if description.get("state_file")
            else []
        ),
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def _parse_parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise CommandFailed(f"--parameter needs NAME=VALUE, not {pair!r}")
        parameters[name] = value
    return parameters


# ----------------------------------------------------------------------------------------------------------------
# seed


def cmd_seed(args: argparse.Namespace) -> int:
    """Seed the vulnerable account into the moto server of a running stack."""
    from aegis_local.cli.scan_account import ScanAccountError, ensure_reachable, validate_endpoint_url
    from aegis_local.scenario.seed import seed_account

    endpoint = args.endpoint_url or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        raise CommandFailed(f"give --endpoint-url (or set {ENDPOINT_ENV}) to the moto URL `aegis-local up` printed")
    try:
        endpoint = validate_endpoint_url(endpoint)
        ensure_reachable(endpoint)
    except ScanAccountError as error:
        raise CommandFailed(str(error)) from error
    try:
        seeded = seed_account(_endpoint_session(endpoint, args.region), args.region)
    except ClientError as error:
        # The seed creates fixed names, so a second run on the same account collides with the first.
        raise CommandFailed(f"seeding failed ({error}); was this account seeded already?") from error
    summary = _seed_summary(seeded)
    if args.json:
        print(json.dumps(seeded.model_dump(mode="json"), sort_keys=True))
    else:
        print(f"seeded account {seeded.account_id} in {seeded.region} at {endpoint}")
        for name, value in summary.items():
            print(f"  {name}: {value}")
    return EXIT_OK


def _endpoint_session(endpoint: str, region: str) -> Any:
    from aegis_local.cli.scan_account import EndpointSession

    return EndpointSession(
        endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )


def _seed_summary(seeded: Any) -> dict[str, int]:
    return {
        "security groups": len(seeded.security_groups),
        "buckets": len(seeded.buckets),
        "policies": len(seeded.policies),
        "kms keys": len(seeded.kms_keys),
        "expected findings": len(seeded.expected_findings),
        "clean look-alikes": len(seeded.lookalikes),
    }


# ----------------------------------------------------------------------------------------------------------------
# the phone


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
            fields = ", ".join(f"{key}={value}" for key, value in detail.items() if key != "type")
            print(f"  {detail.get('type', '?')}: {fields}")
    return EXIT_OK


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


# ----------------------------------------------------------------------------------------------------------------
# the parser


# Subcommands whose positional argument is an id from the provider, and their options (True: takes a value);
# filled in by build_parser, which defines those options.
_ID_COMMANDS: dict[str, dict[str, bool]] = {}


def _option_arity(parser: argparse.ArgumentParser) -> dict[str, bool]:
    return {option: action.nargs != 0 for action in parser._actions for option in action.option_strings}


def _ids_as_positionals(argv: Sequence[str]) -> list[str]:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aegis-local", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = subparsers.add_parser("up", help="start the local stack in the foreground and print its endpoints")
    up.add_argument("--template", help="template.yaml to run (default: the checkout's)")
    up.add_argument("--stack-name", default="aegis-local", help="stack name used in resource names")
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument(
        "--parameter", action="append", metavar="NAME=VALUE", help="override a template parameter (repeatable)"
    )
    up.add_argument("--seed", action="store_true", help="also create the seeded vulnerable account")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON document")
    up.add_argument("--state", metavar="FILE", help="where to write the state file the other commands read")
    up.set_defaults(handler=cmd_up)

    seed = subparsers.add_parser("seed", help="create the seeded vulnerable account in a running stack")
    seed.add_argument("--endpoint-url", help=f"moto URL of the running stack (default: ${ENDPOINT_ENV})")
    seed.add_argument("--region", default=DEFAULT_REGION)
    seed.add_argument("--json", action="store_true", help="print everything that was created as JSON")
    seed.set_defaults(handler=cmd_seed)

    pending = subparsers.add_parser("pending", help="the phone: list the approver's pending requests")
    _add_phone_arguments(pending)
    pending.add_argument("--json", action="store_true")
    pending.set_defaults(handler=cmd_pending)

    for name, handler, help_text in (
        ("approve", cmd_approve, "the phone: approve a pending request"),
        ("deny", cmd_deny, "the phone: deny a pending request"),
    ):
        # No abbreviations: a word is one of these options exactly, or it is the request id.
        decide = subparsers.add_parser(name, help=help_text, allow_abbrev=False)
        _add_phone_arguments(decide)
        decide.add_argument(
            "auth_req_id",
            nargs="?",
            help="the request (default: the only pending one); it may begin with '-', as the provider's ids can",
        )
        decide.add_argument("--all", action="store_true", help="answer every pending request")
        decide.set_defaults(handler=handler)
        _ID_COMMANDS[name] = _option_arity(decide)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(_ids_as_positionals(sys.argv[1:] if argv is None else argv))
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
