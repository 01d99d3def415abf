"""Bounded gRPC load test: N concurrent Speak streams for M seconds over loopback.

Without --target it starts everything itself: a private redis-server, a tiny random-init
subject pushed to it, and Ray Serve from the packaged Serve config (CPU, ports free).
Reports errors, p50/p99 time to first media chunk (the first chunk after the init
segment), and throughput (streams/s, video seconds per wall second, frames/s) as JSON.

    .venv/bin/python bench/load_grpc.py --streams 4 --seconds 30 [--json out/load.json]
    .venv/bin/python bench/load_grpc.py --target 127.0.0.1:9000 --subject demo --key KEY
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from services.protos.talkinghead.v1 import avatar_pb2, avatar_pb2_grpc  # noqa: E402

TEXTS = ["Hello there, thanks for calling.", "How can I help you today?", "Your order ships tomorrow morning.",
         "Let me check that for you."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_stack(workdir: Path) -> tuple[str, subprocess.Popen]:
    """redis-server + tiny subject + Ray Serve; returns (grpc target, redis process)."""
    import ray

    from services.common.redis_store import RedisSubjectStore
    from services.gateway import serving
    from services.training.random_subject import random_subject

    rport = _free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{rport}/0"
    for _ in range(100):
        try:
            RedisSubjectStore(url).ping()
            break
        except Exception:  # noqa: BLE001
            time.sleep(0.05)
    RedisSubjectStore(url).push(random_subject("tiny-load", workdir))
    gport = _free_port()
    cfg = serving.adapt_config(serving.read_config(), gpus=serving.gpus_available(), http_port=_free_port(),
                               grpc_port=gport, http_host="127.0.0.1",
                               app_args={"redis_url": url, "limits": {"max_streams": 64}})
    serving.prepare_local_ray(cfg)
    ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False, namespace="serve",
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    serving.start(cfg, wait_s=300)
    return f"127.0.0.1:{gport}", redis


def run_load(target: str, subject: str, streams: int, seconds: float, key: str | None) -> dict:
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=30)
    stub = avatar_pb2_grpc.AvatarStub(channel)
    meta = (("authorization", f"Bearer {key}"),) if key else ()
    ttfc: list[float] = []
    errors: list[str] = []
    frames = [0]
    media = [0.0]
    done = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(i: int) -> None:
        k = i
        while time.perf_counter() < stop_at:
            req = avatar_pb2.SpeakRequest(text=TEXTS[k % len(TEXTS)], subject=subject)
            k += streams
            t0 = time.perf_counter()
            first = None
            try:
                last = None
                for c in stub.Speak(req, metadata=meta, timeout=120):
                    if first is None and not c.is_init_segment:
                        first = time.perf_counter() - t0
                    last = c
                with lock:
                    ttfc.append(first if first is not None else float("nan"))
                    frames[0] += last.frames_so_far
                    media[0] += last.media_seconds_so_far
                    done[0] += 1
            except grpc.RpcError as exc:
                with lock:
                    errors.append(f"{exc.code().name}: {exc.details()[:120]}")

    t_start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    channel.close()
    arr = np.array(ttfc) if ttfc else np.array([float("nan")])
    return {"target": target, "concurrent_streams": streams, "duration_s": round(wall, 1),
            "streams_completed": done[0], "errors": len(errors), "error_samples": errors[:5],
            "ttfc_p50_s": round(float(np.nanpercentile(arr, 50)), 3),
            "ttfc_p99_s": round(float(np.nanpercentile(arr, 99)), 3),
            "streams_per_s": round(done[0] / wall, 3), "frames_per_s": round(frames[0] / wall, 1),
            "video_seconds_per_wall_second": round(media[0] / wall, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", help="host:port of a running server (default: start a local stack)")
    ap.add_argument("--subject", default=None, help="subject id (default: the local stack's tiny-load)")
    ap.add_argument("--streams", type=int, default=4, help="concurrent streams (N)")
    ap.add_argument("--seconds", type=float, default=30, help="how long to keep starting streams (M)")
    ap.add_argument("--key", default=os.environ.get("TALKING_HEAD_API_KEY"), help="API key, if the server wants one")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()
    redis = None
    try:
        if args.target is None:
            work = Path(tempfile.mkdtemp(prefix="th-load-"))
            target, redis = start_local_stack(work)
            subject = args.subject or "tiny-load"
            # one warm-up stream (subject load, first TTS call) outside the measurement
            run_load(target, subject, 1, 0.01, args.key)
        else:
            target, subject = args.target, args.subject or "demo"
        result = run_load(target, subject, args.streams, args.seconds, args.key)
    finally:
        if redis is not None:
            from ray import serve

            serve.shutdown()
            redis.kill()
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
