"""Video clips for the tests of `subject prepare` and of the eval on real datasets, written
with PyAV: cuts of the real clips in ../shared/data/real (skipped when absent) and synthetic
pictures with a known timeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from services.common.paths import real_media_dir

LIEU = real_media_dir() / "video" / "lieu_address_60s_256.mp4"
OBAMA = real_media_dir() / "video" / "obama_weekly_address_20s.mp4"


#: Encoder options that keep test clips quick to write.
_FAST = {"libx264": {"preset": "ultrafast", "crf": "18"}, "libx265": {"preset": "ultrafast", "crf": "20"},
         "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "30", "b": "0"}}


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: int, audio: np.ndarray | None = None,
               sample_rate: int = 16_000, rotation: int = 0, codec: str = "libx264",
               audio_codec: str = "aac") -> Path:
    """A video of uint8 RGB frames (+ a mono audio track when `audio` is given) in the
    container its suffix names; `rotation` sets the display matrix (degrees counter-clockwise)."""
    import av

    with av.open(str(path), "w") as out:
        video = None
        for img in frames:
            if video is None:
                video = out.add_stream(codec, rate=fps)
                video.height, video.width = img.shape[:2]
                video.pix_fmt = "yuv420p"
                video.options = _FAST.get(codec, {})
                if rotation:
                    video.set_display_rotation(rotation)
                if audio is not None:
                    sound = out.add_stream(audio_codec, rate=sample_rate)
                    sound.layout = "mono"
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            step = sound.codec_context.frame_size or 1024
            fmt = sound.codec_context.format.name  # aac takes planar floats, libopus 16-bit integers
            for s in range(0, len(audio), step):
                chunk = np.zeros(step, np.float32)
                chunk[:len(audio[s:s + step])] = audio[s:s + step]
                if fmt.startswith("s16"):
                    chunk = (chunk * 32767).astype(np.int16)
                frame = av.AudioFrame.from_ndarray(chunk[None], format=fmt, layout="mono")
                frame.sample_rate = sample_rate
                for packet in sound.encode(frame):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def read_clip(path: Path, seconds: float) -> tuple[list[np.ndarray], np.ndarray, int]:
    """The first `seconds` of a clip: (RGB frames, mono 16 kHz audio, fps)."""
    import av

    from services.common.audio import resample

    with av.open(str(path)) as src:
        stream = src.streams.video[0]
        fps = int(round(float(stream.average_rate)))
        frames = []
        for frame in src.decode(stream):
            if len(frames) >= round(seconds * fps):
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    with av.open(str(path)) as src:
        rate = src.streams.audio[0].codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [o.to_ndarray().reshape(-1) for f in src.decode(audio=0) for o in resampler.resample(f)]
    audio = resample(np.concatenate(parts), rate, 16_000)[: int(seconds * 16_000)]
    return frames, audio, fps


@pytest.fixture(scope="session")
def real_clip() -> Callable[[float], tuple[list[np.ndarray], np.ndarray, int]]:
    """`real_clip(seconds)` → the first seconds of the 256² real clip (frames, audio, fps)."""
    if not LIEU.is_file():
        pytest.skip(f"real media not found: {LIEU.parent} (../shared/data/real beside the checkout)")
    cache: dict[float, tuple] = {}

    def get(seconds: float) -> tuple[list[np.ndarray], np.ndarray, int]:
        if seconds not in cache:
            cache[seconds] = read_clip(LIEU, seconds)
        return cache[seconds]

    return get


@pytest.fixture(scope="session")
def preprocess_extra() -> None:
    """Skip unless the preprocess extra (MediaPipe + OpenCV) is installed."""
    pytest.importorskip("cv2", reason="needs the preprocess extra (opencv-python-headless)")
    pytest.importorskip("mediapipe", reason="needs mediapipe (pip install --no-deps mediapipe==0.10.14)")


@pytest.fixture(scope="session")
def clip_writer() -> Callable[..., Path]:
    """`write_clip` (above) for test modules, which cannot import conftest under importlib mode."""
    return write_clip
