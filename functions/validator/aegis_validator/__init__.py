"""The plan validator: the mission state machine's first step, between whoever started the execution and the first
approval request. It trusts nothing in the execution's input and holds no secret (see aegis_validator.service)."""
