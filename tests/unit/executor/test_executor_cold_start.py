"""What a cold start of the executor builds: in a fresh process, loading the handler and building the executor
opens one boto3 session (the default one; the idempotency store uses it too) and one DynamoDB resource for every
table, and a remediation session then reads no AWS data file the executor's own clients have loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parents[3] / "functions" / "executor" / "app.py"

PROBE = """
import importlib.util, json, sys
import boto3, boto3.session, botocore.loaders

sessions, resources, files_read = [], [], []
open_session = boto3.session.Session.__init__
make_resource = boto3.session.Session.resource
load_file = botocore.loaders.JSONFileLoader.load_file

def counting_session(self, *args, **kwargs):
    sessions.append(self)
    open_session(self, *args, **kwargs)

def counting_resource(self, service_name, *args, **kwargs):
    resources.append(service_name)
    return make_resource(self, service_name, *args, **kwargs)

def recording_load_file(self, file_path):
    files_read.append(file_path)
    return load_file(self, file_path)

boto3.session.Session.__init__ = counting_session
boto3.session.Session.resource = counting_resource
botocore.loaders.JSONFileLoader.load_file = recording_load_file

spec = importlib.util.spec_from_file_location("executor_app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.executor()
built = {"sessions": len(sessions), "resources": resources}

from aegis_executor.credentials import _fresh_botocore_session
files_read.clear()
remediation = boto3.Session(
    botocore_session=_fresh_botocore_session(),
    aws_access_key_id="ASIAEXAMPLE",
    aws_secret_access_key="example",
    aws_session_token="example",
    region_name="us-east-1",
)
remediation.client("sts")
built["remediation_files_read"] = [path.rsplit("/", 2)[-2:] for path in files_read]
print(json.dumps(built))
"""


def test_a_cold_executor_builds_one_session_and_one_dynamodb_resource() -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AUTH0_"))},
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "IDEMPOTENCY_TABLE": "Idempotency",
        "CONTROL_TABLE": "Control",
        "AUDIT_TABLE": "Audit",
        "HANDOFF_TABLE": "Handoff",
        "AUTH0_ISSUER": "https://tenant.example.com/",
        "AUTH0_CLIENT_ID": "executor-client",
        "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:auth0-AbCdEf",
        "AUTH0_AUDIENCE": "https://aegis.example.com/api",
        "APPROVAL_CLIENT_ID": "approval-client",
        "TOKEN_VAULT_CONNECTION": "aws-oidc",
        "REMEDIATION_ROLE_ARN": "arn:aws:iam::123456789012:role/RemediationRole",
        "POWERTOOLS_SERVICE_NAME": "aegis-executor",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, str(APP)], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    built = json.loads(completed.stdout.strip().splitlines()[-1])
    assert built["sessions"] == 1  # boto3's default session
    assert built["resources"] == ["dynamodb"]
    assert built["remediation_files_read"] == []
