"""`bench --stage realtime --grpc`: `talking-head serve` as a child process, timed Speak streams
of the bundled demo over loopback, and the server gone after."""

from __future__ import annotations

import pytest

pytest.importorskip("grpc")
pytestmark = pytest.mark.integration


def test_grpc_streams_time_first_chunk_and_rtf_and_stop_the_server():
    import grpc

    from services.bench.realtime import QUICK_SENTENCE, grpc_streams

    out = grpc_streams("demo", QUICK_SENTENCE, streams=(1, 2))
    for n in (1, 2):
        part = out[f"streams_{n}"]
        assert part["errors"] == 0 and len(part["streams"]) == n
        assert all(0 < s["first_chunk_s"] < s["wall_s"] and s["frames"] > 0 for s in part["streams"])
        assert part["first_chunk_s_max"] > 0 and part["rtf_max"] > 0
    with grpc.insecure_channel(out["target"]) as channel, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=2)  # the server stopped with the block
