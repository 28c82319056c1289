"""The executor's integration world (its real handler on moto, real approvals of the Auth0 emulator), reused to test
the validator against what the executor really does."""

from tests.integration.executor.conftest import emulator, emulator_clock, emulator_http, world

__all__ = ["emulator", "emulator_clock", "emulator_http", "world"]
