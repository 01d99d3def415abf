"""A subject opened by its kind: the audio encoder trained with it and a renderer of the kind
its manifest names, both from one fetch of its bundle."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from services.common.bundle import SubjectBundle
from services.common.types import FrameRenderer

if TYPE_CHECKING:
    import torch


class BundleSource(Protocol):
    def load(self, subject_id: str) -> SubjectBundle: ...


@dataclass(frozen=True)
class OpenSubject:
    audio_encoder: Any  # services.encoder.model.AudioEncoder, in eval mode
    renderer: FrameRenderer

    @property
    def id(self) -> str:
        return self.renderer.id

    @property
    def digest(self) -> str:
        return self.renderer.digest


def open_subject(bundle: SubjectBundle, device: str | torch.device = "cpu") -> OpenSubject:
    """The subject's audio encoder and renderer, made on one intra-op thread: the ops of an
    opening are small (the fast path's 48² check render), and on two threads beside a busy
    one (the TTS speaking meanwhile) each waits at OpenMP's barrier: 2.5-3.6 s against 0.1-0.4 s
    for the demo on the 2-core machine."""
    from services.common.threads import intra_op_threads
    from services.encoder.service import subject_audio_encoder
    from services.renderer.service import open_renderer

    with intra_op_threads(1):
        return OpenSubject(subject_audio_encoder(bundle), open_renderer(bundle, device))


class SubjectCache:
    """An LRU of open subjects (a process's working set); thread-safe."""

    def __init__(self, source: BundleSource, device: str | None = None, size: int = 4) -> None:
        self.source = source
        self._device = device
        self.size = size
        self._open: OrderedDict[str, OpenSubject] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def device(self) -> str:
        """The device subjects open on (torch is imported here, not before a bundle is found)."""
        if self._device is None:
            import torch

            self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def get(self, subject_id: str) -> OpenSubject:
        with self._lock:
            if subject_id in self._open:
                self._open.move_to_end(subject_id)
                self.hits += 1
                return self._open[subject_id]
            self.misses += 1
        subject = open_subject(self.source.load(subject_id), self.device)
        with self._lock:
            self._open[subject_id] = subject
            self._open.move_to_end(subject_id)
            while len(self._open) > self.size:
                self._open.popitem(last=False)
        return subject
