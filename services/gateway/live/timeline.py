"""One clock for a live session's audio and video, and what plays on it.

Media time is counted in 48 kHz audio samples and cut into slots of one video frame (1920
samples at 25 fps). Each slot is decided once, whichever track asks first, and holds one
image and exactly the audio it spans, so the two tracks cannot drift apart: video pts are
derived from the slot's first sample. A slot is

- `idle`: the next frame of the idle loop and silence (also while an utterance waits for
  its first frames),
- `speaking`: the utterance's next frame and its audio,
- `held`: mid-utterance, the next frame is not rendered yet (rendering slower than real
  time): the last image repeats over silence, and the utterance resumes where it was — audio
  and video pause together instead of drifting apart. It resumes once a cushion of frames
  (a second's worth) is rendered, so a slow render gives a few longer pauses rather than a
  stutter at every frame; after an utterance that rendered slower than real time, the next
  one starts with that cushion too.

The head pose runs on without a jump: speech renders from the pose-track phase where the
idle loop is when its render begins (`anchor`), and the idle loop holds its frame until
that speech plays; after speech, the idle loop resumes at the loop frame whose track frame
(and direction) is nearest the one the speech would have shown next.

Used from the event loop only (the render threads talk to `Utterance`s).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.common.types import track_position
from services.gateway.live.idle import IdleLoop
from services.gateway.live.utterance import END, LIVE_SAMPLE_RATE, Utterance

#: RTP clock of video.
VIDEO_CLOCK_RATE = 90_000
#: Slots kept after they were decided (a track that falls behind reads them from here).
_KEEP = 64


@dataclass(frozen=True)
class Slot:
    index: int
    image: np.ndarray      # uint8 [H, W, 3]
    audio: np.ndarray      # float32 [samples_per_frame] at 48 kHz
    state: str             # "idle" | "speaking" | "held"
    utterance: int | None  # the utterance it belongs to (speaking, held)


class Timeline:
    def __init__(self, idle: IdleLoop, fps: float,
                 on_state: Callable[[str, Utterance | None, "Slot"], None] | None = None,
                 cushion_frames: int | None = None) -> None:
        """`on_state(state, utterance, slot)` when the state changes to "idle" or "speaking"
        (or to the next utterance): `slot` is its first slot."""
        spf = LIVE_SAMPLE_RATE / fps
        if spf != int(spf):
            raise ValueError(f"{fps} fps does not divide {LIVE_SAMPLE_RATE} Hz into whole samples")
        self.fps = fps
        self.samples_per_frame = int(spf)
        self.idle = idle
        self.on_state = on_state
        self._slots: dict[int, Slot] = {}
        self._next = 0
        self._idle_i = 0
        self._queue: deque[Utterance] = deque()
        self._current: Utterance | None = None
        self._started = False  # the current utterance has had a frame
        self._holding = False  # it stalled: it waits for a cushion of frames
        self._slow = False     # the last utterance rendered slower than real time
        self.cushion_frames = cushion_frames if cushion_frames is not None else int(round(fps))
        self._state = "idle"
        self._image: np.ndarray | None = None
        self._last_utterance: int | None = None
        self._resume_phase: int | None = None  # pose phase the last speaking slot showed
        self.counts = {"idle": 0, "speaking": 0, "held": 0}

    # ---- what is queued ---------------------------------------------------------------------
    def enqueue(self, utterance: Utterance) -> None:
        self._queue.append(utterance)

    def interrupt(self) -> list[Utterance]:
        """Stop the current utterance and drop the queued ones; the next slot is idle."""
        dropped = ([self._current] if self._current is not None else []) + list(self._queue)
        self._queue.clear()
        self._current = None
        for u in dropped:
            u.cancel()
        return dropped

    @property
    def pending(self) -> int:
        return len(self._queue) + (self._current is not None)

    @property
    def state(self) -> str:
        return self._state

    def anchor(self, utterance: Utterance) -> int:
        """The pose phase `utterance` (queued, its render starting now) speaks from: on from
        the utterance before it, or the idle loop's next frame, which the idle loop then
        holds until the utterance plays or ends."""
        order = ([self._current] if self._current is not None else []) + list(self._queue)
        ahead = order[:order.index(utterance)] if utterance in order else order
        ahead = [u for u in ahead if not u.cancelled.is_set() and u.req.pose_start is not None]
        if ahead:
            return ahead[-1].req.pose_start + ahead[-1].rendered
        return self.idle.phase(self._idle_i)

    def _holding_pose(self) -> bool:
        """Whether the next utterance renders from a pose and has not played yet."""
        u = self._current if self._current is not None else (self._queue[0] if self._queue else None)
        return u is not None and u.req.pose_start is not None and not u.cancelled.is_set() \
            and not (u is self._current and self._started)

    def _track(self, phase: int) -> tuple[int, int]:
        """(track frame, direction ±1) at a pose phase of the frames the idle loop shows (and
        speech walks: `pose_span`)."""
        frames = self.idle.subject.pose_frames
        n = min(self.idle.n_frames, frames) if frames > 0 else self.idle.n_frames
        here, after = int(track_position(phase, n)), int(track_position(phase + 1, n))
        return here, (1 if after >= here else -1)

    def _resume_at(self, phase: int) -> int:
        """The idle loop frame whose track frame is nearest `phase`'s, the same way round."""
        want, way = self._track(phase)
        best, best_score = 0, None
        for i in range(self.idle.period):
            at, d = self._track(self.idle.phase(i))
            score = (abs(at - want), d != way)
            if best_score is None or score < best_score:
                best, best_score = i, score
        return best

    # ---- the clock ------------------------------------------------------------------------
    def video_pts(self, index: int) -> int:
        """The 90 kHz pts of slot `index`, from its first audio sample."""
        return index * self.samples_per_frame * VIDEO_CLOCK_RATE // LIVE_SAMPLE_RATE

    def slot(self, index: int) -> Slot:
        """Slot `index`, deciding every slot up to it that is not decided yet."""
        while self._next <= index:
            s = self._decide(self._next)
            self._slots[s.index] = s
            self._slots.pop(s.index - _KEEP, None)
            self._next += 1
        found = self._slots.get(index)
        if found is None:  # older than what is kept: a track this far behind skips ahead anyway
            found = self._slots[min(self._slots)]
        return found

    def _ready(self, u: Utterance) -> bool:
        """Whether `u` may play its next frame now (once rendered through: always)."""
        if u.done:
            return True
        cushion = self._holding or (not self._started and self._slow)
        return u.buffered >= (self.cushion_frames if cushion else 1)

    def _decide(self, index: int) -> Slot:
        spf = self.samples_per_frame
        while True:
            if self._current is None and self._queue:
                self._current, self._started, self._holding = self._queue.popleft(), False, False
            u = self._current
            if u is None:
                break
            got = u.take() if self._ready(u) else None
            if got is END:
                rate = u.render_fps()
                if rate is not None and u.error is None and not u.cancelled.is_set():
                    self._slow = rate < 0.9 * self.fps
                self._current = None
                continue
            if got is None:
                if not self._started:  # still waiting for its first frames: keep idling
                    break
                self._holding = True
                return self._emit(Slot(index, self._image, np.zeros(spf, np.float32), "held", u.id))
            image, audio = got  # type: ignore[misc]
            self._holding = False
            if u.req.pose_start is not None:
                self._resume_phase = 0 if u.req.static_pose else u.req.pose_start + u.taken - 1
            if not self._started:
                self._started = True
                u.first_frame_at = time.perf_counter()
            return self._emit(Slot(index, image, audio, "speaking", u.id))
        if self._resume_phase is not None:
            self._idle_i = self._resume_at(self._resume_phase + 1)
            self._resume_phase = None
        if self._holding_pose():
            image = self.idle.frame(self._idle_i - 1)
        else:
            image = self.idle.frame(self._idle_i)
            self._idle_i += 1
        return self._emit(Slot(index, image, np.zeros(spf, np.float32), "idle", None))

    def _emit(self, slot: Slot) -> Slot:
        self._image = slot.image
        self.counts[slot.state] += 1
        state = "idle" if slot.state == "idle" else "speaking"
        if state != self._state or (state == "speaking" and slot.utterance != self._last_utterance):
            self._state = state
            if self.on_state is not None:
                self.on_state(state, self._current if state == "speaking" else None, slot)
        self._last_utterance = slot.utterance
        return slot
