"""The executor's handler stays lean and on its side of the boundary: no LangGraph, no agent code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parents[3] / "functions" / "executor" / "app.py"

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("executor_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def test_loading_the_handler_imports_neither_langgraph_nor_another_trust_domain() -> None:
    env = {
        **os.environ,
        "IDEMPOTENCY_TABLE": "Idempotency",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "aegis-executor",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(APP)], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    modules = json.loads(completed.stdout)
    assert "aegis_executor.execute" in modules, "the probe loaded the handler"
    forbidden = [
        m
        for m in modules
        if m.split(".")[0] in {"langgraph", "langchain_core", "aegis_agent", "aegis_approval", "aegis_killswitch"}
    ]
    assert forbidden == []
