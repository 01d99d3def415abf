"""Error statuses: every error gets one code and a message safe for clients. A dead replica
is UNAVAILABLE (retryable), a bug is INTERNAL naming only the request id, and neither carries
Ray's text (pids, addresses, actor ids); the log keeps the details under the request id."""

from __future__ import annotations

import contextvars
import logging
import re

import grpc
import pytest
from ray import exceptions as rx
from ray.serve import context as serve_context
from ray.serve import exceptions as sx

from services.common.errors import InvalidInput, NotFound, Unavailable
from services.common.rpc import _apply, as_project_error, replica_gone, report, request_id, status_of

RAY_TRACEBACK = ("ray::ServeReplica:talking-head:Renderer.handle_request_streaming() (pid=4242, ip=10.1.2.3, "
                 "actor_id=8f3c0a9e1d2b, repr=<ServeReplica:talking-head:Renderer object at 0x7f>)")
LEAKS = ("4242", "10.1.2.3", "8f3c0a9e1d2b", "ServeReplica", "Traceback", "0x7f")


def _task_error(cause: BaseException) -> rx.RayTaskError:
    return rx.RayTaskError("handle_request_streaming", RAY_TRACEBACK, cause, pid=4242, ip="10.1.2.3")


def _no_leaks(message: str) -> None:
    for word in LEAKS:
        assert word not in message, message


@pytest.mark.parametrize("exc", [
    rx.ActorDiedError(),
    rx.ActorUnavailableError("actor 8f3c0a9e1d2b at 10.1.2.3 is unreachable", None),
    rx.WorkerCrashedError(),
    rx.NodeDiedError("node 10.1.2.3 died"),
    _task_error(rx.ActorDiedError()),
    _task_error(rx.ActorDiedError()).as_instanceof_cause(),
], ids=["actor-died", "actor-unavailable", "worker-crashed", "node-died", "task-error-of-actor-died",
        "dual-class-task-error"])
def test_a_dead_replica_is_unavailable_with_a_request_id_and_no_ray_text(exc):
    code, http, message = status_of(exc)
    assert (code, http) == (grpc.StatusCode.UNAVAILABLE, 503)
    assert "retry" in message and re.search(r"\(request id [0-9a-f]{32}\)$", message), message
    _no_leaks(message)
    assert replica_gone(exc)


def test_a_bug_is_internal_naming_only_the_request_id():
    for exc in (ValueError(f"bad state in {RAY_TRACEBACK}"), _task_error(KeyError("10.1.2.3"))):
        code, http, message = status_of(exc, "req-1")
        assert (code, http, message) == (grpc.StatusCode.INTERNAL, 500, "internal error (request id req-1)")
        assert not replica_gone(exc)


def test_project_errors_keep_their_code_through_ray_wrappers():
    assert status_of(_task_error(InvalidInput("text is empty"))) == (grpc.StatusCode.INVALID_ARGUMENT, 400,
                                                                     "text is empty")
    wrapped = sx.gRPCStatusError(NotFound("unknown subject 'x'"), grpc.StatusCode.NOT_FOUND, "unknown subject 'x'")
    assert isinstance(as_project_error(_task_error(wrapped)), NotFound)
    # a dependency that is down says so, with the request id; a client error never names one
    assert status_of(Unavailable("the subject store is unreachable; retry"), "r2")[2] == \
        "the subject store is unreachable; retry (request id r2)"
    assert not replica_gone(Unavailable("the subject store is unreachable; retry"))


def test_serve_back_pressure_is_retryable_resource_exhausted():
    exc = sx.BackPressureError(num_queued_requests=9, max_queued_requests=8)
    code, http, _ = status_of(exc)
    assert (code, http) == (grpc.StatusCode.RESOURCE_EXHAUSTED, 429)
    assert as_project_error(exc).retry_after_s > 0


def test_the_error_raised_to_the_proxy_carries_no_original_text():
    err = _apply(None, _task_error(KeyError(RAY_TRACEBACK)))
    assert str(err) == "internal error"
    err = _apply(None, _task_error(rx.ActorDiedError()))
    assert isinstance(err, Unavailable)
    _no_leaks(str(err))


def test_report_logs_the_details_under_the_request_id(caplog):
    logger = logging.getLogger("ray.serve")  # Ray's logger does not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="ray.serve"):
            _, _, message = report(_task_error(rx.ActorDiedError()), "Speak")
            _, _, bug = report(RuntimeError("boom at 10.1.2.3"), "Speak")
    finally:
        logger.removeHandler(caplog.handler)
    rid = re.search(r"request id (\w+)", message).group(1)
    died, crashed = caplog.records[-2:]
    assert rid in died.getMessage() and "ActorDiedError" in died.getMessage() and died.levelno == logging.WARNING
    assert "boom at 10.1.2.3" in crashed.getMessage() and crashed.levelno == logging.ERROR and crashed.exc_info
    _no_leaks(bug)


def _in_request(rid: str) -> str:
    def run() -> str:
        serve_context._serve_request_context.set(serve_context._RequestContext(request_id=rid))
        return request_id()
    return contextvars.copy_context().run(run)


def test_request_id_is_serves_when_it_is_safe_to_echo():
    assert _in_request("3f2a-9c.req:1") == "3f2a-9c.req:1"  # what Serve's proxy returns as X-Request-ID
    for unsafe in ("evil\nlog line", "x" * 200, ""):
        assert re.fullmatch(r"[0-9a-f]{32}", _in_request(unsafe))
    assert request_id() != request_id()  # outside a request: a fresh one each time
