"""`fresh_session`: a session of its own (its own credentials and region) that parses no service model another
session of the process already parsed, and leaves the shared loader's search paths as they were."""

from __future__ import annotations

from typing import Any

import botocore.loaders
import pytest

from aegis.aws_sessions import fresh_session, shared_data_loader


def _session(key: str) -> Any:
    return fresh_session(
        aws_access_key_id=key, aws_secret_access_key=f"secret-of-{key}", aws_session_token="t", region_name="eu-west-1"
    )


@pytest.fixture
def files_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file

    def recording(loader: object, file_path: str) -> object:
        read.append(file_path)
        return load_file(loader, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", recording)
    return read


def test_each_session_has_its_own_credentials_and_region() -> None:
    first, second = _session("AKIAFIRST"), _session("AKIASECOND")
    assert first.get_credentials().access_key == "AKIAFIRST"
    assert second.get_credentials().secret_key == "secret-of-AKIASECOND"
    client = second.client("ec2")
    assert client.meta.region_name == "eu-west-1"
    assert first.client("ec2")._request_signer._credentials.access_key == "AKIAFIRST"


def test_a_second_session_reads_no_model_the_first_one_loaded(files_read: list[str]) -> None:
    _session("AKIAFIRST").client("ec2")
    before = len(files_read)
    _session("AKIASECOND").client("ec2")
    assert files_read[before:] == []


def test_the_shared_loader_keeps_one_copy_of_each_search_path() -> None:
    _session("AKIAFIRST")
    paths = list(shared_data_loader().search_paths)
    for number in range(5):
        _session(f"AKIA{number}")
    assert shared_data_loader().search_paths == paths
    assert len(set(paths)) == len(paths)
