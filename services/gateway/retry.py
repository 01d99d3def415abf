"""Stage calls that a replica's death interrupts, retried once where a replay is safe.

A call is tried again (Serve routes it to another replica and drops the dead one) only when
its replica, worker or node died under it (`replica_gone`), and only where the replay gives
the same answer and the client has seen nothing of the first try:
- unary stage calls (a subject's rates, encode, enhance): pure functions of their arguments;
- a stream (a render, the TTS sentences) that has yielded nothing yet. A render's frames
  depend only on its arguments (codes, pose seed, start frame), so replaying a sentence's
  render that yielded no batch continues the video seamlessly, also after earlier sentences
  went to the client. Once an item was yielded a replay would not line up (the pose and blink
  track of a shorter remainder differ), so the call ends Unavailable and the client retries
  the whole request.
Other failures pass through unchanged; a second replica death is Unavailable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

from services.common.errors import Unavailable
from services.common.rpc import REPLICA_GONE, replica_gone

T = TypeVar("T")
log = logging.getLogger("ray.serve")


def call_once_more(call: Callable[[], T], what: str) -> T:
    """`call()`, tried once more when its replica died under it."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - re-raised unless a replica died
        if not replica_gone(exc):
            raise
        log.warning("%s: its replica stopped (%s); trying another once", what, type(exc).__name__)
    try:
        return call()
    except Exception as exc:  # noqa: BLE001
        if replica_gone(exc):
            raise Unavailable(REPLICA_GONE) from exc  # the cause goes to the log (rpc.report)
        raise


def _stop(stream: object) -> None:
    stop = getattr(stream, "cancel", None) or getattr(stream, "close", None)
    if stop is not None:  # a remote stream stops its replica here; no-op when it finished
        stop()


def stream_once_more(start: Callable[[], Iterator[T]], what: str) -> Iterator[T]:
    """The items of `start()`, started once more when its replica died before the first one."""
    for attempt in (1, 2):
        stream = start()
        started = False
        try:
            for item in stream:
                started = True
                yield item
            return
        except Exception as exc:  # noqa: BLE001 - re-raised unless a replica died
            if not replica_gone(exc):
                raise
            if started or attempt == 2:
                raise Unavailable(REPLICA_GONE) from exc  # the cause goes to the log (rpc.report)
            log.warning("%s: its replica stopped before the first item (%s); starting it on another once",
                        what, type(exc).__name__)
        finally:
            _stop(stream)
