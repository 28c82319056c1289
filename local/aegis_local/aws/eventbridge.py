"""Deliver EventBridge events to Lambda targets the way EventBridge does.

moto 5.2.5's `Rule.send_to_targets` raises NotImplementedError for a Lambda target (so `PutEvents` on a bus
with such a rule fails), delivers even for a DISABLED rule, and treats a schedule-only rule (no pattern) as
matching every event. While a local stack runs, `EventBridgeDelivery` wraps it: a rule that is not ENABLED
delivers nothing, a schedule-only rule receives no put events, and for an enabled rule whose event pattern matches
(moto's own matcher) each Lambda target gets an asynchronous invocation with what EventBridge would send — the
event envelope (`version, id, detail-type, source, account, time, region, resources, detail`), or the target's
`Input`, `InputPath` or `InputTransformer` result. Other target kinds keep moto's behaviour.

Scheduled rules never fire by themselves locally; `fire_schedule` delivers the "Scheduled Event" EventBridge
would send at the next tick.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from aegis_local.aws.lambdas import UnknownFunction
from aegis_local.aws.lambdas.moto_bridge import RouterHook

__all__ = ["EventBridgeDelivery", "RuleNotFound", "event_envelope"]

logger = logging.getLogger(__name__)


class RuleNotFound(LookupError):
    """No rule of that name on that event bus."""


def _iso_time(value: Any) -> str:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def event_envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it to a target (moto's internal copy has extra keys and epoch times)."""
    return {
        "version": str(event.get("version", "0")),
        "id": str(event["id"]),
        "detail-type": event["detail-type"],
        "source": event["source"],
        "account": str(event["account"]),
        "time": _iso_time(event.get("time")),
        "region": event["region"],
        "resources": list(event.get("resources") or []),
        "detail": event.get("detail") if event.get("detail") is not None else {},
    }


def _target_input(target: dict[str, Any], envelope: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = [match.value for match in parse(str(target["InputPath"])).find(envelope)]
        return json.dumps(matches[0] if matches else None)
    if "InputTransformer" in target:
        from moto.events.utils import EventTemplateParser

        transformer = target["InputTransformer"]
        result = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=envelope,  # type: ignore[arg-type]
        )
        return result if isinstance(result, str) else json.dumps(result)
    return json.dumps(envelope)


def _is_lambda_target(target: dict[str, Any]) -> bool:
    return str(target.get("Arn", "")).split(":")[2:3] == ["lambda"]


class EventBridgeDelivery(RouterHook):
    """Installs Lambda-target delivery into moto's events backend while a local stack runs (one per process)."""

    _lock = threading.Lock()
    _busy = "another local stack already delivers EventBridge events in this process"
    _original: Any = None

    @classmethod
    def _patch(cls) -> None:
        from moto.events.models import Rule

        if cls._original is None:
            cls._original = Rule.send_to_targets
            Rule.send_to_targets = _send_to_targets  # type: ignore[method-assign,assignment]

    @classmethod
    def _unpatch(cls) -> None:
        from moto.events.models import Rule

        if cls._original is not None:
            Rule.send_to_targets = cls._original  # type: ignore[method-assign]
            cls._original = None

    @classmethod
    def deliver_to_lambda(cls, rule: Any, target: dict[str, Any], envelope: dict[str, Any]) -> None:
        router = cls._router
        function_arn = str(target["Arn"])
        if router is None:
            logger.warning("rule %s: no local stack routes Lambda, event %s dropped", rule.name, envelope["id"])
            return
        try:
            router.invoke(function_arn, _target_input(target, envelope), "Event")
        except UnknownFunction:
            logger.warning("rule %s: target %s is not a function of the local stack", rule.name, function_arn)

    @classmethod
    def fire_schedule(cls, account_id: str, region: str, rule_name: str, event_bus: str = "default") -> str | None:
        """Deliver the "Scheduled Event" of a schedule rule now. Returns the event id, or None when the rule is
        not ENABLED (EventBridge does not fire a disabled schedule)."""
        from moto.events.models import events_backends

        bus = events_backends[account_id][region].event_buses.get(event_bus)
        rule = bus.rules.get(rule_name) if bus is not None else None
        if rule is None:
            raise RuleNotFound(f"no rule {rule_name!r} on event bus {event_bus!r}")
        if not rule.scheduled_expression:
            raise RuleNotFound(f"rule {rule_name!r} has no schedule expression")
        if not str(rule.state).startswith("ENABLED"):
            return None
        event_id = str(uuid.uuid4())
        _deliver(
            rule,
            {
                "version": "0",
                "id": event_id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": account_id,
                "time": datetime.now(UTC).timestamp(),
                "region": region,
                "resources": [rule.arn],
                "detail": {},
            },
            transform_input=True,
        )
        return event_id


def _send_to_targets(rule: Any, original_event: dict[str, Any], transform_input: bool = True) -> None:
    """`moto.events.models.Rule.send_to_targets` with EventBridge's Lambda delivery, rule state and matching."""
    if not rule.event_pattern.get_pattern():
        # A schedule-only rule has no pattern, which moto's matcher treats as "match everything"; EventBridge
        # never routes put events to it.
        return
    if not rule.event_pattern.matches_event(original_event):
        return
    _deliver(rule, original_event, transform_input=transform_input)


def _deliver(rule: Any, original_event: dict[str, Any], *, transform_input: bool) -> None:
    if not str(rule.state).startswith("ENABLED"):
        return
    lambda_targets = [target for target in rule.targets if _is_lambda_target(target)]
    other_targets = [target for target in rule.targets if not _is_lambda_target(target)]
    if lambda_targets:
        envelope = event_envelope(original_event)
        for target in lambda_targets:
            EventBridgeDelivery.deliver_to_lambda(rule, target, envelope)
    if other_targets and EventBridgeDelivery._original is not None:
        others_only = copy.copy(rule)
        others_only.targets = other_targets
        EventBridgeDelivery._original(others_only, original_event, transform_input)
