"""gRPC status handling for servicers behind Ray Serve's proxy.

Ray's proxy turns an exception into INTERNAL unless the method set a code on its
`grpc_context` first; `grpc_method` does that for every TalkingHeadError (also when it
comes back from another deployment wrapped in a RayTaskError).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

import grpc

from services.common.errors import Cancelled, TalkingHeadError


def unwrap(exc: BaseException) -> BaseException:
    """The TalkingHeadError inside a Ray wrapper (RayTaskError.cause / __cause__), else exc."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 8:
        if isinstance(cur, TalkingHeadError):
            return cur
        cur = getattr(cur, "cause", None) or cur.__cause__
        seen += 1
    return exc


def as_project_error(exc: BaseException) -> TalkingHeadError | None:
    err = unwrap(exc)
    if isinstance(err, TalkingHeadError):
        return err
    if isinstance(exc, asyncio.CancelledError):
        return Cancelled("request cancelled")
    return None


def _apply(grpc_context: Any, exc: BaseException) -> BaseException:
    err = as_project_error(exc)
    if err is not None and grpc_context is not None:
        grpc_context.set_code(err.grpc_code)
        grpc_context.set_details(err.message)
        return err
    return exc


def grpc_method(fn: Callable) -> Callable:
    """Map project errors to gRPC codes; works for coroutines and async generators."""
    if inspect.isasyncgenfunction(fn):
        @functools.wraps(fn)
        async def gen_wrapper(*args: Any, grpc_context: Any = None, **kwargs: Any):
            try:
                async for item in fn(*args, grpc_context=grpc_context, **kwargs):
                    yield item
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - re-raised with a status set
                err = _apply(grpc_context, exc)
                if err is exc:
                    raise
                raise err from None
        return gen_wrapper

    @functools.wraps(fn)
    async def wrapper(*args: Any, grpc_context: Any = None, **kwargs: Any):
        try:
            return await fn(*args, grpc_context=grpc_context, **kwargs)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001
            err = _apply(grpc_context, exc)
            if err is exc:
                raise
            raise err from None
    return wrapper


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, int, str]:
    """(gRPC code, HTTP status, message) for any exception."""
    err = as_project_error(exc)
    if err is not None:
        return err.grpc_code, err.http_status, err.message
    return grpc.StatusCode.INTERNAL, 500, f"internal error: {type(exc).__name__}"
