"""The small test functions of this folder behind a real `LambdaRouter`, for the tests of the Lambda runtime and its
logs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aegis_local.aws.lambdas import FunctionEnvironment, FunctionSpec, LambdaRouter

HERE = Path(__file__).parent
ARN = "arn:aws:lambda:us-east-1:123456789012:function:"


def function_spec(logical_id: str, code_dir: Path, handler: str = "app.handler", **changes: object) -> FunctionSpec:
    values: dict[str, object] = {
        "logical_id": logical_id,
        "function_name": f"test-{logical_id}",
        "function_arn": f"{ARN}test-{logical_id}",
        "code_dir": code_dir,
        "handler": handler,
        "timeout_seconds": 30,
        "memory_mb": 256,
        "environment": {},
    }
    values.update(changes)
    return FunctionSpec(**values)  # type: ignore[arg-type]


@contextmanager
def running_router(specs: list[FunctionSpec]) -> Iterator[LambdaRouter]:
    """A router over `specs` in an installed function environment, as the local stack runs it; drained at the end."""
    FunctionEnvironment.install()
    routed = LambdaRouter(specs, runtime_environment={"AWS_REGION": "us-east-1"})
    try:
        yield routed
    finally:
        routed.wait_idle(5)
        routed.close()
        FunctionEnvironment.uninstall()
