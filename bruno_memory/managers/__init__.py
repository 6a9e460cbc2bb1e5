"""Managers: what an application builds on the memory, through the ``MemoryStack`` facade.

A manager imports only ``bruno_memory.core``, ``bruno_memory.providers``, the facade's public
methods and bruno-core / bruno-llm; it never reaches into tiers, policies or the stack.

- ``context``: a token-budgeted context builder (:class:`ContextBuilder`).
- ``archive``: the portable JSONL format, export, import and copy between stacks.
"""

from bruno_memory.managers.context import BuiltContext, ContextBuilder, budgeted_context

__all__ = ["BuiltContext", "ContextBuilder", "budgeted_context"]
