"""`aegis-local up` and `aegis-local seed`: start the local stack in the foreground and say where everything is; seed
the vulnerable account into a running one."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from aegis_local.cli.common import (
    DEFAULT_REGION,
    ENDPOINT_ENV,
    EXIT_OK,
    ISSUER_ENV,
    CommandFailed,
    endpoint_session,
    parse_parameters,
)

__all__ = ["cmd_seed", "cmd_up", "describe_stack", "register", "render_description"]

# The template's HTTP API the operator commands talk to.
OPS_API = "OpsApi"


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print every endpoint, wait for Ctrl-C (or SIGTERM), stop."""
    from aegis_local.aws.notifications import NOTIFICATIONS_FILE, NotificationCapture
    from aegis_local.aws.stack import LocalStack
    from aegis_local.aws.template import TemplateError
    from aegis_local.console.server import start_local_console

    parameters = parse_parameters(args.parameter or [], CommandFailed)
    # The operator console (console/dist) on its own loopback port; its origin may call the ops API (CORS).
    console, console_problem = start_local_console(log=lambda line: None if args.json else print(line, flush=True))
    if console is not None:
        parameters = {**console.stack_parameters(), **parameters}
    stack = LocalStack(
        template_path=args.template, stack_name=args.stack_name, region=args.region, parameters=parameters
    )
    stop_requested = threading.Event()
    # What the stack publishes to its topic, as an operator's subscription would receive it; printed as it comes.
    notifications = NotificationCapture(
        Path(args.reports) / NOTIFICATIONS_FILE,
        on_notification=None if args.json else lambda published: print(f"notify  {published.line()}", flush=True),
    )
    previous = {
        signum: signal.signal(signum, lambda *_: stop_requested.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            stack.start()
        except (TemplateError, OSError, RuntimeError) as error:
            raise CommandFailed(f"the local stack did not start: {error}") from error
        notifications.install()
        seeded = None
        if args.seed:
            from aegis_local.scenario.seed import seed_account

            seeded = seed_account(endpoint_session(stack.endpoints.moto_url, args.region), args.region)
        description = describe_stack(stack)
        if console is not None:
            console.attach(stack)
            description["console"] = console.url
        else:
            description["console_not_served"] = console_problem
        description["handler_errors"] = stack.preload_handlers()
        if seeded is not None:
            description["seeded"] = _seed_summary(seeded)
        description["notifications_file"] = str(notifications.path)
        if args.json:
            print(json.dumps(description, sort_keys=True), flush=True)
        else:
            print(render_description(description, sign_in=_local_sign_in(stack)), flush=True)
        stop_requested.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        notifications.uninstall()
        stack.stop()
        if console is not None:
            console.stop()
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
        "http_apis": stack.http_api_urls(),
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
            **_operator_environment(stack),
        },
    }


def _operator_environment(stack: Any) -> dict[str, str]:
    """What the operator commands (`login`, `missions`, `kill`...) read: the ops API, where to log in, and the tables
    `audit verify` reads itself."""
    from aegis_local.cli.login import API_AUDIENCE_ENV, CLI_CLIENT_ID_ENV
    from aegis_local.cli.login import ISSUER_ENV as LOGIN_ISSUER_ENV
    from aegis_local.cli.ops import AUDIT_TABLE_ENV, MISSIONS_TABLE_ENV
    from aegis_local.cli.ops_api import API_URL_ENV

    environment: dict[str, str] = {}
    apis = stack.http_api_urls()
    if OPS_API in apis:
        environment[API_URL_ENV] = apis[OPS_API]
    if stack.endpoints.issuer:
        environment[LOGIN_ISSUER_ENV] = stack.endpoints.issuer
        environment[API_AUDIENCE_ENV] = str(stack.parameters.get("OpsApiAudience", ""))
        device_client = _device_client(stack.emulator.config)
        if device_client is not None:
            environment[CLI_CLIENT_ID_ENV] = device_client
    tables = stack.table_names()
    for variable, logical_id in ((MISSIONS_TABLE_ENV, "MissionsTable"), (AUDIT_TABLE_ENV, "AuditTable")):
        if logical_id in tables:
            environment[variable] = tables[logical_id]
    return environment


def _device_client(config: Any) -> str | None:
    """The emulated tenant's application for the CLI: the public client with the device authorization grant."""
    from aegis_local.cli.login import DEVICE_CODE_GRANT

    return next((client.client_id for client in config.clients if DEVICE_CODE_GRANT in client.grant_types), None)


def _local_sign_in(stack: Any) -> dict[str, str]:
    """The emulated tenant's people who may sign in (console or `aegis-local login`), with the passwords generated
    for this run: a local tenant's throwaway credentials, printed on the terminal of whoever started it so that
    they can sign in at all; never written to the JSON description, a file or a log."""
    if stack.emulator is None:
        return {}
    config = stack.emulator.config
    return {
        user.email: config.user_password(user.email)
        for user in config.users
        if getattr(user, "email", None) and getattr(user, "password", None) is not None
    }


