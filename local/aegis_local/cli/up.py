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


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack, print every endpoint, wait for Ctrl-C (or SIGTERM), stop."""
    from aegis_local.aws.notifications import NOTIFICATIONS_FILE, NotificationCapture
    from aegis_local.aws.stack import LocalStack
    from aegis_local.aws.template import TemplateError

    parameters = parse_parameters(args.parameter or [], CommandFailed)
    stack = LocalStack(
        template_path=args.template, stack_name=args.stack_name, region=args.region, parameters=parameters
    )
    from aegis_local.cli.ops import remove_state_file, write_state_file

    stop_requested = threading.Event()
    state_file: Path | None = None
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
        description["handler_errors"] = stack.preload_handlers()
        if seeded is not None:
            description["seeded"] = _seed_summary(seeded)
        state_file = write_state_file(description, Path(args.state) if args.state else None)
        description["state_file"] = str(state_file)
        description["notifications_file"] = str(notifications.path)
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
        notifications.uninstall()
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
        seeded = seed_account(endpoint_session(endpoint, args.region), args.region)
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


def _seed_summary(seeded: Any) -> dict[str, int]:
    return {
        "security groups": len(seeded.security_groups),
        "buckets": len(seeded.buckets),
        "policies": len(seeded.policies),
        "kms keys": len(seeded.kms_keys),
        "expected findings": len(seeded.expected_findings),
        "clean look-alikes": len(seeded.lookalikes),
    }


def register(subparsers: Any) -> None:
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
    up.add_argument(
        "--reports", default="reports", metavar="DIR", help="where published notifications go (DIR/notifications.jsonl)"
    )
    up.set_defaults(handler=cmd_up)

    seed = subparsers.add_parser("seed", help="create the seeded vulnerable account in a running stack")
    seed.add_argument("--endpoint-url", help=f"moto URL of the running stack (default: ${ENDPOINT_ENV})")
    seed.add_argument("--region", default=DEFAULT_REGION)
    seed.add_argument("--json", action="store_true", help="print everything that was created as JSON")
    seed.set_defaults(handler=cmd_seed)
