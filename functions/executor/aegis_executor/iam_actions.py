"""Which IAM action authorises a given boto3 operation.

Most operations are authorised by `<service prefix>:<OperationName>`. The exceptions are the ones AWS documents
under a different action name; the S3 public-access-block operations are the only ones the catalogue needs. The
runtime guard of the remediation session and the tests that prove each remediation stays inside its declared
actions both use this one mapping.
"""

from __future__ import annotations

from botocore.model import OperationModel

# (botocore service name, operation name) -> IAM action, where AWS does not use the operation's own name.
_RENAMED: dict[tuple[str, str], str] = {
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3control", "PutPublicAccessBlock"): "s3:PutAccountPublicAccessBlock",
    # AWS authorises deleting a public access block with the Put action.
    ("s3control", "DeletePublicAccessBlock"): "s3:PutAccountPublicAccessBlock",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "s3:PutBucketPublicAccessBlock",
}


def iam_action(service_name: str, operation_name: str, signing_name: str | None = None) -> str:
    """The IAM action for `operation_name` of the botocore service `service_name`."""
    renamed = _RENAMED.get((service_name, operation_name))
    if renamed is not None:
        return renamed
    return f"{signing_name or service_name}:{operation_name}"


def iam_action_of(model: OperationModel) -> str:
    """The IAM action for a botocore operation model (as handed to `before-call` event handlers)."""
    service = model.service_model
    return iam_action(service.service_name, model.name, service.signing_name)
