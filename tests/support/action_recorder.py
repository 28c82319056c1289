"""Which IAM actions the AWS calls made through one boto3 Session need: what a remediation really did, to compare
with what its kind declares."""

from __future__ import annotations

import boto3

from aegis_executor.iam_actions import iam_action_of


class ActionRecorder:
    """Records the IAM action of every AWS call made through one boto3 Session (botocore `before-call` events)."""

    def __init__(self, session: boto3.Session) -> None:
        self.actions: list[str] = []
        session.events.register("before-call", self._record)

    def _record(self, model: object, **_: object) -> None:
        self.actions.append(iam_action_of(model))  # type: ignore[arg-type]

    def take(self) -> list[str]:
        taken, self.actions = self.actions, []
        return taken
