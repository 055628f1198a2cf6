"""``in_thread``: the REST service's hot paths run their blocking work (a database read) in a
thread pool of their own.

Starlette's ``run_in_threadpool`` (anyio's worker threads, with cancel scopes and a capacity
limiter around every call) costs about twice the CPU of a plain executor hop, and on the
by-uuid lookup — an index read of a few tens of microseconds — the hops were a third of the
request's CPU. This is the plain hop, with what the routes rely on kept: the caller's context
variables are visible in the thread, at most ``MAX_THREADS`` run at once (anyio's default
limit), and an exception raised in the thread is raised to the caller.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["MAX_THREADS", "in_thread"]

MAX_THREADS = 40
"""Threads the pool starts at most (anyio's default for ``run_in_threadpool``)."""

_P = ParamSpec("_P")
_T = TypeVar("_T")

_pool = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="hokusai-api")


async def in_thread(function: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``function(*args, **kwargs)`` in the pool, awaited; the caller's context goes along."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_pool, call)
