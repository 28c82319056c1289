"""CIS AWS Foundations versions: every check carries its control's id in each version the product groups by, and
the ids agree with the renumbering between versions that the benchmark documents."""

from __future__ import annotations

import re

import pytest

from aegis.checks import CHECKS
from aegis.cis import CIS_VERSIONS, DEFAULT_CIS_VERSION, InvalidCisVersion, cis_id_of, cis_sort_key, cis_version
from tests.support.agent_world import ebs_finding


def test_ids_sort_by_their_numbers_whatever_their_spelling() -> None:
    controls = ["5.1.1", "1.15", "1.7, 1.8", "2.1.4", "1.3", "n/a", ""]
    assert sorted(controls, key=cis_sort_key) == ["1.3", "1.7, 1.8", "1.15", "2.1.4", "5.1.1", "", "n/a"]


@pytest.mark.parametrize(("text", "version"), [("v7", "v7"), ("7", "v7"), ("7.0.0", "v7"), ("V5", "v5"), ("", "v7")])
def test_a_version_is_read_however_it_is_spelled(text: str, version: str) -> None:
    assert cis_version(text) == version


@pytest.mark.parametrize("text", ["v4", "8", "latest", "v7.1"])
def test_a_version_the_catalogue_does_not_carry_is_a_named_error(text: str) -> None:
    with pytest.raises(InvalidCisVersion, match="known: v7, v6, v5, v3"):
        cis_version(text)


def test_v7_is_the_default() -> None:
    assert DEFAULT_CIS_VERSION == "v7" == CIS_VERSIONS[0]


def _bumped(ids: str) -> str:
    """v5 -> v6: every section number goes up by one (the benchmark's own note)."""
    return ", ".join(re.sub(r"^(\d+)", lambda m: str(int(m.group(1)) + 1), part.strip()) for part in ids.split(","))


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_every_check_carries_its_ids_consistently(check_id: str) -> None:
    meta = CHECKS[check_id].METADATA
    assert meta.cis_v7
    assert meta.cis_v5
    assert meta.cis_v6 != meta.cis_v7, "cis_v6 is set only where it differs from v7"
    assert meta.cis_id("v6") == _bumped(meta.cis_v5)
    if not meta.cis_v7.startswith("2."):
        # Outside IAM, v7 kept v6's ids.
        assert meta.cis_v7 == meta.cis_id("v6")
    assert set(meta.cis_unsure) <= set(CIS_VERSIONS)


def test_findings_carry_every_version_and_old_findings_have_none_for_the_new_ones() -> None:
    check = CHECKS["ec2-ebs-default-encryption-off"]
    finding = check.METADATA.finding(
        resource_arn="arn:aws:ec2:eu-west-1:123456789012:volume/*",
        account_id="123456789012",
        region="eu-west-1",
        evidence={},
    )
    assert [cis_id_of(finding, v) for v in CIS_VERSIONS] == ["6.1.1", "6.1.1", "5.1.1", "2.2.1"]
    recorded_before = ebs_finding().model_copy(update={"cis_v6": "", "cis_v7": ""})
    assert cis_id_of(recorded_before, "v7") == ""
