"""A local serving stack for benchmarks, and timed gRPC `Speak` streams against it.

`local_stack` starts a private redis-server, pushes subject bundles to it and starts Ray
Serve from the packaged Serve config (CPU, free ports, one intra-op thread per replica);
it yields the gRPC target and takes everything down after. `speak_streams` runs N
concurrent `Speak` streams of one text and times each: request to first media chunk (the
first chunk after the init segment), to the last chunk, and the video it carried.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from services.common.bundle import SubjectBundle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_stack(workdir: Path, bundles: Sequence[SubjectBundle], max_streams: int = 64) -> Iterator[str]:
    """redis-server + `bundles` pushed to it + Ray Serve; yields the gRPC target (host:port)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import serve

    from services.common.redis_store import RedisSubjectStore
    from services.gateway import serving

    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{rport}/0"
        for _ in range(100):
            try:
                RedisSubjectStore(url).ping()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        for bundle in bundles:
            RedisSubjectStore(url).push(bundle)
        gport = free_port()
        cfg = serving.adapt_config(serving.read_config(), gpus=serving.gpus_available(), http_port=free_port(),
                                   grpc_port=gport, http_host="127.0.0.1",
                                   app_args={"redis_url": url, "limits": {"max_streams": max_streams}})
        serving.prepare_local_ray(cfg)
        ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, namespace="serve",
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        try:
            serving.start(cfg, wait_s=300)
            yield f"127.0.0.1:{gport}"
        finally:
            serve.shutdown()
            ray.shutdown()
    finally:
        redis.kill()
        redis.wait()


def speak_streams(target: str, subject: str, text: str, streams: int, key: str | None = None,
                  timeout_s: float = 300) -> list[dict[str, Any]]:
    """`streams` concurrent `Speak` streams of `text`, started together; one timing per stream."""
    import grpc

    from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc

    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = avatar_pb2_grpc.AvatarStub(channel)
    meta = (("authorization", f"Bearer {key}"),) if key else ()
    out: list[dict[str, Any]] = [{} for _ in range(streams)]
    start = threading.Barrier(streams)

    def one(i: int) -> None:
        start.wait()
        t0 = time.perf_counter()
        first = last = None
        try:
            for chunk in stub.Speak(avatar_pb2.SpeakRequest(text=text, subject=subject), metadata=meta,
                                    timeout=timeout_s):
                if first is None and not chunk.is_init_segment:
                    first = time.perf_counter() - t0
                last = chunk
            wall = time.perf_counter() - t0
            media = last.media_seconds_so_far if last is not None else 0.0
            out[i] = {"first_chunk_s": first, "wall_s": wall, "frames": last.frames_so_far if last else 0,
                      "media_s": media, "rtf": wall / media if media else None}
        except grpc.RpcError as exc:
            out[i] = {"error": f"{exc.code().name}: {(exc.details() or '')[:160]}"}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    channel.close()
    return out
