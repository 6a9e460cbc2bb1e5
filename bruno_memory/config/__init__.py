"""Configuration: YAML or dict -> validated models."""

from bruno_memory.config.loader import load_config
from bruno_memory.config.models import Duration, StackConfig, TierConfig

__all__ = ["Duration", "StackConfig", "TierConfig", "load_config"]
