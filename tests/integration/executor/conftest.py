"""The executor's world (tests.support.executor_world): its real handler on moto, real approvals of the emulator."""

from tests.support.executor_world import *  # noqa: F403
