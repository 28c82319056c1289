"""A function's cold start in a fresh interpreter, as Lambda starts one: the environment the test gives (throwaway AWS
credentials, nothing of the developer's AWS_ or AUTH0_ settings), the handler loaded by path, then what the test
builds. It reports what that cost: the boto3 sessions and resources opened, and every module loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from tests.support.stack import ROOT

# argv: the handler's path, then the code to run once it is loaded, with `module` the handler and `report` a dict
# whose entries join (or replace) the counts in the answer.
PROBE = """
import importlib.util, json, sys
import boto3, boto3.session

sessions, resources = [], []
open_session = boto3.session.Session.__init__
make_resource = boto3.session.Session.resource

def counting_session(self, *args, **kwargs):
    sessions.append(self)
    open_session(self, *args, **kwargs)

def counting_resource(self, service_name, *args, **kwargs):
    resources.append(service_name)
    return make_resource(self, service_name, *args, **kwargs)

boto3.session.Session.__init__ = counting_session
boto3.session.Session.resource = counting_resource
spec = importlib.util.spec_from_file_location("lambda_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
report = {}
exec(sys.argv[2])
print(json.dumps({"sessions": len(sessions), "resources": resources, "modules": sorted(sys.modules), **report}))
"""
AWS_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def cold_start(function: str, environment: Mapping[str, str], then: str = "") -> dict[str, Any]:
    """Load functions/<function>/app.py in a fresh process with `environment`, run `then`; the probe's report:
    "sessions" (how many boto3 sessions were opened), "resources" (the services of the boto3 resources built),
    "modules" (sys.modules at the end), and whatever `then` put in `report`."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTH0_"))},
        **AWS_ENVIRONMENT,
        **environment,
    }
    app = ROOT / "functions" / function / "app.py"
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(app), then], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))
