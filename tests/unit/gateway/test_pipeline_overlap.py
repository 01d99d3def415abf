"""A new pipeline speaks while its subject opens and its models load: that overlap changes
neither what it renders nor which error a bad request gets."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from services.common.errors import NotFound
from services.common.types import AudioClip
from services.common.video import VideoSpec
from services.gateway.pipeline import Pipeline
from services.gateway.request import SpeakRequest


class FrameSink:
    """Keeps every frame and sample the pipeline writes."""

    first_media_at = None

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.audio: list[np.ndarray] = []
        self.spec: VideoSpec | None = None

    def open(self, spec: VideoSpec) -> None:
        self.spec = spec

    def write(self, frames: np.ndarray, audio: np.ndarray) -> None:
        self.frames.append(frames.copy())
        self.audio.append(audio.copy())

    def close(self, complete: bool) -> None:
        pass


def test_a_cold_pipeline_renders_what_a_warm_one_renders_for_the_same_speech():
    """Cold: voice, subject and content model all load at once, the TTS first. Piper's
    samples vary from call to call, so the warm pipeline is given the cold run's speech."""
    from services.tts.service import TtsService

    pipeline = Pipeline(tts=TtsService())
    cold = FrameSink()
    pipeline.run(SpeakRequest(text="Hello there.", subject="demo", seed=3), cold)
    speech = AudioClip(np.concatenate(cold.audio), cold.spec.sample_rate)
    warm = FrameSink()
    pipeline.run(SpeakRequest(audio=speech, subject="demo", seed=3), warm)
    assert len(cold.frames[0]) < len(np.concatenate(cold.frames)) > 10
    np.testing.assert_array_equal(np.concatenate(warm.frames), np.concatenate(cold.frames))
    np.testing.assert_array_equal(np.concatenate(warm.audio), np.concatenate(cold.audio))


def _speech_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "tts-prefetch"]


def test_a_bad_subject_is_the_first_error_and_stops_the_speech(tts):
    before = len(_speech_threads())
    with pytest.raises(NotFound, match="nobody"):
        Pipeline(tts=tts).run(SpeakRequest(text="Hello there. How are you?", subject="nobody", voice="nope"),
                              FrameSink())
    deadline = time.monotonic() + 20
    while len(_speech_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_speech_threads()) == before  # the speech it started stopped after its sentence


def test_a_bad_voice_is_raised_once_the_subject_is_open(tts):
    with pytest.raises(NotFound, match="unknown voice 'nope'"):
        Pipeline(tts=tts).run(SpeakRequest(text="Hello there.", subject="demo", voice="nope"), FrameSink())


@pytest.mark.parametrize("args, says", [(["--subject", "nobody"], "nobody"), (["--voice", "nope"], "nope")])
def test_say_with_a_bad_name_prints_one_line_and_exits_2(tmp_path, args, says):
    out = tmp_path / "x.mp4"
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "services.cli", "say", "Hello there.", "--out", str(out), *args],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists() and not list(tmp_path.iterdir())
    assert time.monotonic() - t0 < 60


class WatchedStore:
    """The local store, noting whether the request's speech had started when its subject was fetched."""

    def __init__(self) -> None:
        from services.common.subject_store import LocalSubjectStore

        self.store = LocalSubjectStore()
        self.speaking_at_load: list[bool] = []

    def load(self, subject_id: str):
        self.speaking_at_load.append(bool(_speech_threads()))
        return self.store.load(subject_id)


def test_the_speech_starts_before_the_subject_is_fetched(tts):
    source = WatchedStore()
    Pipeline(tts=tts, subjects=source).run(SpeakRequest(text="Hi.", subject="demo"), FrameSink())
    assert source.speaking_at_load == [True]
