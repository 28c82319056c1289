"""The shapes of the identifiers every trust domain checks: a change, a check, an account, a region.

A module of its own, free of the catalogue, so that code that only recognises an id (the audit log, the kill switch,
the notifier, the ops API) does not import every change kind to do it."""

from __future__ import annotations

CHANGE_ID_PATTERN = r"^chg-[0-9a-f]{20}$"
CHECK_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)+$"
# An account id is its 12 digits; a region is a region name, never free text (the executor builds endpoints from it).
ACCOUNT_ID_PATTERN = r"^[0-9]{12}$"
REGION_PATTERN = r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$"
