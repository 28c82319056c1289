"""At runtime, in a fresh interpreter, loading the agent's handlers and building its graph loads no credential code:
no `aegis_auth`, no `jose`, no other function's package. (The AST boundary test checks the source; this checks
what actually ends up in the process, transitive imports included.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FORBIDDEN = ("aegis_auth", "jose", "aegis_approval", "aegis_executor", "aegis_killswitch")

PROBE = """
import importlib.util, json, sys, types
spec = importlib.util.spec_from_file_location("agent_app", "functions/agent/app.py")
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
import aegis_agent, aegis_agent.checkpointer, aegis_agent.graph, aegis_agent.service, aegis.scan, aegis.checks
loaded = sorted({name.split(".")[0] for name in sys.modules})
own = [m for name, m in sys.modules.items() if name.startswith("aegis_agent") or name == "agent_app"]
referenced = sorted(
    {
        value.__name__.split(".")[0]
        for module in own
        for value in vars(module).values()
        if isinstance(value, types.ModuleType)
    }
)
print(json.dumps({"loaded": loaded, "referenced_by_agent_modules": referenced}))
"""


def test_the_agent_process_loads_no_credential_code() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(completed.stdout.strip().splitlines()[-1])
    assert "aegis_agent" in probe["loaded"]
    assert [name for name in FORBIDDEN if name in probe["loaded"]] == []
    # httpx is loaded by langgraph itself (langgraph.runtime imports langgraph_sdk); no agent module refers to it.
    assert "httpx" not in probe["referenced_by_agent_modules"]
    assert [name for name in FORBIDDEN if name in probe["referenced_by_agent_modules"]] == []
