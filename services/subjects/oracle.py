"""The synthetic oracle subject: a procedural talking head whose ground truth is known.

For any Speech (TTS audio + phoneme timings) it renders, frame by frame and exactly,
the image, parsing labels, torso layer, 68 landmarks, camera pose, blink and mouth
opening. Mouth shapes come from visemes of the phoneme timings; blinks and small head
motion are smooth random functions of time fixed by the seed, so the same (seed,
speech, fps) always gives the same frames. Pure numpy, no I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.errors import InvalidInput
from services.common.types import VIDEO_FPS, Speech
from services.subjects import raycast as rc
from services.subjects.layout import POSE_SCALE
from services.subjects.oracle_render import OracleRenderer
from services.subjects.oracle_scene import PIVOT, FaceState
from services.subjects.visemes import mouth_track, speech_units

#: Indices of the inner-lip landmarks at the top and bottom centre.
INNER_LIP_TOP, INNER_LIP_BOTTOM = 62, 66


@dataclass(frozen=True)
class FrameMeta:
    """Per-frame ground truth that is not an image."""

    index: int
    c2w: np.ndarray  #: [4,4] camera-to-head, OpenGL, dataset convention (translation / POSE_SCALE)
    blink: float  #: 0 open … 1 closed (au.csv AU45_r = 2·blink)
    mouth_open: float  #: viseme jaw opening 0…1
    mouth_round: float  #: viseme lip rounding 0…1
    landmarks: np.ndarray  #: [68,2] pixels

    @property
    def inner_lip_gap(self) -> float:
        """Mouth opening measured on the image: inner-lip centre distance in pixels."""
        return float(np.linalg.norm(self.landmarks[INNER_LIP_BOTTOM] - self.landmarks[INNER_LIP_TOP]))


@dataclass(frozen=True)
class OracleFrame:
    meta: FrameMeta
    image: np.ndarray  #: uint8 [S,S,3]
    labels: np.ndarray  #: uint8 [S,S]: 0 background, 1 head, 2 neck, 3 torso
    torso: np.ndarray  #: uint8 [S,S,4] neck + torso layer with alpha (what lies behind the head)
    mouth_interior: np.ndarray  #: bool [S,S] teeth, tongue and dark interior pixels


@dataclass(frozen=True)
class GroundTruth:
    """Everything the oracle knows about a clip, stacked over frames."""

    images: np.ndarray  #: uint8 [T,S,S,3]
    c2w: np.ndarray  #: float32 [T,4,4] dataset convention
    landmarks: np.ndarray  #: float32 [T,68,2]
    blink: np.ndarray  #: float32 [T]
    mouth_open: np.ndarray  #: float32 [T]
    mouth_round: np.ndarray  #: float32 [T]
    inner_lip_gap: np.ndarray  #: float32 [T] pixels
    mouth_interior: np.ndarray  #: int32 [T] interior pixel count
    background: np.ndarray  #: bool [T,S,S] pixels where only the background shows
    fps: float


class SpeakingSubject(ABC):
    """The oracle's interface, which the dataset writer renders: the per-frame states of any
    speech, and each state rendered exactly."""

    @abstractmethod
    def states(self, speech: Speech, fps: float = VIDEO_FPS, start_time: float = 0.0,
               n_frames: int | None = None) -> list[Any]:
        """Per-frame states for a speech; frame i is shown at start_time + i/fps."""

    @abstractmethod
    def frame(self, state: Any, index: int = 0) -> OracleFrame:
        """Render one state exactly."""

    def render_frames(self, speech: Speech, fps: float = VIDEO_FPS, start_time: float = 0.0,
                      n_frames: int | None = None) -> Iterator[OracleFrame]:
        """Frames of the subject saying `speech` (lazy: one frame in memory at a time)."""
        for i, state in enumerate(self.states(speech, fps, start_time, n_frames)):
            yield self.frame(state, i)


def speech_tracks(speech: Speech, motion: HeadMotion, fps: float, start_time: float,
                  n_frames: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(times, mouth opening, mouth rounding, blinks) per frame of a speech: frame i at
    start_time + i/fps, the mouth following the speech from its start, the blinks the
    motion's at absolute time. n_frames defaults to the speech's duration."""
    if fps <= 0:
        raise InvalidInput(f"fps must be positive, got {fps}")
    if n_frames is None:
        n_frames = max(1, int(np.floor(speech.audio.duration * fps + 1e-6)))
    local = np.arange(n_frames) / fps
    opening, rounding = mouth_track(speech_units(speech), local)
    times = start_time + local
    return times, opening, rounding, motion.blink(times)


