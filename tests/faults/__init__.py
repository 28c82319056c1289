"""The fault matrix of issue 20: whole missions on the local stack with one fault injected at a time."""
