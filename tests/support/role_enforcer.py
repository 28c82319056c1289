"""IAM for DynamoDB in tests: each request a boto3 client makes is evaluated against a role's policies from
template.yaml (tests.support.iam_policy, IAM's semantics) and refused with AccessDeniedException, unsent, when the
role would not be allowed it. moto enforces no IAM at all; with this, a test runs the real code under the real role
and fails where AWS would refuse, condition keys included (`dynamodb:ReturnValues`).

Requests are described as IAM sees them: the action `dynamodb:<Operation>`, the table's ARN (the index's for a Query
or Scan with IndexName, each table's for a batch) and the request context (`dynamodb:ReturnValues` when the request
sets ReturnValues). Test tables have their own names; `tables` maps each to the template's logical id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from tests.support.iam_policy import Request, allows
from tests.support.stack import Stack, build_stack

_EVENT = "before-parameter-build.dynamodb"


class RoleEnforcer:
    def __init__(self, role: str, tables: Mapping[str, str], stack: Stack | None = None) -> None:
        self.role = role
        self._stack = stack or build_stack()
        self._tables = dict(tables)
        self._documents = [document for _, document in self._stack.policy_documents(role)]
        # Every request evaluated, allowed or not: (action, resource logical id, context, allowed).
        self.seen: list[tuple[str, str, dict[str, str], bool]] = []

    def install(self, client: Any) -> Any:
        """Enforce on `client` (a DynamoDB client, or a Table's `meta.client`) and return it."""
        client.meta.events.register(_EVENT, self._check, unique_id=f"role-enforcer-{id(self)}")
        return client

    def uninstall(self, client: Any) -> None:
        client.meta.events.unregister(_EVENT, unique_id=f"role-enforcer-{id(self)}")

    def requests(self, operation: str, params: Mapping[str, Any]) -> list[tuple[Request, str]]:
        action = f"dynamodb:{operation}"
        context = {"dynamodb:ReturnValues": str(params["ReturnValues"])} if "ReturnValues" in params else {}
        if operation in {"BatchWriteItem", "BatchGetItem"}:
            names = list(params.get("RequestItems", {}))
        elif operation in {"TransactWriteItems", "TransactGetItems"}:
            raise AssertionError(f"{operation} is not modelled by the role enforcer")
        else:
            names = [str(params["TableName"])]
        found = []
        for name in names:
            logical = self._tables.get(name)
            if logical is None:
                raise AssertionError(f"table {name} is not mapped to a table of template.yaml")
            resource = self._stack.arn(logical)
            described = logical
            if operation in {"Query", "Scan"} and params.get("IndexName"):
                resource = f"{resource}/index/{params['IndexName']}"
                described = f"{logical}/index/{params['IndexName']}"
            found.append((Request(action=action, resource=resource, context=context), described))
        return found

    def _check(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        for request, described in self.requests(model.name, params):
            allowed = allows(self._documents, request)
            self.seen.append((request.action, described, dict(request.context), allowed))
            if not allowed:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "AccessDeniedException",
                            "Message": f"{self.role} is not authorized to perform {request.action} on {described}",
                        }
                    },
                    model.name,
                )
