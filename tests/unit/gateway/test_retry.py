"""Stage calls whose replica dies: retried once only while the client has seen nothing of
the call, else Unavailable; other errors pass through untouched. Real Ray exceptions, plain
generators for the stage."""

from __future__ import annotations

import pytest
from ray import exceptions as rx

from services.common.errors import InvalidInput, Unavailable
from services.common.rpc import status_of
from services.gateway.retry import call_once_more, stream_once_more


class Stage:
    """A stage whose replica dies during the first `deaths` calls, after `after` items."""

    def __init__(self, deaths: int = 1, after: int = 0, error: BaseException | None = None) -> None:
        self.deaths, self.after, self.error = deaths, after, error
        self.calls = self.closed = 0

    def stream(self):
        self.calls += 1
        call = self.calls

        def items():
            try:
                for i in range(4):
                    if i == self.after and (call <= self.deaths or self.error is not None):
                        raise self.error or rx.ActorDiedError()
                    yield i
            finally:
                self.closed += 1
        return items()

    def unary(self) -> str:
        self.calls += 1
        if self.calls <= self.deaths:
            raise self.error or rx.RayTaskError("encode", "pid=1 ip=10.0.0.1", rx.ActorDiedError())
        return "codes"


def test_a_render_whose_replica_died_before_its_first_batch_is_replayed_whole():
    stage = Stage(deaths=1, after=0)
    assert list(stream_once_more(stage.stream, "render")) == [0, 1, 2, 3]
    assert stage.calls == 2 and stage.closed == 2


def test_after_a_batch_was_yielded_a_death_is_unavailable_with_no_replay():
    stage = Stage(deaths=1, after=2)
    got = []
    with pytest.raises(Unavailable) as e:
        for item in stream_once_more(stage.stream, "render"):
            got.append(item)
    assert got == [0, 1] and stage.calls == 1  # no frame is sent twice
    assert status_of(e.value)[0].name == "UNAVAILABLE" and isinstance(e.value.__cause__, rx.ActorDiedError)


def test_a_second_death_is_unavailable():
    stage = Stage(deaths=5)
    with pytest.raises(Unavailable):
        list(stream_once_more(stage.stream, "render"))
    assert stage.calls == 2
    with pytest.raises(Unavailable):
        call_once_more(Stage(deaths=5).unary, "encode")


@pytest.mark.parametrize("error", [InvalidInput("bad codes"), ValueError("a bug")])
def test_other_errors_are_not_retried(error):
    stage = Stage(error=error)
    with pytest.raises(type(error)):
        list(stream_once_more(stage.stream, "render"))
    assert stage.calls == 1
    stage = Stage(error=error)
    with pytest.raises(type(error)):
        call_once_more(stage.unary, "encode")
    assert stage.calls == 1


def test_a_unary_call_whose_replica_died_is_tried_once_more():
    stage = Stage(deaths=1)
    assert call_once_more(stage.unary, "encode") == "codes" and stage.calls == 2


def test_leaving_early_stops_the_stage_stream():
    stage = Stage(deaths=0)
    stream = stream_once_more(stage.stream, "render")
    assert next(stream) == 0
    stream.close()
    assert stage.closed == 1
