"""`roles.json`: what each AegisCloud IAM role may do, by service, and every scope of the ops API with its routes,
read from template.yaml at build time for the console's Scopes Radar.

Nothing is resolved against a deployment: a resource reads as the template names it (`MissionsTable`, `*`,
`arn:${AWS::Partition}:states:...`), which is what an operator reviewing the template sees.

    python -m aegis_local.console.roles OUTPUT [--template template.yaml]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aegis_local.aws.stack import default_template_path
from aegis_local.aws.template import TemplateError, load_template

__all__ = ["RolesError", "api_scopes", "roles_document", "write_roles"]

ROLE_TYPE = "AWS::IAM::Role"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")


class RolesError(TemplateError):
    """The template holds a role or a route this generator cannot describe; the message names it."""


def _label(value: Any) -> str:
    """How the template names a resource: a logical id for Ref/GetAtt, the pattern for Sub, both arms of an If."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Ref":
            return str(argument)
        if function == "Fn::GetAtt":
            return str(argument[0]) if isinstance(argument, list) else str(argument).split(".")[0]
        if function == "Fn::Sub":
            return str(argument[0] if isinstance(argument, list) else argument)
        if function == "Fn::If" and isinstance(argument, list) and len(argument) == 3:
            return " or ".join(_label(arm) for arm in argument[1:] if arm != {"Ref": "AWS::NoValue"})
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            return str(argument[0]).join(_label(part) for part in _as_list(argument[1]))
    raise RolesError(f"cannot name the resource {value!r}")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _statements(role_id: str, properties: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for entry in properties.get("Policies") or []:
        # A whole policy a template condition keeps (`!If [Cond, policy, !Ref AWS::NoValue]`), like a statement.
        policy, policy_condition = _conditional_statement(entry)
        if policy is None:
            continue
        document = policy.get("PolicyDocument")
        if not isinstance(document, Mapping):
            raise RolesError(f"{role_id}: policy {policy!r} has no PolicyDocument object")
        for item in _as_list(document.get("Statement")):
            statement, condition = _conditional_statement(item)
            if statement is None:
                continue
            if "Action" not in statement:
                raise RolesError(f"{role_id}: a statement of {policy.get('PolicyName')!r} has no Action")
            when = " and ".join(c for c in (policy_condition, condition) if c)
            yield {**statement, "WhenCondition": when} if when else statement
    for arn in properties.get("ManagedPolicyArns") or []:
        # A managed policy's actions are not in the template: say which one is attached.
        yield {"Sid": "ManagedPolicy", "Effect": "Allow", "Action": ["(managed policy)"], "Resource": [_label(arn)]}


def _conditional_statement(entry: Any) -> tuple[Mapping[str, Any] | None, str | None]:
    """A statement (or policy), or the one a template condition keeps (`!If [Cond, statement, !Ref AWS::NoValue]`)
    with that condition's name; (None, None) for an arm that is AWS::NoValue."""
    if isinstance(entry, Mapping) and set(entry) == {"Fn::If"}:
        condition, kept, otherwise = entry["Fn::If"]
        if otherwise != {"Ref": "AWS::NoValue"} or not isinstance(kept, Mapping):
            raise RolesError(f"only `!If [Condition, statement, !Ref AWS::NoValue]` is understood, not {entry!r}")
        return kept, str(condition)
    if entry == {"Ref": "AWS::NoValue"}:
        return None, None
    if not isinstance(entry, Mapping):
        raise RolesError(f"a policy statement must be an object, not {entry!r}")
    return entry, None


def _services(role_id: str, properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_service: dict[str, list[dict[str, Any]]] = {}
    for statement in _statements(role_id, properties):
        actions = [str(action) for action in _as_list(statement["Action"])]
        resources = [_label(resource) for resource in _as_list(statement.get("Resource", "*"))]
        grouped: dict[str, list[str]] = {}
        for action in actions:
            service = action.split(":", 1)[0] if ":" in action else "managed"
            grouped.setdefault(service, []).append(action)
        for service, service_actions in grouped.items():
            by_service.setdefault(service, []).append(
                {
                    "sid": str(statement.get("Sid", "")),
                    "effect": str(statement.get("Effect", "Allow")),
                    "actions": sorted(service_actions),
                    "resources": resources,
                    "conditional": bool(statement.get("Condition")),
                    "when": statement.get("WhenCondition"),
                }
            )
    return [{"service": service, "statements": by_service[service]} for service in sorted(by_service)]


def _users_of_roles(resources: Mapping[str, Any]) -> dict[str, list[str]]:
    """Role logical id -> the functions and state machines that run with it."""
    users: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") not in (*FUNCTION_TYPES, *STATE_MACHINE_TYPES):
            continue
        role = (resource.get("Properties") or {}).get("Role")
        if role is not None:
            users.setdefault(_label(role), []).append(logical_id)
    return users


def api_scopes(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every scope some HttpApi route requires, in the order the template first uses it, with its routes."""
    routes: dict[str, list[str]] = {}
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if not isinstance(event, Mapping) or event.get("Type") != "HttpApi":
                continue
            properties = event.get("Properties") or {}
            route = f"{str(properties.get('Method', 'ANY')).upper()} {properties.get('Path', '/')}"
            for scope in (properties.get("Auth") or {}).get("AuthorizationScopes") or []:
                routes.setdefault(str(scope), []).append(route)
    return [{"scope": scope, "routes": sorted(found)} for scope, found in routes.items()]


def roles_document(template: Mapping[str, Any]) -> dict[str, Any]:
    resources: Mapping[str, Any] = template.get("Resources") or {}
    users = _users_of_roles(resources)
    roles = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != ROLE_TYPE:
            continue
        properties = resource.get("Properties") or {}
        roles.append(
            {
                "role": logical_id,
                "description": " ".join(str(properties.get("Description", "")).split()),
                "condition": resource.get("Condition"),
                "used_by": sorted(users.get(logical_id, [])),
                "services": _services(logical_id, properties),
            }
        )
    return {"api_scopes": api_scopes(template), "roles": roles}


def write_roles(output: Path, template_path: Path | None = None) -> Path:
    document = roles_document(load_template(template_path or default_template_path()))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aegis_local.console.roles", description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path, help="where to write roles.json")
    parser.add_argument("--template", type=Path, help="template.yaml (default: the checkout's)")
    args = parser.parse_args(argv)
    try:
        written = write_roles(args.output, args.template)
    except (TemplateError, OSError) as error:
        print(f"roles.json: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
