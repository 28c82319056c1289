"""The executor's integration world (tests.support.executor_world), reused to test the validator against what the
executor really does."""

from tests.support.executor_world import *  # noqa: F403
