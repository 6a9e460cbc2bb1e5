"""Analytics: what is in a store and how it performs, through the façade only.

``analyze(memory)`` reads the store a page at a time (``scan``) and returns a JSON-ready
report: growth, conversation patterns, topics (YAKE keywords), tier performance (the
stack's own counters) and LLM cost (bruno-llm ``CostTracker`` records).
``render_html(report)`` draws it as a self-contained dashboard.
"""

from bruno_memory.managers.analytics.cost import llm_cost
from bruno_memory.managers.analytics.html import CHARTS, render_html
from bruno_memory.managers.analytics.performance import tier_performance
from bruno_memory.managers.analytics.report import Options, analyze
from bruno_memory.managers.analytics.topics import PERIODS, Period

__all__ = [
    "CHARTS",
    "PERIODS",
    "Options",
    "Period",
    "analyze",
    "llm_cost",
    "render_html",
    "tier_performance",
]
