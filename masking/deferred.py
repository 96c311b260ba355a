"""Bookkeeping a request leaves for later, run while the proxy waits for the upstream.

Counting a request, building its events and noting metrics cost a masked request tens of
microseconds. Scheduled with `call_soon` they ran at the loop's next turn, which is often the turn
that sends the answer: they sat between the answer and the client. Here they wait in a per-loop
queue until the proxy has written a request upstream and is about to wait for it (it calls
`run_now()` then: masking.upstream.send's `sent`), when the worker would otherwise be idle; at
concurrency 1 that is the next request's upstream wait. A timer runs whatever is still queued after
`FALLBACK_SECONDS`, so nothing waits longer when traffic stops; events.drain and counters.aflush
(tests, a loop shutting down) run it at once too.

The queue belongs to its event loop; a call raising is logged and never reaches the caller.
"""

import asyncio
import logging
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)

FALLBACK_SECONDS = 0.05


class _Queue:
    __slots__ = ("loop", "calls", "timer", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: list[tuple[Callable, tuple]] = []
        self.timer: asyncio.TimerHandle | None = None

    def run(self) -> None:
        while self.calls:  # a call may queue another
            calls, self.calls = self.calls, []
            for function, args in calls:
                try:
                    function(*args)
                except Exception:
                    logger.exception("deferred %s failed", getattr(function, "__qualname__", function))

    def on_timer(self) -> None:
        self.timer = None
        self.run()


_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue]" = weakref.WeakKeyDictionary()
_last: _Queue | None = None  # the queue used last, usually the only loop's: no weak-reference lookup


def _queue() -> _Queue:
    global _last
    loop = asyncio.get_running_loop()
    queue = _last
    if queue is None or queue.loop is not loop:
        queue = _queues.get(loop)
        if queue is None:
            queue = _queues[loop] = _Queue(loop)
        _last = queue
    return queue


def later(function: Callable, *args) -> None:
    """Call `function(*args)` once this loop's worker waits for the upstream, within FALLBACK_SECONDS."""
    queue = _queue()
    queue.calls.append((function, args))
    if queue.timer is None:
        queue.timer = queue.loop.call_later(FALLBACK_SECONDS, queue.on_timer)


def run_now() -> None:
    """Run what this loop has queued, now: the proxy calls it once a request is written upstream."""
    queue = _queues.get(asyncio.get_running_loop())
    if queue is not None:
        queue.run()


def pending() -> int:
    queue = _queues.get(asyncio.get_running_loop())
    return len(queue.calls) if queue is not None else 0


def retrieved(task: asyncio.Future) -> None:
    """A done callback for a task whose error nobody may await: its exception counts as retrieved,
    so asyncio never logs "exception was never retrieved" (the error is raised where it is awaited)."""
    if not task.cancelled():
        task.exception()
