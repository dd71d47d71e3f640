"""Running pyHanko's async pipeline from our synchronous code."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion; inside a running event loop (an async caller, a test
    harness), on a worker thread of its own, since ``asyncio.run`` cannot nest."""
    if not _loop_running():
        # Not from inside the ``except`` of the probe: while an exception is being handled,
        # CPython must build every internally raised and cleared exception in full (to chain
        # it), and pyHanko's tokenizer triggers one per byte it reads (``bytes in bytes`` tries
        # an int first): that made every signature and verification ~3 ms slower.
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
