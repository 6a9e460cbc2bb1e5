"""Lifecycle: summaries, archival, consolidation, importance and pruning; never destructive.

Modules: ``step`` (the ``Step`` protocol), ``summarizer`` (the plug), ``extractive`` and
``llm`` (two summarizers), ``segments``, ``summarize`` (the step), ``records`` (summaries
as marked memories), ``provider`` (the context builder's summary section), ``archival``,
``lease`` and ``runner`` (the maintenance runner).
"""

from bruno_memory.managers.lifecycle.archival import ArchiveStep, archive, unarchive
from bruno_memory.managers.lifecycle.extractive import ExtractiveSummarizer
from bruno_memory.managers.lifecycle.lease import Lease, LeaseHeld
from bruno_memory.managers.lifecycle.llm import LLMSummarizer, Prompts
from bruno_memory.managers.lifecycle.provider import StoredSummaries
from bruno_memory.managers.lifecycle.reading import summaries_of
from bruno_memory.managers.lifecycle.records import USER_LEVEL, SummaryInfo, info_of, is_summary
from bruno_memory.managers.lifecycle.runner import STEPS, Periodic, Runner, make_steps
from bruno_memory.managers.lifecycle.step import Step, StepReport
from bruno_memory.managers.lifecycle.summarize import SummarizeStep
from bruno_memory.managers.lifecycle.summarizer import Passage, Segment, Summarizer, Summary

__all__ = [
    "STEPS",
    "USER_LEVEL",
    "ArchiveStep",
    "ExtractiveSummarizer",
    "LLMSummarizer",
    "Lease",
    "LeaseHeld",
    "Passage",
    "Periodic",
    "Prompts",
    "Runner",
    "Segment",
    "Step",
    "StepReport",
    "StoredSummaries",
    "SummarizeStep",
    "Summarizer",
    "Summary",
    "SummaryInfo",
    "archive",
    "info_of",
    "is_summary",
    "make_steps",
    "summaries_of",
    "unarchive",
]
