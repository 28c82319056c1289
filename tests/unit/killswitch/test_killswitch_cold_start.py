"""What a cold start of the kill switch loads for a direct invocation (authorised by IAM, no token to verify): the
handler and the kill switch with its clients, but no JWT verification (python-jose and the cryptography bindings
under it), which only the function URL's callers need. That those callers' tokens are verified is tested in
test_killswitch_caller_auth and the integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parents[3] / "functions" / "killswitch" / "app.py"

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("killswitch_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.kill_switch()
print(json.dumps(sorted(sys.modules)))
"""


def test_a_direct_invocation_cold_start_loads_no_jwt_verification() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTH0_"))},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CONTROL_TABLE": "Control",
        "AUDIT_TABLE": "Audit",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:aegis-mission",
        "SCHEDULE_RULE_NAME": "aegis-schedule",
        "SCAN_RULE_NAME": "aegis-scan",
        "AUTH0_ISSUER": "https://tenant.example.com/",
        "AUTH0_CLIENT_ID": "killswitch-client",
        "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ks-AbCdEf",
        "AUTH0_AUDIENCE": "https://tenant.example.com/api/v2/",
        "APPROVER_SUBS": "auth0|approver-1",
        "REMEDIATION_ROLE_NAME": "RemediationRole",
        "KILLSWITCH_AUDIENCE": "https://aegis.example.com/killswitch",
        "HANDOFF_TABLE": "Handoff",
        "POWERTOOLS_SERVICE_NAME": "aegis-killswitch",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(APP)], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    modules = json.loads(completed.stdout)
    assert "aegis_killswitch.service" in modules, "the probe built the kill switch"
    assert [m for m in modules if m.split(".")[0] in {"jose", "cryptography"}] == []
    assert "aegis_auth.jwt_verify" not in modules
