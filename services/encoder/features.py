"""Per-video-frame audio features with their rates recorded (DESIGN.md §1).

Frame i of a video at `fps` owns
- the 16 mel frames (200 ms, 80 Hz) starting at int(80·i/fps), and
- the 16 content frames (50 Hz) centred on round(50·i/fps) (= 2i at 25 fps), i.e.
  [c−8, c+8).
Windows that run past the audio are padded (mel: silence value −4; content: the edge
frame repeated), so every frame has a full window. The number of video frames is
round(fps · duration) (at least 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from services.common.audio import wav2lip_mel
from services.common.errors import InvalidInput, RateMismatch
from services.common.types import ANALYSIS_SAMPLE_RATE, CONTENT_FPS, MEL_FPS, VIDEO_FPS, AudioClip

MEL_WINDOW = 16
CONTENT_WINDOW = 16
#: Value of a silent mel bin in Wav2Lip's normalisation.
MEL_SILENCE = -4.0


@dataclass(frozen=True)
class ContentFrames:
    """Output of a content model: one row per 20 ms frame."""

    values: np.ndarray  # [T, C] float32: posteriors (rows sum to 1) or hidden states
    fps: float = CONTENT_FPS
    #: Names of the columns when they are posteriors over units (empty for hidden states).
    units: tuple[str, ...] = ()
    kind: str = "posteriors"  # or "hidden"


@dataclass(frozen=True)
class AudioFeatures:
    """What an AudioEncoder consumes: per-video-frame windows, with every rate recorded.

    mel_windows:     [N, 1, 80, 16] float32 tensor (dynamic path), or None
    content_windows: [N, 16, C] float32 tensor (content path), or None
    """

    fps: float
    n_frames: int
    mel_windows: torch.Tensor | None = None
    content_windows: torch.Tensor | None = None
    sample_rate: int = ANALYSIS_SAMPLE_RATE
    mel_fps: float = MEL_FPS
    content_fps: float = CONTENT_FPS

    def __post_init__(self) -> None:
        for name in ("mel_windows", "content_windows"):
            t = getattr(self, name)
            if t is not None and t.shape[0] != self.n_frames:
                raise InvalidInput(f"{name} has {t.shape[0]} frames, expected {self.n_frames}")

    def require_rates(self, stage: str, mel: bool, content: bool) -> None:
        """Raise RateMismatch unless the windows were cut at the rates `stage` was built for."""
        if self.sample_rate != ANALYSIS_SAMPLE_RATE:
            raise RateMismatch(f"{stage} needs features of {ANALYSIS_SAMPLE_RATE} Hz audio, "
                               f"got {self.sample_rate} Hz")
        if mel:
            if self.mel_windows is None:
                raise InvalidInput(f"{stage} needs mel windows (dynamic path) but none were given")
            if self.mel_fps != MEL_FPS:
                raise RateMismatch(f"{stage} needs {MEL_FPS} Hz mel frames, got {self.mel_fps} Hz")
        if content:
            if self.content_windows is None:
                raise InvalidInput(f"{stage} needs content windows (content path) but none were given")
            if self.content_fps != CONTENT_FPS:
                raise RateMismatch(f"{stage} needs {CONTENT_FPS} Hz content frames, got {self.content_fps} Hz")

    def frames(self, index: torch.Tensor | slice) -> AudioFeatures:
        """The features of a subset of video frames (e.g. a trainer's context window)."""
        mel = self.mel_windows[index] if self.mel_windows is not None else None
        content = self.content_windows[index] if self.content_windows is not None else None
        n = len(torch.arange(self.n_frames)[index])
        return replace(self, n_frames=n, mel_windows=mel, content_windows=content)

    def to(self, device: torch.device | str) -> AudioFeatures:
        move = (lambda t: t.to(device) if t is not None else None)
        return replace(self, mel_windows=move(self.mel_windows), content_windows=move(self.content_windows))


def frame_count(duration: float, fps: float = VIDEO_FPS) -> int:
    """Video frames for `duration` seconds: round(fps·duration), at least 1."""
    if fps <= 0:
        raise InvalidInput(f"fps must be positive, got {fps}")
    return max(1, int(math.floor(fps * duration + 0.5)))


def mel_windows(mel: np.ndarray, n_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """[80, T] mel at 80 Hz → [n_frames, 1, 80, 16]; window i starts at int(80·i/fps)."""
    starts = np.array([int(MEL_FPS * i / fps) for i in range(n_frames)], dtype=np.int64)
    need = int(starts[-1]) + MEL_WINDOW
    if mel.shape[1] < need:
        mel = np.pad(mel, ((0, 0), (0, need - mel.shape[1])), constant_values=MEL_SILENCE)
    idx = starts[:, None] + np.arange(MEL_WINDOW)[None, :]
    return np.ascontiguousarray(mel[:, idx].transpose(1, 0, 2)[:, None]).astype(np.float32)


def content_windows(content: ContentFrames, n_frames: int, fps: float = VIDEO_FPS) -> np.ndarray:
    """[T, C] content frames at 50 Hz → [n_frames, 16, C]; window i is centred on 50·i/fps."""
    if content.fps != CONTENT_FPS:
        raise RateMismatch(f"content frames must be {CONTENT_FPS} Hz, got {content.fps} Hz")
    values = content.values
    if values.ndim != 2 or values.shape[0] == 0:
        raise InvalidInput(f"content frames must be [T>0, C], got {values.shape}")
    centres = np.array([int(math.floor(CONTENT_FPS * i / fps + 0.5)) for i in range(n_frames)])
    idx = centres[:, None] + np.arange(-CONTENT_WINDOW // 2, CONTENT_WINDOW // 2)[None, :]
    return np.ascontiguousarray(values[np.clip(idx, 0, values.shape[0] - 1)]).astype(np.float32)


def extract_features(clip: AudioClip, fps: float = VIDEO_FPS, content: ContentFrames | None = None,
                     mel: bool = True) -> AudioFeatures:
    """A 16 kHz clip (and optionally its content frames) → per-frame windows.

    Raises RateMismatch for audio that is not 16 kHz or content that is not 50 Hz.
    """
    clip.require_rate(ANALYSIS_SAMPLE_RATE, "audio encoder")
    n = frame_count(clip.duration, fps)
    mel_t = torch.from_numpy(mel_windows(wav2lip_mel(clip.samples), n, fps)) if mel else None
    content_t = torch.from_numpy(content_windows(content, n, fps)) if content is not None else None
    return AudioFeatures(fps=fps, n_frames=n, mel_windows=mel_t, content_windows=content_t)
