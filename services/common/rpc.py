"""Error statuses for servicers behind Ray Serve's proxy: one code and one safe message per error.

Ray's proxy turns an exception into INTERNAL with its text — for a dead replica a Ray
traceback naming pids, addresses and actor ids — unless the method set a code on its
`grpc_context` first. `grpc_method` sets one for every error: a TalkingHeadError's own (also
inside a RayTaskError), UNAVAILABLE for a replica, worker or node that died (retryable), and
otherwise INTERNAL with a message that names only the request id. Server-side failures (5xx)
name the request id in their message; `report` writes the details to the log under it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import re
import sys
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from services.common.errors import Cancelled, ResourceExhausted, TalkingHeadError, Unavailable

log = logging.getLogger("ray.serve")
#: Request ids a client may choose (Serve takes `x-request-id` / `request_id` from the request)
#: that are safe to echo into messages and logs; others are replaced by a fresh one.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
REPLICA_GONE = "a server replica stopped while handling the request; retry"


def request_id() -> str:
    """Ray Serve's id for the request being handled — the one its proxy returns as the
    `X-Request-ID` HTTP header (gRPC: `request_id` trailing metadata, where Ray passes it) and
    tags its log lines with — else a fresh one."""
    rid = ""
    context = sys.modules.get("ray.serve.context")
    if context is not None:
        try:
            rid = context._get_serve_request_context().request_id or ""
        except Exception:  # noqa: BLE001 - a Ray without it: a fresh id below
            rid = ""
    return rid if _SAFE_REQUEST_ID.fullmatch(rid) else uuid.uuid4().hex


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps: RayTaskError.cause, gRPCStatusError.original_exception, __cause__."""
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while isinstance(cur, BaseException) and len(out) < 8 and all(cur is not e for e in out):
        out.append(cur)
        nxt = [getattr(cur, "cause", None), getattr(cur, "original_exception", None), cur.__cause__]
        cur = next((e for e in nxt if isinstance(e, BaseException)), None)
    return out


def _ray_failure(exc: BaseException) -> TalkingHeadError | None:
    """A Ray or Serve failure as the project error a client should see (never its text)."""
    rx, sx = sys.modules.get("ray.exceptions"), sys.modules.get("ray.serve.exceptions")
    if sx is not None and isinstance(exc, sx.BackPressureError):
        return ResourceExhausted("the server is busy; retry in 1 s", retry_after_s=1.0)
    if rx is not None and isinstance(exc, rx.TaskCancelledError):
        return Cancelled("request cancelled")
    gone: tuple[type, ...] = ()
    if rx is not None:
        gone += (rx.RayActorError, rx.WorkerCrashedError, rx.NodeDiedError, rx.LocalRayletDiedError,
                 rx.ObjectLostError, rx.ActorUnschedulableError, rx.OutOfMemoryError)
    if sx is not None:
        gone += (sx.DeploymentUnavailableError, sx.ReplicaUnavailableError)
    if gone and isinstance(exc, gone):
        return Unavailable(REPLICA_GONE)
    return None


def replica_gone(exc: BaseException) -> bool:
    """Did a replica (or its worker or node) die under this call? Then another may answer it."""
    return any(isinstance(_ray_failure(e), Unavailable) for e in _chain(exc))


def unwrap(exc: BaseException) -> BaseException:
    """The TalkingHeadError inside a Ray wrapper (RayTaskError.cause / __cause__), else exc."""
    return next((e for e in _chain(exc) if isinstance(e, TalkingHeadError)), exc)


def as_project_error(exc: BaseException) -> TalkingHeadError | None:
    """The project error exc is or wraps; a Ray failure mapped to one; else None (a bug)."""
    chain = _chain(exc)
    for e in chain:
        if isinstance(e, TalkingHeadError):
            return e
    if isinstance(exc, asyncio.CancelledError):
        return Cancelled("request cancelled")
    return next((err for err in map(_ray_failure, chain) if err is not None), None)


def status_of(exc: BaseException, rid: str | None = None) -> tuple[grpc.StatusCode, int, str]:
    """(gRPC code, HTTP status, the message a client may see) for any exception. A server-side
    failure (5xx) names the request id (`rid`, default `request_id()`); a bug says no more."""
    err = as_project_error(exc)
    code, http, message = ((err.grpc_code, err.http_status, err.message) if err is not None
                           else (grpc.StatusCode.INTERNAL, 500, "internal error"))
    if http >= 500:
        message = f"{message} (request id {rid or request_id()})"
    return code, http, message


def report(exc: BaseException, what: str = "request") -> tuple[grpc.StatusCode, int, str]:
    """`status_of`, and the details of a server-side failure in the log under its request id:
    a bug with its traceback, a dependency or replica failure as a warning."""
    rid = request_id()
    code, http, message = status_of(exc, rid)
    if http >= 500:
        if as_project_error(exc) is None:
            log.error("%s %s failed: %s: %s", what, rid, type(exc).__name__, exc, exc_info=exc)
        else:
            causes = " <- ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
            log.warning("%s %s failed (%s): %s", what, rid, code.name, causes)
    return code, http, message


def _apply(grpc_context: Any, exc: BaseException) -> BaseException:
    """The error to raise to Ray's proxy (the project error, or a bare one for a bug: never the
    original's text), its code and safe message set on the context."""
    code, _, message = report(exc)
    if grpc_context is not None:
        grpc_context.set_code(code)
        grpc_context.set_details(message)
    err = as_project_error(exc)
    return err if err is not None else TalkingHeadError("internal error")


def grpc_method(fn: Callable) -> Callable:
    """Map every error to its gRPC code and a safe message; works for coroutines and async generators."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def gen_wrapper(*args: Any, grpc_context: Any = None, **kwargs: Any):
            try:
                async for item in fn(*args, grpc_context=grpc_context, **kwargs):
                    yield item
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - re-raised with a status set
                raise _apply(grpc_context, exc) from None
        return gen_wrapper

    @functools.wraps(fn)
    async def wrapper(*args: Any, grpc_context: Any = None, **kwargs: Any):
        try:
            return await fn(*args, grpc_context=grpc_context, **kwargs)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001
            raise _apply(grpc_context, exc) from None
    return wrapper