def render_description(description: dict[str, Any], sign_in: dict[str, str] | None = None) -> str:
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
    for name, url in description["http_apis"].items():
        lines.append(f"  HTTP API {name}:  {url}")
    if description.get("console"):
        lines.append(f"  console           {description['console']}")
    elif description.get("console_not_served"):
        lines.append(f"  console           not served: {description['console_not_served']}")
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
    if sign_in:
        width = max(len(email) for email in sign_in)
        lines += [
            "",
            "SIGN IN (this run's local users; `aegis-local login`, or the console)",
            *(f"  {email.ljust(width)}  password {password}" for email, password in sign_in.items()),
        ]
    exports = " ".join(f"{name}={value}" for name, value in description["environment"].items())
    lines += [
        "",
        "FROM ANOTHER SHELL",
        f"  export {exports}",
        "  aegis-local seed",
        "  aegis-local pending",
        *(
            [
                "  aegis-local login",
                "  aegis-local scan --dry-run | missions | show MISSION_ID | audit MISSION_ID | kill --reason TEXT",
            ]
            if OPS_API in description.get("http_apis", {})
            else []
        ),
        *(
            [f"  notifications published to the topic are printed here and kept in {description['notifications_file']}"]
            if description.get("notifications_file")
            else []
        ),
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def cmd_seed(args: argparse.Namespace) -> int:
    """Seed the vulnerable account into the moto server of a running stack."""
    from aegis_local.cli.scan_account import ScanAccountError, ensure_reachable, validate_endpoint_url
    from aegis_local.scenario.seed import AlreadySeeded, seed_account

    endpoint = args.endpoint_url or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        raise CommandFailed(f"give --endpoint-url (or set {ENDPOINT_ENV}) to the moto URL `aegis-local up` printed")
    try:
        endpoint = validate_endpoint_url(endpoint)
        ensure_reachable(endpoint)
    except ScanAccountError as error:
        raise CommandFailed(str(error)) from error
    try:
        seeded = seed_account(endpoint_session(endpoint, args.region), args.region)
    except ClientError as error:
        # The seed creates fixed names, so a second run on the same account collides with the first.
        raise CommandFailed(f"seeding failed ({error}); was this account seeded already?") from error
    except AlreadySeeded as error:
        raise CommandFailed(f"{error}: it is seeded already, once per region") from error
    summary = _seed_summary(seeded)
    if args.json:
        print(json.dumps(seeded.model_dump(mode="json"), sort_keys=True))
    else:
        print(f"seeded account {seeded.account_id} in {seeded.region} at {endpoint}")
        for name, value in summary.items():
            print(f"  {name}: {value}")
    return EXIT_OK


def _seed_summary(seeded: Any) -> dict[str, int]:
    return {
        "security groups": len(seeded.security_groups),
        "buckets": len(seeded.buckets),
        "policies": len(seeded.policies),
        "kms keys": len(seeded.kms_keys),
        "expected findings": len(seeded.expected_findings),
        "clean look-alikes": len(seeded.lookalikes),
    }


UP_EXAMPLES = """\
examples:
  aegis-local up --seed                    start, with the vulnerable account seeded
  aegis-local up --json                    print the endpoints as one JSON document instead
  aegis-local up --parameter DryRun=true         every scheduled or requested mission only plans"""

SEED_EXAMPLES = """\
examples:
  aegis-local seed                         the stack of $AWS_ENDPOINT_URL (as `aegis-local up` exports it)
  aegis-local seed --endpoint-url http://127.0.0.1:5000 --json"""


def register(subparsers: Any) -> None:
    up = subparsers.add_parser(
        "up",
        help="start the local stack in the foreground and print its endpoints",
        description="Start AegisCloud on this machine (AWS emulated, an Auth0 emulator, every function of the "
        "template), print where everything is and what to export in another shell, and run until Ctrl-C.",
        epilog=UP_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("--template", help="template.yaml to run (default: the checkout's)")
    up.add_argument("--stack-name", default="aegis-local", help="stack name used in resource names")
    up.add_argument("--region", default=DEFAULT_REGION)
    up.add_argument(
        "--parameter", action="append", metavar="NAME=VALUE", help="override a template parameter (repeatable)"
    )
    up.add_argument("--seed", action="store_true", help="also create the seeded vulnerable account")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON document")
    up.add_argument(
        "--reports", default="reports", metavar="DIR", help="where published notifications go (DIR/notifications.jsonl)"
    )
    up.set_defaults(handler=cmd_up)

    seed = subparsers.add_parser(
        "seed",
        help="create the seeded vulnerable account in a running stack",
        description="Create the seeded vulnerable account (open security groups, public buckets, weak policies...) "
        "in the emulated AWS of a running local stack, for the scans to find.",
        epilog=SEED_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    seed.add_argument("--endpoint-url", help=f"moto URL of the running stack (default: ${ENDPOINT_ENV})")
    seed.add_argument("--region", default=DEFAULT_REGION)
    seed.add_argument("--json", action="store_true", help="print everything that was created as JSON")
    seed.set_defaults(handler=cmd_seed)
