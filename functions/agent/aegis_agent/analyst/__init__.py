"""The analyst: a language model that reasons over a mission's findings and can do nothing else.

Code builds every candidate fix (`aegis.checks`); the model, called through Bedrock's Converse API with one tool whose
schema is generated from pydantic models, only chooses one of them by index (or `notify_only` / `needs_human`),
gives a priority and a rationale, and writes a summary for operators. Whatever it answers, the plan holds only
code-built candidates, every change still needs its approval, and an answer that does not stand falls back to the
deterministic (safest or pinned) choice with a named reason.
"""

from aegis_agent.analyst.analyst import BATCH_SIZE, Analyst, AnalystRun, AnalystSettings, Fallback, overview
from aegis_agent.analyst.models import AnalysisRecord, AnalystCall, AnalystExchange, FindingAnalysis
from aegis_agent.analyst.prompt import AnalystItem

__all__ = [
    "BATCH_SIZE",
    "AnalysisRecord",
    "Analyst",
    "AnalystCall",
    "AnalystExchange",
    "AnalystItem",
    "AnalystRun",
    "AnalystSettings",
    "Fallback",
    "FindingAnalysis",
    "overview",
]
