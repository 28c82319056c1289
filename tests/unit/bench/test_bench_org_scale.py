"""bench.org_scale's arithmetic: the Map's observed concurrency (largest overlap of the account scans' intervals)
and the projected AWS wall time (the item times scheduled in order on OrgScanMaxConcurrency slots)."""

from __future__ import annotations

import pytest

from bench.org_scale import Interval, Row, isolated_seconds, largest_overlap, makespan


def test_largest_overlap_counts_intervals_open_together_and_not_those_that_only_touch() -> None:
    assert largest_overlap([]) == 0
    assert largest_overlap([Interval(0, 1), Interval(1, 1), Interval(2, 1)]) == 1
    assert largest_overlap([Interval(0, 3), Interval(1, 1), Interval(1.5, 2), Interval(5, 1)]) == 3


@pytest.mark.parametrize(
    ("durations", "slots", "expected"),
    [
        ([], 10, 0.0),
        ([2.0, 2.0, 2.0], 1, 6.0),
        ([2.0, 2.0, 2.0], 3, 2.0),
        ([2.0, 2.0, 2.0], 10, 2.0),
        ([4.0, 1.0, 1.0, 1.0, 1.0], 2, 4.0),  # the long item on one slot, the four short ones on the other
        ([1.0, 1.0, 4.0], 2, 5.0),  # in item order: the long one starts when a slot frees
    ],
)
def test_makespan_schedules_items_in_order_on_the_first_free_slot(
    durations: list[float], slots: int, expected: float
) -> None:
    assert makespan(durations, slots) == expected


def test_makespan_needs_a_slot() -> None:
    with pytest.raises(ValueError):
        makespan([1.0], 0)


def test_the_projection_adds_the_list_and_summarize_steps() -> None:
    row = Row(
        accounts=3,
        regions=1,
        resources=30,
        seed_seconds=0,
        wall_seconds=9,
        api_calls=90,
        statuses={"completed": 3},
        peak_rss_mb=1,
        scans=[Interval(0, 2), Interval(0, 2), Interval(0.5, 2)],
        list_seconds=0.5,
        summarize_seconds=0.25,
        max_concurrency=2,
    )
    # The three scans overlapped: each is scheduled at its isolated time, not its local one.
    assert row.projected_seconds == 0.5 + makespan(isolated_seconds(row.scans), 2) + 0.25
    assert row.projected_seconds < 0.5 + makespan([2.0, 2.0, 2.0], 2) + 0.25
    assert row.observed_concurrency == 3
    assert row.calls_per_account == 30
    assert row.calls_per_resource == 3


def test_isolated_time_shares_the_process_among_the_scans_running_together() -> None:
    assert isolated_seconds([]) == []
    assert isolated_seconds([Interval(0, 2)]) == [2.0]
    # Two scans side by side for 4 s each took 2 s of the process apiece.
    assert isolated_seconds([Interval(0, 4), Interval(0, 4)]) == [2.0, 2.0]
    # Alone 0-1, shared 1-3, the second alone 3-4.
    assert isolated_seconds([Interval(0, 3), Interval(1, 3)]) == [2.0, 2.0]
    # However they overlap, the isolated times add up to the time the process was busy (the union, 0-5 here).
    assert sum(isolated_seconds([Interval(0, 3), Interval(0.5, 2), Interval(1, 4)])) == pytest.approx(5.0)
