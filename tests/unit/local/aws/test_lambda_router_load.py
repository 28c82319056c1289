"""The router's load figures (bench.load reads them): invocations begun and the most running at one time, since the
last reset, whatever the invocation type."""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.unit.local.aws.lambda_router import HERE, function_spec, running_router


def test_the_router_counts_invocations_and_the_most_in_flight_since_its_last_reset() -> None:
    together = threading.Barrier(3, timeout=10)

    def held(event: Any, context: Any) -> dict[str, bool]:
        # Each of the three returns only once all three are running: exactly three in flight at one time.
        together.wait()
        return {"ok": True}

    with (
        running_router([function_spec("Counter", HERE / "lambda_functions" / "counter")]) as router,
        router.override("Counter", held),
    ):
        assert router.load() == (0, 0)
        threads = [threading.Thread(target=router.invoke, args=("Counter", "{}")) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert router.load() == (3, 3)

        together = threading.Barrier(1)
        assert router.invoke("Counter", json.dumps({})).json() == {"ok": True}
        assert router.invoke("Counter", "{}", "Event").status_code == 202
        assert router.wait_idle(5)
        # One at a time since: more invocations, the same most in flight.
        assert router.load() == (5, 3)

        router.reset_load()
        assert router.load() == (0, 0)
