"""A local gRPC server for benchmarks, and timed `Speak` streams against it.

`local_server` runs `talking-head serve` as a child process (Ray Serve from the packaged
Serve config on free loopback ports, subjects from the local store, one intra-op thread per
replica but the renderer's (`serve --render-threads`), the renderer's pose cache in memory
only), waits until `ListSubjects` answers, yields the gRPC target and stops the server after. `speak_streams` runs N concurrent `Speak` streams of one text, started together, and
times each: request to the first media chunk (the first after the init segment), to the
last chunk, and the video it carried.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server(log: Path, wait_s: float = 600.0, render_threads: int | None = None,
                 baked: bool = False) -> Iterator[str]:
    """`talking-head serve` on loopback (its output in `log`; `render_threads`: its
    --render-threads, default serve's own; `baked`: the bundles' baked poses on, as a fresh
    server has them); yields host:port of its gRPC."""
    import grpc

    from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc

    gport, hport = free_port(), free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "TALKING_HEAD_REDIS_URL": "", "TALKING_HEAD_API_KEYS": "",
           # no poses from disk: its first stream renders poses it has not seen (unless baked)
           "TALKING_HEAD_POSE_CACHE": "off", "TALKING_HEAD_BAKED_POSES": "on" if baked else "off"}
    env.pop("RAY_ADDRESS", None)  # a cluster of its own
    cmd = [sys.executable, "-m", "services.cli", "serve", "--grpc-port", str(gport), "--http-port", str(hport),
           "--host", "127.0.0.1"] + ([] if render_threads is None else ["--render-threads", str(render_threads)])
    with open(log, "w") as out:
        server = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    target = f"127.0.0.1:{gport}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"talking-head serve exited with {server.returncode}; see {log}")
            try:
                with grpc.insecure_channel(target) as channel:
                    avatar_pb2_grpc.AvatarStub(channel).ListSubjects(avatar_pb2.ListSubjectsRequest(), timeout=5)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no gRPC answer on {target} after {wait_s:g} s; see {log}") from None
                time.sleep(2)
        yield target
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # serve shuts down Ray Serve on Ctrl-C
            try:
                server.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        stop_leftovers(server.pid, gport)


def stop_leftovers(group: int, port: int, wait_s: float = 30.0) -> None:
    """After serve exits, Ray's processes of its session (the proxy among them) may still be
    winding down: kill what is left of the process group and wait until `port` refuses."""
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)


def speak_streams(target: str, subject: str, text: str, streams: int, timeout_s: float = 600,
                  static_pose: bool = False) -> list[dict[str, Any]]:
    """`streams` concurrent `Speak` streams of `text`, started together; one timing per stream."""
    import grpc

    from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc

    out: list[dict[str, Any]] = [{} for _ in range(streams)]
    start = threading.Barrier(streams)
    with grpc.insecure_channel(target) as channel:
        stub = avatar_pb2_grpc.AvatarStub(channel)

        def one(i: int) -> None:
            start.wait()
            t0 = time.perf_counter()
            first = last = None
            try:
                for chunk in stub.Speak(avatar_pb2.SpeakRequest(text=text, subject=subject, static_pose=static_pose),
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
    return out
