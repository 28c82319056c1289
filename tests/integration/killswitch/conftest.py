from tests.unit.killswitch.fixtures import approver_pool, approvers, auth0_clock, aws, emulator, phone, settings

__all__ = ["approver_pool", "approvers", "auth0_clock", "aws", "emulator", "phone", "settings"]
