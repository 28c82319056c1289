"""What runs on the local stack: the seeded vulnerable account, drift between plan and apply, the approver's
phone, the mission driver and the demo that strings them together."""
