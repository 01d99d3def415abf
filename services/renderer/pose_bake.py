"""Baked poses: the fast path's cached frames of a subject's default pose walk, inside its bundle.

A request's poses walk the subject's track from the phase its seed picks (`say` and a gRPC
`Speak` default to seed 0, and one request's sentences continue one walk), so the first
seconds of that walk are the poses a new machine renders first. A pose seen for the first
time costs the whole coarse-to-fine frame; a cached one only its changed mouth and eyes.
A bundle with baked poses (`talking-head subject bake`; `train` bakes by default) carries
those frames as PNGs of their difference from the background (`poses.safetensors`: keys,
PNG bytes, reach cells), each decoded when the fast path first asks for its pose, so a fresh
process starts as warm as a server that has rendered that walk before.

A baked frame is what the fast path's own first render of the pose makes with a neutral
(zero) audio code; the request's code changes it where the mouth and eyes move, as for any
cached pose. Baked frames are only a head start: a store that does not fit this renderer
(another size, another lattice) is ignored with a warning, and `$TALKING_HEAD_BAKED_POSES`
= "off" turns them off (the bench's measure of poses never rendered).
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
from collections.abc import Callable

import numpy as np
import torch

from services.renderer.fast import CachedFrame, FastRenderer
from services.renderer.head_field import HeadCond

log = logging.getLogger(__name__)

BLOB = "poses.safetensors"
ENV = "TALKING_HEAD_BAKED_POSES"
_FORMAT = "1"
#: Default length of the baked walk and the bound of the blob (a bundle file stays ≤ 25 MB).
DEFAULT_SECONDS = 20.0
DEFAULT_MAX_BYTES = 18 << 20
#: Frames decoded together on the first use of one of them (in walk order).
CHUNK = 32


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def pose_key(pose: np.ndarray) -> bytes:
    """The pose cache's key of one 4x4 pose: its float32 bytes (equal poses, equal keys)."""
    return np.ascontiguousarray(pose, dtype=np.float32).tobytes()


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _background(fast: FastRenderer) -> np.ndarray:
    return (fast.background * 255).round().to(torch.uint8).cpu().numpy()


def _minus(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """image − background, modulo 256: the pixels the head leaves alone are 0 (a PNG of
    them costs 0.7× the frame's)."""
    return (image.astype(np.int16) - background).astype(np.uint8)


@torch.no_grad()
def bake(fast: FastRenderer, poses: np.ndarray, max_bytes: int = DEFAULT_MAX_BYTES, batch: int = 8,
         progress: Callable[[int, int], None] | None = None) -> bytes:
    """The blob of baked frames for poses [N, 4, 4] (in walk order, renderer space): each
    distinct pose rendered cold by `fast` with a zero code and open eyes, until the PNGs
    reach `max_bytes`. `progress(done, total)` after each batch."""
    from safetensors.numpy import save

    keys: list[bytes] = []
    pngs: list[bytes] = []
    reach: list[np.ndarray] = []
    order: dict[bytes, int] = {}  # the first frame of each distinct pose
    for i, p in enumerate(poses):
        order.setdefault(pose_key(p), i)
    todo = list(order.values())
    dim = fast.model.head.config.audio_dim
    dev = fast.background.device
    background = _background(fast)
    total, full = 0, False
    for s in range(0, len(todo), batch):
        idx = todo[s:s + batch]
        c2w = torch.as_tensor(poses[idx], dtype=torch.float32, device=dev)
        cond = HeadCond(torch.zeros(len(idx), dim, device=dev), torch.zeros(len(idx), device=dev), None, lean=True)
        parts = fast._split(lambda frames: fast._cold(c2w, cond, torch.tensor(frames, device=dev)),
                            list(range(len(idx))))
        for frames, (images, cells) in parts:
            for j, i in enumerate(frames):
                png = _png(_minus((images[j] * 255).round().to(torch.uint8).cpu().numpy(), background))
                full = total + len(png) > max_bytes
                if full:
                    break
                keys.append(pose_key(poses[idx[i]]))
                pngs.append(png)
                reach.append(np.packbits(cells[j].cpu().numpy().reshape(-1)))
                total += len(png)
            if full:
                break
        if progress is not None:
            progress(len(keys) if full else min(s + batch, len(todo)), len(keys) if full else len(todo))
        if full:
            break
    if not keys:
        raise ValueError("no pose baked: max_bytes is smaller than one frame")
    offsets = np.zeros(len(pngs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in pngs])
    h, w = fast.intr.height, fast.intr.width
    return save({"keys": np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1),
                 "reach": np.stack(reach), "offsets": offsets,
                 "png": np.frombuffer(b"".join(pngs), dtype=np.uint8)},
                metadata={"format": _FORMAT, "size": f"{h}x{w}", "cells": "x".join(map(str, fast.cells))})


class BakedPoses:
    """A bundle's baked frames, looked up by pose key and decoded on first use, `CHUNK` at a
    time (the walk asks for them in order)."""

    def __init__(self, blob: bytes, fast: FastRenderer) -> None:
        from safetensors.numpy import load

        t = load(blob)
        self._png, self._offsets, self._reach = t["png"], t["offsets"], t["reach"]
        keys = t["keys"]
        self._index = {keys[i].tobytes(): i for i in range(len(keys))}
        self.cells = fast.cells
        self._background = _background(fast)
        self.device = fast.background.device
        self.hits = 0
        self._chunk: tuple[int, torch.Tensor, torch.Tensor] | None = None
        self._lock = threading.Lock()
        if (keys.shape[1:] != (64,) or len(self._offsets) != len(keys) + 1
                or self._reach.shape != (len(keys), math.ceil(self.cells[0] * self.cells[1] / 8))):
            raise ValueError(f"{len(keys)} baked poses of another shape than this renderer's")

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: bytes) -> CachedFrame | None:
        i = self._index.get(key)
        if i is None:
            return None
        with self._lock:
            start = i - i % CHUNK
            if self._chunk is None or self._chunk[0] != start:
                self._chunk = (start, *self._decode(start, min(len(self), start + CHUNK)))
            _, images, cells = self._chunk
            self.hits += 1
        return CachedFrame(images[i - start], cells[i - start])

    def _decode(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames start..end-1 into one tensor: frames decoded one at a time between renders
        leave the heap fragmented (glibc kept 2.6 MB per frame); a chunk at a time does not."""
        from PIL import Image

        h, w = self._background.shape[:2]
        images = torch.empty(end - start, h, w, 3, dtype=torch.uint8)
        for j, i in enumerate(range(start, end)):
            data = self._png[self._offsets[i]:self._offsets[i + 1]].tobytes()
            delta = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            if delta.shape != self._background.shape:
                raise ValueError(f"baked pose {i} is {delta.shape[1]}x{delta.shape[0]}, the renderer {w}x{h}")
            images[j] = torch.from_numpy(delta + self._background)  # uint8 wraps: the inverse of `_minus`
        n = self.cells[0] * self.cells[1]
        cells = np.unpackbits(self._reach[start:end], axis=1)[:, :n].astype(bool).reshape(end - start, *self.cells)
        return images.to(self.device), torch.from_numpy(cells).to(self.device)


def attach(fast: FastRenderer, blob: bytes, subject: str) -> BakedPoses | None:
    """Give `fast`'s pose cache the bundle's baked frames; None (with a warning) if they do not fit."""
    try:
        baked = BakedPoses(blob, fast)
    except Exception as exc:  # noqa: BLE001 - baked frames are a head start, never needed
        log.warning("subject %r: baked poses not used (%s)", subject, exc)
        return None
    fast.cache.baked = baked.get
    return baked
