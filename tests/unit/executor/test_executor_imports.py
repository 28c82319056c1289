"""The executor's handler stays lean and on its side of the boundary: no LangGraph, no agent code."""

from __future__ import annotations

from tests.support.cold_start import cold_start


def test_loading_the_handler_imports_neither_langgraph_nor_another_trust_domain() -> None:
    environment = {
        "IDEMPOTENCY_TABLE": "Idempotency",
        "POWERTOOLS_SERVICE_NAME": "aegis-executor",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
    }
    modules = cold_start("executor", environment)["modules"]
    assert "aegis_executor.execute" in modules, "the probe loaded the handler"
    forbidden = [
        m
        for m in modules
        if m.split(".")[0] in {"langgraph", "langchain_core", "aegis_agent", "aegis_approval", "aegis_killswitch"}
    ]
    assert forbidden == []
