"""The kill switch's fixtures, the same for its unit and integration tests."""

from tests.support.killswitch_fixtures import *  # noqa: F403
