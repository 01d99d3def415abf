"""The fast path's pose cache kept on disk, so a pose is rendered once per machine, not per process.

A replayed pose track walks the same poses on every request with the same seed (`say`'s
default, a live session's idle span), and a server restarted, or a second `say`, would
otherwise cast every ray of those poses again. The file holds the cached frames of one
subject under one fast-path setting: its name is a digest of the bundle, the fast-path
config, the sample precision and the fitted occupancy grid, so a retrained subject or a
changed setting never reads frames made by another. It is a cache: a missing, stale or
unreadable file is ignored (and replaced), never an error, and it is written whole to a
temporary file and renamed, so readers see the old file or the new one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from services.renderer.fast import CachedFrame, FastRenderer

log = logging.getLogger(__name__)

#: Set to "off" (or "0") to keep the pose cache in memory only.
ENV = "TALKING_HEAD_POSE_CACHE"
_FORMAT = "1"


def enabled() -> bool:
    return os.environ.get(ENV, "on").strip().lower() not in ("off", "0", "false", "no")


def cache_path(directory: Path, digest: str, fast: FastRenderer) -> Path:
    """The file of this subject (bundle digest) under this fast renderer's setting."""
    h = hashlib.sha256()
    for part in (_FORMAT, digest, repr(fast.config), str(fast.render_config.autocast_dtype),
                 fast.background.device.type, f"{fast.intr.height}x{fast.intr.width}"):
        h.update(part.encode())
        h.update(b"\0")
    h.update(fast.occupancy.mask.detach().cpu().contiguous().numpy().tobytes())
    return directory / f"{digest[:16]}-{h.hexdigest()[:16]}.safetensors"


def load(fast: FastRenderer, path: Path) -> int:
    """Put the file's frames into the renderer's cache (oldest first); how many were read."""
    if not path.is_file():
        return 0
    try:
        with safe_open(str(path), framework="pt") as f:
            keys, images, reach = f.get_tensor("keys"), f.get_tensor("images"), f.get_tensor("reach")
        h, w = fast.intr.height, fast.intr.width
        if (images.dtype != torch.uint8 or tuple(images.shape[1:]) != (h, w, 3) or reach.dtype != torch.bool
                or tuple(reach.shape[1:]) != fast.cells or keys.dtype != torch.uint8
                or not len(keys) == len(images) == len(reach)):
            raise ValueError("shapes do not match this renderer")
    except Exception as exc:  # noqa: BLE001 - a cache file that cannot be used is only a cache miss
        log.warning("pose cache %s not used (%s); it will be rewritten", path, exc)
        return 0
    device = fast.background.device
    for k, im, r in zip(keys, images, reach):
        fast.cache.put(k.numpy().tobytes(), CachedFrame(im.to(device), r.to(device)))
    return len(keys)


def save(fast: FastRenderer, path: Path) -> int:
    """Write the renderer's cached frames to `path` (atomically); how many were written."""
    items = fast.cache.items()
    if not items:
        return 0
    keys = torch.frombuffer(bytearray(b"".join(k for k, _ in items)), dtype=torch.uint8).view(len(items), -1)
    tensors = {"keys": keys,
               "images": torch.stack([v.image.cpu() for _, v in items]).contiguous(),
               "reach": torch.stack([v.reach.cpu() for _, v in items]).contiguous()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": _FORMAT})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(items)


class PersistedPoses:
    """One subject's pose cache tied to its file: read at open, written back after renders
    that added poses (on a thread of its own, one write at a time)."""

    def __init__(self, fast: FastRenderer, path: Path) -> None:
        self.fast, self.path = fast, path
        self.loaded = load(fast, path)
        self._saved_misses = fast.cache.misses
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def flush(self, wait: bool = False) -> None:
        """Write the cache if poses were added since the last write; `wait`: until written."""
        with self._lock:
            if self.fast.cache.misses != self._saved_misses:
                self._saved_misses = self.fast.cache.misses
                if self._thread is not None:
                    self._thread.join()
                # not a daemon: a `say` process that ends right after its render still writes the file
                self._thread = threading.Thread(target=self._write, name="pose-cache-write")
                self._thread.start()
            thread = self._thread
        if wait and thread is not None:
            thread.join()

    def _write(self) -> None:
        try:
            save(self.fast, self.path)
        except OSError as exc:
            log.warning("pose cache %s not written: %s", self.path, exc)
