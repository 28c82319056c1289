"""What a cold start of the executor builds: in a fresh process, loading the handler and building the executor
opens one boto3 session (the default one; the idempotency store uses it too) and one DynamoDB resource for every
table, and a remediation session then reads no AWS data file the executor's own clients have loaded."""

from __future__ import annotations

from tests.support.cold_start import cold_start

# After the executor is built: its counts, then what a remediation session reads from disk.
THEN = """
module.executor()
report.update(sessions=len(sessions), resources=list(resources))
import botocore.loaders
from aegis.aws_sessions import fresh_session
files_read = []
load_file = botocore.loaders.JSONFileLoader.load_file

def recording_load_file(self, file_path):
    files_read.append(file_path)
    return load_file(self, file_path)

botocore.loaders.JSONFileLoader.load_file = recording_load_file
remediation = fresh_session(
    aws_access_key_id="ASIAEXAMPLE",
    aws_secret_access_key="example",
    aws_session_token="example",
    region_name="us-east-1",
)
remediation.client("sts")
report["remediation_files_read"] = [path.rsplit("/", 2)[-2:] for path in files_read]
"""


def test_a_cold_executor_builds_one_session_and_one_dynamodb_resource() -> None:
    environment = {
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
    built = cold_start("executor", environment, then=THEN)
    assert built["sessions"] == 1  # boto3's default session
    assert built["resources"] == ["dynamodb"]
    assert built["remediation_files_read"] == []
