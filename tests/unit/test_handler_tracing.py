"""X-Ray on Lambda (Tracing: Active): each handler's Tracer patches exactly the libraries its function talks through
(botocore for AWS; httpx for the identity provider, on the side that holds credentials), so AWS and Auth0 calls
are traced and a cold start imports and patches nothing else (no sqlite3, requests or database driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, json, sys
path = sys.argv[1]
sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
spec = importlib.util.spec_from_file_location("lambda_app", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import botocore.client
httpx = sys.modules.get("httpx")
print(json.dumps({
    "tracing": not module.tracer.disabled,
    "botocore": hasattr(botocore.client.BaseClient._make_api_call, "__wrapped__"),
    "httpx": httpx is not None and httpx.Client.__module__.startswith("aws_xray_sdk"),
    "sqlite3": "sqlite3" in sys.modules,
}))
"""

# What a Lambda sandbox of each function sets that the handler reads at import time.
ENVIRONMENT = {
    "agent": {"POWERTOOLS_SERVICE_NAME": "aegis-agent"},
    "approval": {"POWERTOOLS_SERVICE_NAME": "aegis-approval"},
    "executor": {"POWERTOOLS_SERVICE_NAME": "aegis-executor", "IDEMPOTENCY_TABLE": "Idempotency"},
    "killswitch": {"POWERTOOLS_SERVICE_NAME": "aegis-killswitch"},
    "notifier": {"POWERTOOLS_SERVICE_NAME": "aegis-notifier"},
    "ops": {"POWERTOOLS_SERVICE_NAME": "aegis-ops"},
    "orgscan": {"POWERTOOLS_SERVICE_NAME": "aegis-org-scan"},
    "validator": {"POWERTOOLS_SERVICE_NAME": "aegis-validator"},
}
TALKS_TO_THE_PROVIDER = {"approval", "executor", "killswitch", "ops"}


@pytest.mark.parametrize("function", sorted(ENVIRONMENT))
def test_the_handler_traces_aws_and_the_provider_and_patches_nothing_else(function: str, tmp_path: Path) -> None:
    code_dir = ROOT / "functions" / function
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN"))},
        "LAMBDA_TASK_ROOT": str(code_dir),
        "AWS_LAMBDA_FUNCTION_NAME": f"aegis-{function}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "TMPDIR": str(tmp_path),
        **ENVIRONMENT[function],
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(code_dir / "app.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    traced = json.loads(completed.stdout.strip().splitlines()[-1])
    assert traced == {
        "tracing": True,
        "botocore": True,
        "httpx": function in TALKS_TO_THE_PROVIDER,
        "sqlite3": False,
    }