class OracleSubject(SpeakingSubject):
    """A seeded procedural head. `render_frames(speech)` yields exact frames for any speech."""

    def __init__(self, size: int = 256, seed: int = 0) -> None:
        if size < 32 or size % 2:
            raise InvalidInput(f"oracle size must be an even number ≥ 32, got {size}")
        self.size = size
        self.seed = seed
        self.renderer = OracleRenderer(size, seed)
        self._motion = HeadMotion(seed)

    # -- camera ---------------------------------------------------------------------------
    @property
    def focal(self) -> float:
        return self.renderer.camera.focal

    @property
    def cx(self) -> float:
        return self.renderer.camera.cx

    @property
    def cy(self) -> float:
        return self.renderer.camera.cy

    @property
    def background(self) -> np.ndarray:
        """The static background (bc.jpg), uint8 [S,S,3]."""
        return self.renderer.background

    # -- tracks -----------------------------------------------------------------------------
    def states(self, speech: Speech, fps: float = VIDEO_FPS, start_time: float = 0.0,
               n_frames: int | None = None) -> list[FaceState]:
        times, opening, rounding, blinks = speech_tracks(speech, self._motion, fps, start_time, n_frames)
        poses = self._motion.head_to_body(times)
        return [FaceState(float(o), float(r), float(b), h) for o, r, b, h in zip(opening, rounding, blinks, poses)]

    def frame(self, state: FaceState, index: int = 0) -> OracleFrame:
        """Render one state exactly."""
        image, labels, torso, interior = self.renderer.render(state)
        c2w = self.renderer.head_c2w(state).copy()
        c2w[:3, 3] /= POSE_SCALE
        meta = FrameMeta(index, c2w, state.blink, state.open, state.round, self.renderer.landmarks(state))
        return OracleFrame(meta, image, labels, torso, interior)

    def ground_truth(self, speech: Speech, fps: float = VIDEO_FPS) -> GroundTruth:
        """The exact video and tracks for `speech` from t = 0 (what `eval` compares against)."""
        frames = list(self.render_frames(speech, fps))
        m = [f.meta for f in frames]
        return GroundTruth(
            images=np.stack([f.image for f in frames]),
            c2w=np.stack([x.c2w for x in m]).astype(np.float32),
            landmarks=np.stack([x.landmarks for x in m]).astype(np.float32),
            blink=np.array([x.blink for x in m], np.float32),
            mouth_open=np.array([x.mouth_open for x in m], np.float32),
            mouth_round=np.array([x.mouth_round for x in m], np.float32),
            inner_lip_gap=np.array([x.inner_lip_gap for x in m], np.float32),
            mouth_interior=np.array([f.mouth_interior.sum() for f in frames], np.int32),
            background=np.stack([f.labels == 0 for f in frames]),
            fps=float(fps),
        )


class HeadMotion:
    """Smooth random head motion and blinks as functions of absolute time (seeded)."""

    # amplitude per degree of freedom: pitch, yaw, roll (radians), tx, ty, tz (scene units)
    _AMP = np.array([0.05, 0.08, 0.03, 0.025, 0.012, 0.02])

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 17])
        k = 3  # sinusoids per degree of freedom, periods 3–20 s
        self.freq = rng.uniform(0.05, 0.33, size=(6, k))
        self.phase = rng.uniform(0, 2 * np.pi, size=(6, k))
        self.weight = rng.uniform(0.5, 1.0, size=(6, k))
        self.weight /= self.weight.sum(1, keepdims=True)
        self.blink_rng_seed = [seed, 29]

    def params(self, times: np.ndarray) -> np.ndarray:
        """[T,6] pose parameters."""
        waves = np.sin(2 * np.pi * self.freq[None] * times[:, None, None] + self.phase[None])
        return (waves * self.weight[None]).sum(-1) * self._AMP[None]

    def head_to_body(self, times: np.ndarray) -> list[np.ndarray]:
        out = []
        for pitch, yaw, roll, tx, ty, tz in self.params(np.asarray(times, np.float64)):
            r = rc.rotation_xyz(pitch, yaw, roll)
            m = np.eye(4)
            m[:3, :3] = r
            m[:3, 3] = PIVOT - r @ PIVOT + (tx, ty, tz)
            out.append(m.astype(np.float32))
        return out

    def blink(self, times: np.ndarray) -> np.ndarray:
        """Blink closure 0…1: events 2–6 s apart, 80 ms closing, 40 ms shut, 150 ms opening."""
        times = np.asarray(times, np.float64)
        if not len(times):
            return np.zeros(0, np.float32)
        rng = np.random.default_rng(self.blink_rng_seed)
        events = []
        t = rng.uniform(0.5, 3.0)
        while t < times.max() + 1.0:
            events.append(t)
            t += rng.uniform(2.0, 6.0)
        out = np.zeros(len(times))
        for e in events:
            dt = times - e
            close = np.clip((dt + 0.08) / 0.08, 0, 1)
            open_ = np.clip(1 - (dt - 0.04) / 0.15, 0, 1)
            shape = np.minimum(close, open_)
            out = np.maximum(out, shape * shape * (3 - 2 * shape))
        return out.astype(np.float32)
