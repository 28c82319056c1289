from __future__ import annotations

import pytest

from tests.support.stack import Stack, build_stack


@pytest.fixture(scope="module")
def stack() -> Stack:
    """template.yaml resolved with the example parameters; tests only read it (a test that breaks the template
    breaks a copy of its own)."""
    return build_stack()
