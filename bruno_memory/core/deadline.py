"""A time bound around an awaited block, with no task of its own (cheap on hot paths)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


def deadline(seconds: float | None) -> contextlib.AbstractAsyncContextManager[Any]:
    """``async with deadline(s)``: ``TimeoutError`` in the body after ``s`` seconds.

    ``None`` means no limit; so does Python 3.10, which has no ``asyncio.timeout``.
    """
    timeout = getattr(asyncio, "timeout", None)
    if timeout is None or seconds is None:
        return contextlib.nullcontext()
    limit: contextlib.AbstractAsyncContextManager[Any] = timeout(seconds)
    return limit
