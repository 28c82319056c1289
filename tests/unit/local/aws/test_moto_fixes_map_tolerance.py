"""The Distributed Map tolerance fix (aegis_local.aws.moto_fixes): AWS's threshold rule, and a clean uninstall.
The fix at work on a real definition: tests/unit/orgscan/test_orgscan_statemachine.py."""

from __future__ import annotations

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap

from aegis_local.aws.moto_fixes import StepFunctionsFixes, exceeds_tolerance


@pytest.mark.parametrize(
    ("failed", "total", "count", "percentage", "exceeded"),
    [
        (0, 4, None, None, False),  # nothing failed
        (1, 4, None, None, True),  # no threshold declared: any failure fails the Map Run
        (1, 4, None, 25.0, False),  # exactly the share tolerated
        (2, 4, None, 25.0, True),
        (1, 4, 1, None, False),  # exactly the count tolerated
        (2, 4, 1, None, True),
        (2, 4, 5, 25.0, True),  # both declared: either exceeded fails it
        (2, 4, 1, 100.0, True),
        (2, 4, 0, 0.0, True),
        (0, 0, 0, 0.0, False),
    ],
)
def test_the_threshold_rule_is_awss(
    failed: int, total: int, count: int | None, percentage: float | None, exceeded: bool
) -> None:
    assert exceeds_tolerance(failed, total, count, percentage) is exceeded


def test_uninstall_restores_moto() -> None:
    originals = (StateMap.from_state_props, distributed.DistributedIterationComponent._map_run)
    StepFunctionsFixes.install()
    try:
        assert (StateMap.from_state_props, distributed.DistributedIterationComponent._map_run) != originals
    finally:
        StepFunctionsFixes.uninstall()
    assert (StateMap.from_state_props, distributed.DistributedIterationComponent._map_run) == originals
