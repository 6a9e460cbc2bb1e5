"""Lifecycle: summaries, archival, consolidation, importance and pruning; never destructive."""
