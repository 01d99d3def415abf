"""Frame sinks: where the pipeline's frames and audio go.

The pipeline opens a sink with the video's spec, writes frame batches with the audio that
spans them, and closes it. A sink decides the container and the delivery: an mp4 file,
fragmented-MP4 chunks handed on as they exist (HTTP, gRPC `Speak`), and later a WebRTC track
or a browser stream. A new sink is a class with this shape; the pipeline does not change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from services.common.video import Mp4Muxer, VideoSpec, split_init


class MediaSink(Protocol):
    #: perf_counter() when the sink first delivered media to its client; None until then,
    #: and always None for sinks that deliver only at the end (a file).
    first_media_at: float | None

    def open(self, spec: VideoSpec) -> None: ...

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        """uint8 [b, H, W, 3] frames and the float32 mono samples (spec.sample_rate) they span."""
        ...

    def close(self, complete: bool) -> None:
        """After the last write (complete=True), or when the request failed or was cancelled."""
        ...


@dataclass
class Chunk:
    """One piece of a fragmented MP4: the init segment first, then whole fragments."""

    data: bytes
    index: int
    frames_so_far: int
    seconds_so_far: float
    is_init: bool = False
    is_last: bool = False


class Mp4FileSink:
    """A progressive mp4 (index at the front) written to `path`."""

    first_media_at: float | None = None

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._muxer: Mp4Muxer | None = None

    def open(self, spec: VideoSpec) -> None:
        self._muxer = Mp4Muxer(spec, fragmented=False, path=self.path)

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        assert self._muxer is not None, "open the sink first"
        self._muxer.add(frames, audio)

    def close(self, complete: bool) -> None:
        if self._muxer is None:
            return
        try:
            self._muxer.finish()
        except Exception:  # noqa: BLE001 - a failed request leaves a partial file the caller discards
            if complete:
                raise


class FragmentedMp4Sink:
    """Fragmented-MP4 chunks handed to `on_chunk` as soon as a frame batch is encoded: the
    init segment, then one chunk per batch (its fragment)."""

    def __init__(self, on_chunk: Callable[[Chunk], None]) -> None:
        self._on_chunk = on_chunk
        self._muxer: Mp4Muxer | None = None
        self._chunks = 0
        self._frames = 0
        self.first_media_at: float | None = None

    def open(self, spec: VideoSpec) -> None:
        self._muxer = Mp4Muxer(spec, fragmented=True)

    def _emit(self, data: bytes, last: bool = False) -> None:
        if not data and not last:
            return
        assert self._muxer is not None
        if self._chunks >= 1 and self.first_media_at is None:
            self.first_media_at = time.perf_counter()
        self._on_chunk(Chunk(data, self._chunks, self._frames, self._frames / self._muxer.spec.fps,
                             is_init=self._chunks == 0, is_last=last))
        self._chunks += 1

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        assert self._muxer is not None, "open the sink first"
        data = self._muxer.add(frames, audio)
        if self._chunks == 0:  # the first batch's bytes hold the init segment, then its fragment
            init, data = split_init(data)
            self._emit(init)
        self._frames += len(frames)
        self._emit(data)

    def close(self, complete: bool) -> None:
        if self._muxer is not None and complete:
            self._emit(self._muxer.finish(), last=True)

