"""Where the local stack's approvers review a batch: the local console (APPROVAL_REVIEW_URL_BASE), which on AWS the
template derives from the console's CloudFront domain."""

from __future__ import annotations

from aegis_local.aws.stack import REVIEW_URL_VARIABLE, local_review_url_base, with_review_url_base
from aegis_local.aws.template import load_template
from tests.support.stack import TEMPLATE_PATH


def test_the_local_console_is_the_one_loopback_origin_the_stack_lets_call_its_api() -> None:
    assert local_review_url_base("http://127.0.0.1:5173") == "http://127.0.0.1:5173/"
    assert local_review_url_base(" https://console.example.com, http://127.0.0.1:5173/ ") == "http://127.0.0.1:5173/"
    # No local console, or no way to tell which one it is: no review link rather than a wrong one.
    assert local_review_url_base("") == ""
    assert local_review_url_base("https://console.example.com") == ""
    assert local_review_url_base("http://127.0.0.1:1,http://127.0.0.1:2") == ""
    assert local_review_url_base("http://localhost:5173") == ""


def test_every_function_reading_the_review_url_gets_the_local_one_and_nothing_else_changes() -> None:
    template = load_template(TEMPLATE_PATH)
    changed = with_review_url_base(template, "http://127.0.0.1:5173/")
    readers = []
    for name, resource in template["Resources"].items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if REVIEW_URL_VARIABLE in variables:
            readers.append(name)
            local = changed["Resources"][name]["Properties"]["Environment"]["Variables"]
            assert local[REVIEW_URL_VARIABLE] == "http://127.0.0.1:5173/"
            assert {k: v for k, v in local.items() if k != REVIEW_URL_VARIABLE} == {
                k: v for k, v in variables.items() if k != REVIEW_URL_VARIABLE
            }
        else:
            assert changed["Resources"][name] == resource
    assert sorted(readers) == ["AgentResumeFunction", "AgentScanFunction", "ApprovalFunction", "ValidatorFunction"]
    assert REVIEW_URL_VARIABLE not in str(changed["Resources"]["ExecutorFunction"])
