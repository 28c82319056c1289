"""The kill switch's HTTP routes as the template declares them and as the handler serves them: one list of routes and
scopes, so that the gateway's AuthorizationScopes and the function's own scope check cannot drift apart."""

from __future__ import annotations

from typing import Any

from aegis_killswitch.scopes import KILL_SCOPE, REARM_SCOPE
from tests.support.lambda_app import load_app
from tests.support.stack import pristine_template

# Route -> the scope the function requires (app.py), which the ops API's route must require too.
ROUTES = {("POST", "/kill"): KILL_SCOPE, ("POST", "/rearm"): REARM_SCOPE}


def http_api_events() -> dict[str, dict[str, Any]]:
    events = pristine_template()["Resources"]["KillSwitchFunction"]["Properties"].get("Events", {})
    return {name: event["Properties"] for name, event in events.items() if event["Type"] == "HttpApi"}


def test_every_route_of_the_kill_switch_is_on_the_ops_api_with_its_scope() -> None:
    events = http_api_events()
    declared = {
        (props["Method"].upper(), props["Path"]): props["Auth"]["AuthorizationScopes"] for props in events.values()
    }
    assert declared == {route: [scope] for route, scope in ROUTES.items()}
    assert {name: props["ApiId"] for name, props in events.items()} == {
        "KillRoute": {"Ref": "OpsApi"},
        "RearmRoute": {"Ref": "OpsApi"},
    }
    # A route opened at the gateway (`Authorizer: NONE`) would leave the function's check alone in front of it.
    assert all(props["Auth"].get("Authorizer", "Auth0Jwt") != "NONE" for props in events.values())


def test_the_function_url_stays_for_operators_without_the_api() -> None:
    properties = pristine_template()["Resources"]["KillSwitchFunction"]["Properties"]
    assert properties["FunctionUrlConfig"]["AuthType"] == "NONE"


def test_the_handler_serves_exactly_the_declared_routes() -> None:
    app = load_app("killswitch")
    # Powertools keeps its routes in these two lists (3.37); a change of that shows as an empty set here.
    served = {(route.method, route.path) for route in app.resolver._static_routes + app.resolver._dynamic_routes}
    assert served == set(ROUTES)
