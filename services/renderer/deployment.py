"""Ray Serve deployment for the renderer: multiplexed by subject id, one GPU per replica where
GPUs exist (resources come from the Serve config file), streaming frame batches.

Subjects load through `SubjectSource` (Redis, then the local store) and live in Ray Serve's
per-replica LRU (`@serve.multiplexed`), so a replica keeps rendering its loaded subjects when
Redis is down. Rendering runs one batch at a time in a worker thread: a cancelled stream
stops after the batch in flight. `threads` > 0 renders on that many intra-op threads instead
of the replica's own count (Ray gives an actor as many as its `num_cpus`), shared by the
streams rendering at the time: on a CPU machine the fast path splits a batch's frames over
them, and the other stages' replicas are mostly idle while a stream renders.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np
import ray
from ray import serve

from services.common.errors import InvalidInput, RateMismatch
from services.common.rpc import grpc_method
from services.common.subject_source import SubjectSource
from services.common.threads import intra_op_threads
from services.common.types import render_batches
from services.common.wire import codes_from_proto
from services.protos.talkinghead.v1 import common_pb2

MAX_SUBJECTS = int(os.environ.get("TALKING_HEAD_RENDERER_SUBJECTS", "4"))
_END = object()


@serve.deployment(name="Renderer")
class RendererDeployment:
    def __init__(self, redis_url: str | None = None, device: str | None = None, frames_per_batch: int = 8,
                 threads: int = 0) -> None:
        import torch
        from ray.serve.metrics import Counter, Histogram

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.source = SubjectSource(redis_url)
        self.frames_per_batch = frames_per_batch
        self.threads = threads if threads > 0 else None
        self.stats_ = {"requests": 0, "loads": 0, "load_failures": 0, "frames": 0, "active_renders": 0}
        self._m_cache = Counter("talking_head_renderer_subject_cache_total",
                                description="Subject lookups in this replica by result (hit, miss).",
                                tag_keys=("result",))
        self._m_frames = Counter("talking_head_renderer_frames_total", description="Frames rendered.")
        self._m_load = Histogram("talking_head_renderer_subject_load_seconds", description="Subject load time.",
                                 boundaries=[0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])

    @serve.multiplexed(max_num_models_per_replica=MAX_SUBJECTS)
    async def _load(self, subject_id: str) -> Any:
        from services.renderer.service import open_renderer

        t0 = time.perf_counter()
        try:
            loaded = await asyncio.to_thread(lambda: open_renderer(self.source.load(subject_id), self.device))
        except BaseException:
            self.stats_["load_failures"] += 1
            raise
        self.stats_["loads"] += 1
        self._m_load.observe(time.perf_counter() - t0)
        return loaded

    async def _subject(self, subject_id: str | None = None) -> tuple[Any, bool]:
        """(the subject's renderer, was it already loaded here)."""
        sid = subject_id or serve.get_multiplexed_model_id()
        self.stats_["requests"] += 1
        before = self.stats_["loads"] + self.stats_["load_failures"]
        subject = await self._load(sid)
        hit = self.stats_["loads"] + self.stats_["load_failures"] == before
        self._m_cache.inc(tags={"result": "hit" if hit else "miss"})
        return subject, hit

    # ---- Python API (handles) ---------------------------------------------------------------
    async def prepare(self) -> dict[str, Any]:
        """Load (or find) the multiplexed subject; its rates, size and the cache outcome."""
        t0 = time.perf_counter()
        s, hit = await self._subject()
        return {"id": s.id, "fps": s.fps, "size": s.size, "digest": s.digest, "pose_frames": s.pose_frames,
                "cache": "hit" if hit else "miss",
                "load_seconds": 0.0 if hit else time.perf_counter() - t0}

    async def render(self, codes: np.ndarray, static_pose: bool = False, seed: int = 0, start: int = 0,
                     frames_per_batch: int = 0, exact: bool = False, first_batch: int = 0, pose_span: int = 0):
        """Stream uint8 [b, H, W, 3] batches for codes [N, 64] (the multiplexed subject);
        `exact`: every ray of every frame (no fast render path); `first_batch` > 0: the first
        frames in a smaller batch of their own; `pose_span` > 0: poses from the first frames of
        the track only."""
        s, _ = await self._subject()
        async for frames in self._stream(s, codes, static_pose, seed, start, frames_per_batch, exact=exact,
                                         first_batch=first_batch, pose_span=pose_span):
            yield frames

    async def _stream(self, s: Any, codes: np.ndarray, static_pose: bool, seed: int, start: int,
                      frames_per_batch: int,
                      poses: np.ndarray | None = None, blinks: np.ndarray | None = None, exact: bool = False,
                      first_batch: int = 0, pose_span: int = 0):
        codes = np.array(codes, dtype=np.float32)  # arrays from Ray's object store are read-only
        if poses is None or blinks is None:
            p, b = s.conditions(len(codes), static_pose, seed=seed, start=start, span=pose_span)
            poses = p if poses is None else poses
            blinks = b if blinks is None else blinks
        it = render_batches(s, codes, poses, blinks, frames_per_batch or self.frames_per_batch, first_batch,
                            fps=s.fps, exact=exact)
        self.stats_["active_renders"] += 1
        try:
            while True:  # one batch per thread hop: cancellation lands between batches
                frames = await asyncio.to_thread(self._next, it)
                if frames is _END:
                    return
                self.stats_["frames"] += len(frames)
                self._m_frames.inc(len(frames))
                yield frames
        finally:
            self.stats_["active_renders"] -= 1
            it.close()

    def _next(self, it: Any) -> Any:
        with intra_op_threads(self.batch_threads()):
            return next(it, _END)

    def batch_threads(self) -> int | None:
        """Intra-op threads for the next batch: `threads` shared by the streams rendering now
        (two streams on two threads each would wait on each other's cores)."""
        if self.threads is None:
            return None
        return max(1, self.threads // max(1, self.stats_["active_renders"]))

    async def stats(self) -> dict[str, int | str]:
        """This replica's counters and its Ray actor name (`replica`: to find it, e.g. to stop it)."""
        return {**self.stats_, "replica": ray.get_runtime_context().get_actor_name() or ""}

    # ---- gRPC (talkinghead.v1.Renderer) --------------------------------------------------------
    @grpc_method
    async def Render(self, request: Any, grpc_context: Any = None):
        codes = codes_from_proto(request.codes)
        cond = request.conditions
        poses = blinks = None
        if cond.poses_f32le:
            if len(cond.poses_f32le) != len(codes) * 64:
                raise InvalidInput(f"poses must be {len(codes)}×16 float32")
            poses = np.frombuffer(cond.poses_f32le, "<f4").reshape(-1, 4, 4).copy()
        if cond.blinks_f32le:
            if len(cond.blinks_f32le) != len(codes) * 4:
                raise InvalidInput(f"blinks must be {len(codes)} float32")
            blinks = np.frombuffer(cond.blinks_f32le, "<f4").copy()
        s, _ = await self._subject(request.subject)
        if request.codes.fps and abs(request.codes.fps - s.fps) > 1e-6:
            raise RateMismatch(f"subject {s.id!r} renders at {s.fps:g} fps, codes are for {request.codes.fps:g} fps")
        h, w = s.size
        first = 0
        async for frames in self._stream(s, codes, cond.static_pose, 0, 0, request.frames_per_batch, poses, blinks):
            yield common_pb2.FrameBatch(first_frame=first, n_frames=len(frames), width=w, height=h, fps=s.fps,
                                        rgb_u8=frames.tobytes())
            first += len(frames)
