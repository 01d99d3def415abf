"""Typed errors shared by every stage.

Each error carries the gRPC status code and HTTP status it maps to, so the CLI, the
gRPC servicers and the HTTP API turn one exception into one clear answer.
"""

from __future__ import annotations

import grpc


class TalkingHeadError(Exception):
    """Base class: a problem the caller can understand from one line."""

    grpc_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(TalkingHeadError):
    """Empty or oversized text, undecodable or non-finite audio, unknown language."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    http_status = 400


class NotFound(TalkingHeadError):
    """Unknown subject, voice or model."""

    grpc_code = grpc.StatusCode.NOT_FOUND
    http_status = 404


class ResourceExhausted(TalkingHeadError):
    """Over a configured limit (length, concurrency). `retry_after_s` is set when the limit is
    momentary (busy replica, full job queue) and a retry can succeed; HTTP sends it as
    `Retry-After` (gRPC clients find it in the message: Ray's proxy passes no trailing
    metadata with an error)."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    http_status = 429

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PayloadTooLarge(ResourceExhausted):
    """A request body or message over its byte cap, refused before it is read whole."""

    http_status = 413


class Unavailable(TalkingHeadError):
    """A dependency (Redis, a replica) is down."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    http_status = 503


class Unauthenticated(TalkingHeadError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class Cancelled(TalkingHeadError):
    grpc_code = grpc.StatusCode.CANCELLED
    http_status = 499


class IntegrityError(TalkingHeadError):
    """Stored data whose hashes or layout do not match: refused, never used."""

    grpc_code = grpc.StatusCode.DATA_LOSS
    http_status = 500


class RateMismatch(TalkingHeadError):
    """Two stages disagree on a sample or frame rate: an error, never a silent misalignment."""

    grpc_code = grpc.StatusCode.FAILED_PRECONDITION
    http_status = 500


class DeadlineExceeded(TalkingHeadError):
    """The request ran past its deadline (server limit or the client's)."""

    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    http_status = 504
