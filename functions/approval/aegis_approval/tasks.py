"""The Step Functions task token of the waiting `RequestApproval` state: heartbeat, success, failure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from aegis_approval.errors import TaskGone

# The task is over on the Step Functions side (timed out, execution stopped, or already answered).
_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
ERROR_MAX_CHARS = 256
CAUSE_MAX_CHARS = 4096


class TaskTokens:
    def __init__(self, stepfunctions: Any) -> None:
        self._sfn = stepfunctions

    def heartbeat(self, task_token: str) -> None:
        self._call("send_task_heartbeat", taskToken=task_token)

    def succeed(self, task_token: str, output: Mapping[str, Any]) -> None:
        self._call("send_task_success", taskToken=task_token, output=json.dumps(dict(output), sort_keys=True))

    def fail(self, task_token: str, error: str, cause: str) -> None:
        self._call(
            "send_task_failure", taskToken=task_token, error=error[:ERROR_MAX_CHARS], cause=cause[:CAUSE_MAX_CHARS]
        )

    def _call(self, operation: str, **kwargs: str) -> None:
        try:
            getattr(self._sfn, operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _GONE:
                raise TaskGone(f"{operation}: {code}") from None
            raise
