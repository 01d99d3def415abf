"""The idle loop of a subject: a few seconds of silence through its audio encoder and
renderer (the same stages as speech, so the fast render path where the subject has one) —
mouth closed, natural blinks, the head moving along its pose track — played forwards then
backwards so the loop has no seam. Rendered once per subject version, shared by its sessions.
"""

from __future__ import annotations

import threading

import numpy as np

from services.common.types import ANALYSIS_SAMPLE_RATE, AudioClip
from services.gateway.stages import Stages, SubjectInfo

#: Seconds of idle motion rendered (the loop lasts twice as long: forwards, then backwards).
IDLE_SECONDS = 4.0


class IdleLoop:
    def __init__(self, subject: SubjectInfo, n_frames: int) -> None:
        self.subject = subject
        self.n_frames = n_frames
        self.frames: list[np.ndarray] = []  # appended by the render thread (list.append is atomic)
        self.complete = threading.Event()
        self.first = threading.Event()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop rendering (at the next frame batch) and wait for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _index(self, i: int) -> tuple[int, bool]:
        """(rendered frame, played backwards) of loop frame i."""
        n = len(self.frames)
        if not self.complete.is_set() or n < 2:
            return min(max(i, 0), max(n - 1, 0)), False
        period = 2 * (n - 1)
        k = i % period
        return (k, False) if k < n else (period - k, True)

    def frame(self, i: int) -> np.ndarray:
        """Idle frame number i of the loop (call after `first` is set). While the loop still
        renders, frames play in order and the newest repeats until the next exists."""
        return self.frames[self._index(i)[0]]

    def phase(self, i: int) -> int:
        """The pose-track phase (renderer.motion.track_position) of loop frame i: rendered
        frame j was phase j of the track, walked backwards it is phase -j."""
        j, backwards = self._index(i)
        return -j if backwards else j

    @property
    def period(self) -> int:
        """Loop frames before the loop repeats (once rendered through)."""
        n = len(self.frames)
        return 2 * (n - 1) if self.complete.is_set() and n >= 2 else 1


def render_idle(stages: Stages, subject: SubjectInfo, seconds: float = IDLE_SECONDS, seed: int = 7,
                frames_per_batch: int = 8) -> IdleLoop:
    """Start rendering a subject's idle loop in a thread; frames appear as batches finish."""
    n = max(2, int(round(seconds * subject.fps)))
    loop = IdleLoop(subject, n)

    def work() -> None:
        try:
            silence = AudioClip(np.zeros(int(round(n * ANALYSIS_SAMPLE_RATE / subject.fps)), np.float32),
                                ANALYSIS_SAMPLE_RATE)
            codes = stages.encode(subject, silence, "en")
            # poses of the track's first n frames only: speech walks the same span (Timeline.anchor)
            batches = stages.render(subject, codes, static_pose=False, seed=seed, start=0,
                                    frames_per_batch=frames_per_batch, pose_span=n)
            try:
                for batch in batches:
                    loop.frames.extend(np.asarray(batch))
                    loop.first.set()
                    if loop._stop.is_set():
                        break
            finally:
                close = getattr(batches, "close", None)
                if close is not None:  # a remote stream stops its replica here
                    close()
        except BaseException as exc:  # noqa: BLE001 - the sessions waiting on it report it
            loop.error = exc
        finally:
            loop.complete.set()
            loop.first.set()

    loop._thread = threading.Thread(target=work, daemon=True, name=f"idle-{subject.id}")
    loop._thread.start()
    return loop
