"""How the local stack turns a bucket's CloudFormation LifecycleConfiguration rules into the S3 API's."""

from __future__ import annotations

import pytest

from aegis_local.aws.resources import _lifecycle_rule
from aegis_local.aws.template import TemplateError


def test_an_expiry_rule_as_the_org_scan_bucket_declares_it() -> None:
    rule = {
        "Id": "expire-after-a-week",
        "Status": "Enabled",
        "ExpirationInDays": 7,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    assert _lifecycle_rule("OrgScanBucket", rule) == {
        "ID": "expire-after-a-week",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": 7},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }


def test_a_noncurrent_version_rule_with_a_prefix_as_the_console_bucket_declares_it() -> None:
    rule = {
        "Id": "ExpireOldBuilds",
        "Status": "Enabled",
        "Prefix": "builds/",
        "NoncurrentVersionExpiration": {"NoncurrentDays": "30"},
    }
    assert _lifecycle_rule("ConsoleBucket", rule) == {
        "ID": "ExpireOldBuilds",
        "Status": "Enabled",
        "Filter": {"Prefix": "builds/"},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
    }


def test_a_property_the_local_stack_cannot_apply_is_refused_by_name() -> None:
    rule = {"Status": "Enabled", "Transitions": [{"StorageClass": "GLACIER", "TransitionInDays": 30}]}
    with pytest.raises(TemplateError, match="Transitions"):
        _lifecycle_rule("ArchiveBucket", rule)
