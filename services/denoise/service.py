"""DenoiseService: speech enhancement for any sample rate, whole files or streams.

Models: ``zipenhancer`` (paper size, ≈2 M parameters), ``zipenhancer-small`` (CPU real
time; the default), ``rnnoise`` (pyrnnoise) and ``spectral`` (noisereduce gating), the
last two from the ``baselines`` extra.

Audio is resampled to 16 kHz, enhanced in overlapping windows (a core of
``chunk_seconds`` plus ``context_seconds`` on each side, whose output is discarded), and
resampled back to the caller's rate and length. Windows start on STFT hop (and downsampling pair) boundaries and
the network's receptive field is bounded, so the result equals whole-file processing
away from the seams while memory stays bounded by the window, not the file. One level
(gain) is measured over the whole input so every window is normalised alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from services.common.audio import MAX_AUDIO_SECONDS, check_audio, load_audio, resample
from services.common.errors import InvalidInput, NotFound, RateMismatch
from services.common.types import ANALYSIS_SAMPLE_RATE, AudioClip
from services.denoise import baselines
from services.denoise.checkpoint import load_model
from services.denoise.models import DEFAULT_MODEL, MODELS
from services.denoise.zipenhancer import ZipEnhancer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Windows start on multiples of this many samples: whole STFT hops (100) and whole pairs of
#: the stacks' time downsampling (up to 4 frames), so each window sees the frames a
#: whole-file pass sees.
_ALIGN = 400

WindowFn = Callable[[np.ndarray, float], np.ndarray]


def active_level(x: np.ndarray, sample_rate: int = ANALYSIS_SAMPLE_RATE) -> float:
    """RMS over the louder half of 100 ms frames: a level that long pauses do not drag down."""
    frame = sample_rate // 10
    n = len(x) // frame
    if n < 2:
        return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))
    energy = np.sort(np.mean(np.square(x[:n * frame].reshape(n, frame), dtype=np.float64), 1))
    return float(np.sqrt(energy[n // 2:].mean() + 1e-20))


class DenoiseService:
    """Loads models lazily; `enhance` for whole clips, `stream` for incremental audio."""

    def __init__(self, weights_dir: Path = WEIGHTS_DIR, max_seconds: float = MAX_AUDIO_SECONDS,
                 chunk_seconds: float = 8.0, context_seconds: float = 1.5) -> None:
        self.weights_dir = Path(weights_dir)
        self.max_seconds = max_seconds
        self.chunk = _to_hops(chunk_seconds)
        self.context = _to_hops(context_seconds)
        if self.chunk <= 0 or self.context < 0:
            raise ValueError("chunk_seconds must be > 0 and context_seconds >= 0")
        self._networks: dict[str, ZipEnhancer] = {}
        self._lock = threading.Lock()

    def models(self) -> tuple[str, ...]:
        return MODELS

    def network(self, model: str) -> ZipEnhancer:
        """The loaded ZipEnhancer for `model` (zipenhancer | zipenhancer-small)."""
        with self._lock:
            if model not in self._networks:
                self._networks[model] = load_model(self.weights_dir / model)
            return self._networks[model]

    def _window_fn(self, model: str) -> WindowFn:
        if model not in MODELS:
            raise NotFound(f"unknown denoise model {model!r}: choose one of {', '.join(MODELS)}")
        if model == "rnnoise":
            return lambda x, level: baselines.rnnoise(x, ANALYSIS_SAMPLE_RATE)
        if model == "spectral":
            return lambda x, level: baselines.spectral_gating(x, ANALYSIS_SAMPLE_RATE)
        net = self.network(model)

        def run(x: np.ndarray, level: float) -> np.ndarray:
            with torch.inference_mode():
                y = net.enhance(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None],
                                gain=1.0 / max(level, 1e-6))
            return y[0].numpy()

        return run

    def validate(self, clip: AudioClip) -> AudioClip:
        """Empty, NaN/inf and over-long audio → InvalidInput (one line)."""
        return check_audio(clip.samples, clip.sample_rate, self.max_seconds)

    def enhance(self, clip: AudioClip, model: str = DEFAULT_MODEL, progress: bool = False) -> AudioClip:
        """Enhanced audio at the input's own sample rate and length."""
        fn = self._window_fn(model)
        clip = self.validate(clip)
        x = resample(clip.samples, clip.sample_rate, ANALYSIS_SAMPLE_RATE)
        y = self._chunked(fn, x, active_level(x), progress)
        out = resample(y, ANALYSIS_SAMPLE_RATE, clip.sample_rate)[:len(clip.samples)]
        out = np.pad(out, (0, len(clip.samples) - len(out)))
        return AudioClip(np.clip(out, -1.0, 1.0).astype(np.float32), clip.sample_rate)

    def enhance_bytes(self, data: bytes, model: str = DEFAULT_MODEL) -> AudioClip:
        """Decode any audio file's bytes (undecodable → InvalidInput), then enhance."""
        return self.enhance(load_audio(data, self.max_seconds), model)

    def _chunked(self, fn: WindowFn, x: np.ndarray, level: float, progress: bool) -> np.ndarray:
        from tqdm import tqdm

        n, core, ctx = len(x), self.chunk, self.context
        out = np.empty(n, np.float32)
        starts = range(0, n, core)
        for s in tqdm(starts, desc="denoise", unit="chunk", disable=not progress or len(starts) < 2):
            lo, hi = max(0, s - ctx), min(n, s + core + ctx)
            y = fn(x[lo:hi], level)
            out[s:min(n, s + core)] = y[s - lo:s - lo + min(core, n - s)]
        return out

    def stream(self, model: str = DEFAULT_MODEL, sample_rate: int = ANALYSIS_SAMPLE_RATE,
               chunk_seconds: float = 2.0) -> "DenoiseStream":
        """An incremental enhancer for 16 kHz audio arriving in pieces (the gateway's mode)."""
        if sample_rate != ANALYSIS_SAMPLE_RATE:
            raise RateMismatch(f"denoise streams take {ANALYSIS_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
        return DenoiseStream(self._window_fn(model), _to_hops(chunk_seconds), self.context,
                             int(self.max_seconds * ANALYSIS_SAMPLE_RATE))


class DenoiseStream:
    """push() 16 kHz samples, get back enhanced samples as soon as their right context exists.

    Latency is one chunk plus the context. The level is the active level of everything
    heard so far. Output of all push() calls followed by flush() has the input's length.
    """

    def __init__(self, fn: WindowFn, chunk: int, context: int, max_samples: int) -> None:
        self._fn, self._chunk, self._ctx, self._max = fn, chunk, context, max_samples
        self._buf = np.zeros(0, np.float32)  # input from (emitted − context) on
        self._emitted = 0
        self._seen = 0
        self._history: list[float] = []  # energies of 100 ms blocks, for the running level

    def _level(self) -> float:
        e = np.sort(np.asarray(self._history))
        return float(np.sqrt(e[len(e) // 2:].mean() + 1e-20)) if len(e) else 1.0

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.asarray(samples, dtype=np.float32).ravel()
        if x.size and not np.all(np.isfinite(x)):
            raise InvalidInput("audio contains NaN or infinite samples")
        self._seen += x.size
        if self._seen > self._max:
            raise InvalidInput(f"stream is longer than the limit of {self._max / ANALYSIS_SAMPLE_RATE:.0f} s")
        self._buf = np.concatenate([self._buf, np.clip(x, -1, 1)])
        frame = ANALYSIS_SAMPLE_RATE // 10  # tally the energy of each completed 100 ms block
        done = (self._seen - x.size) // frame
        while (done + 1) * frame <= self._seen:
            start = done * frame - (self._seen - len(self._buf))
            block = self._buf[start:start + frame]
            self._history.append(float(np.mean(np.square(block, dtype=np.float64))))
            done += 1
        parts = []
        while self._ready() >= self._chunk + self._ctx:
            parts.append(self._emit(self._chunk))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _ready(self) -> int:
        """Samples available after the emission point."""
        return self._seen - self._emitted

    def _emit(self, count: int) -> np.ndarray:
        base = self._seen - len(self._buf)  # absolute index of self._buf[0]
        lo = max(0, self._emitted - self._ctx)
        hi = min(self._seen, self._emitted + count + self._ctx)
        y = self._fn(self._buf[lo - base:hi - base], self._level())
        out = y[self._emitted - lo:self._emitted - lo + count]
        self._emitted += count
        keep_from = max(0, self._emitted - self._ctx) - base
        self._buf = self._buf[keep_from:]
        return out.astype(np.float32)

    def flush(self) -> np.ndarray:
        """Enhance and return whatever input is left."""
        parts = []
        while self._ready() > 0:
            parts.append(self._emit(min(self._chunk, self._ready())))
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _to_hops(seconds: float) -> int:
    return int(round(seconds * ANALYSIS_SAMPLE_RATE / _ALIGN)) * _ALIGN
