"""The IAM collector: policies with their default documents and attachments from one paginated listing."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from aegis.catalogue.policy_documents import parse_policy_document as policy_document
from aegis.collectors import Inventory

DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}


def test_policies_come_with_default_document_and_attachments(aws):
    iam = aws.client("iam", region_name="us-east-1")
    arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps(DOC))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC | {"Id": "v2"}), SetAsDefault=True)
    iam.create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    iam.create_user(UserName="u")
    iam.attach_role_policy(RoleName="r", PolicyArn=arn)
    iam.attach_user_policy(UserName="u", PolicyArn=arn)
    inventory = Inventory.from_session(aws, "us-east-1")

    [policy] = inventory.iam.customer_policies()

    assert (policy.arn, policy.attachment_count, policy.default_version_id) == (arn, 2, "v2")
    assert policy.default_document["Id"] == "v2"
    assert (policy.roles, policy.users, policy.groups) == (("r",), ("u",), ())
    assert inventory.collectors.clients.api_calls == {
        "sts.GetCallerIdentity": 1,
        "iam.GetAccountAuthorizationDetails": 1,
    }


def test_policy_documents_are_read_as_dicts_or_url_encoded_json():
    assert policy_document(DOC) == DOC
    assert policy_document(quote(json.dumps(DOC))) == DOC
    with pytest.raises(ValueError, match="policy document"):
        policy_document(quote(json.dumps(["not", "an", "object"])))


def test_missing_password_policy_is_none_and_a_set_one_is_returned(aws):
    inventory = Inventory.from_session(aws, "us-east-1")
    assert inventory.iam.password_policy() is None

    aws.client("iam", region_name="us-east-1").update_account_password_policy(MinimumPasswordLength=12)
    policy = Inventory.from_session(aws, "us-east-1").iam.password_policy()
    assert policy["MinimumPasswordLength"] == 12


def test_roles_users_and_groups_come_with_their_inline_policies_and_tags_from_the_same_listing(aws):
    iam = aws.client("iam", region_name="us-east-1")
    arn = iam.create_policy(PolicyName="p", PolicyDocument=json.dumps(DOC))["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(DOC | {"Id": "v2"}))
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="r", Path="/svc/", AssumeRolePolicyDocument=trust, Tags=[{"Key": "k", "Value": "v"}])
    iam.put_role_policy(RoleName="r", PolicyName="inline", PolicyDocument=json.dumps(DOC))
    iam.create_user(UserName="u")
    iam.create_group(GroupName="g")
    iam.put_group_policy(GroupName="g", PolicyName="inline", PolicyDocument=json.dumps(DOC))
    inventory = Inventory.from_session(aws, "us-east-1")

    holders = {(h.entity_type, h.name): h for h in inventory.iam.inline_policy_holders()}
    [policy] = inventory.iam.customer_policies()

    assert set(holders) == {("role", "r"), ("user", "u"), ("group", "g")}
    role = holders[("role", "r")]
    assert (role.arn, role.tags) == ("arn:aws:iam::123456789012:role/svc/r", {"k": "v"})
    assert [(p.name, p.document) for p in role.inline_policies] == [("inline", DOC)]
    assert holders[("user", "u")].inline_policies == ()
    assert [p.name for p in holders[("group", "g")].inline_policies] == ["inline"]
    assert (policy.version_count, policy.default_version_id) == (2, "v1")
    assert inventory.collectors.clients.api_calls == {
        "sts.GetCallerIdentity": 1,
        "iam.GetAccountAuthorizationDetails": 1,
    }
