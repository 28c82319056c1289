"""`member/template.yaml` read as one member account's stack would be, with the same tools the security template's
tests use (tests.support.stack.Stack, the IAM evaluator of tests.support.iam_policy).

The member's values are the security stack's own (tests.support.stack.EXAMPLE_PARAMETERS) where the member template
has the same parameter, as an operator deploying the StackSet passes them, plus the security account's agent and
kill switch role ARNs as the security stack's test deployment names them.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from aegis_local.aws.template import load_template, parameter_values, predicted_deployment
from tests.support.stack import EXAMPLE_PARAMETERS, ROOT, Stack, build_stack

MEMBER_TEMPLATE_PATH = ROOT / "member" / "template.yaml"
MEMBER_ACCOUNT = "210987654321"
ORGANIZATION = "o-a1b2c3d4e5"
# The security stack this member trusts: the example deployment of template.yaml (account 123456789012).
SECURITY_ACCOUNT = "123456789012"


@cache
def _security() -> Stack:
    return build_stack(OrganizationId=ORGANIZATION)


def security_stack() -> Stack:
    """The security account's stack these member values come from (template.yaml, in ORGANIZATION)."""
    return _security()


def member_parameters(template: dict[str, Any], **overrides: str) -> dict[str, str]:
    """The member template's parameter values as the StackSet is given them (see the module docstring)."""
    security = _security()
    declared = template.get("Parameters") or {}
    shared = {name: value for name, value in security.parameters.items() if name in declared}
    values = {
        **{name: EXAMPLE_PARAMETERS[name] for name in declared if name in EXAMPLE_PARAMETERS},
        **shared,
        "SecurityAccountId": SECURITY_ACCOUNT,
        "SecurityAgentRoleArn": security.arn("AgentRole"),
        "SecurityKillSwitchRoleArn": security.arn("KillSwitchRole"),
        **overrides,
    }
    return parameter_values(template, {name: value for name, value in values.items() if name in declared})


@cache
def _member_template() -> dict[str, Any]:
    return load_template(MEMBER_TEMPLATE_PATH)


def pristine_member_template() -> dict[str, Any]:
    """A fresh deep copy of member/template.yaml, safe to modify in a test."""
    return copy.deepcopy(_member_template())


class MemberStack(Stack):
    """A member account's stack. Its policies name no resource of the security stack, so a resource that is not one
    of its own is `external:<arn>` (Stack.owner also looks for the security stack's mission executions, which a
    member template has none of)."""

    def owner(self, resource: str) -> str:
        try:
            return super().owner(resource)
        except KeyError:
            return f"external:{resource}"


def build_member_stack(
    template: dict[str, Any] | None = None, /, *, account: str = MEMBER_ACCOUNT, **overrides: str
) -> MemberStack:
    """Resolve `template` (default: member/template.yaml) as deployed in member `account`."""
    source = template if template is not None else pristine_member_template()
    parameters = member_parameters(source, **overrides)
    return MemberStack(source, parameters, predicted_deployment(source, parameters, {"AWS::AccountId": account}))
