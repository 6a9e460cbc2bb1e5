"""Structured logs through the standard ``logging`` module: the library never prints.

structlog's default configuration prints to stdout; a library must not change the
application's structlog configuration either. So each logger is wrapped around a
``logging.Logger`` with its own small pipeline: key-value pairs rendered into the message,
level and handlers left to the application's ``logging`` setup.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

_RENDER = structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True)
_PROCESSORS: list[Any] = [_RENDER]


def get_logger(name: str) -> Any:
    """A structlog bound logger (``log.warning("event", key=value)``) writing to
    ``logging.getLogger(name)``."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    )
