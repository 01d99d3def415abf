"""A talking video read with PyAV: upright frames at a fixed rate and its audio at 16 kHz.

Any container and codec FFmpeg reads (mp4/mov/mkv/webm, H.264/HEVC/VP9…). Frames are
turned upright by the display matrix (phones store portrait video sideways) and picked
by timestamp, so a 30, 50 or variable-rate source becomes `fps` frames per second of
the same wall-clock time. `probe` rejects what cannot make a subject before any work.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.common.audio import resample
from services.common.errors import InvalidInput
from services.common.types import ANALYSIS_SAMPLE_RATE, AudioClip

#: Shortest video that can make a subject (1–5 minutes is what the papers use).
MIN_SECONDS = 10.0
#: FFmpeg reads a picture file with the image2 demuxer or one named `<codec>_pipe` (these are
#: refused as still images); an animation that decodes to several frames counts as video.
_IMAGE_FORMATS = ("image2",)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  #: upright (after the display rotation)
    height: int
    rotation: int  #: degrees counter-clockwise the stored picture is turned for display
    source_fps: float
    duration: float  #: seconds of video
    codec: str
    container: str
    audio_codec: str
    audio_rate: int

    def n_frames(self, fps: float) -> int:
        """Frames at `fps` over the video's duration."""
        return int(np.floor(self.duration * fps + 1e-6))


def _open(path: Path):
    import av

    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        reason = exc.strerror or exc
        raise InvalidInput(f"could not decode {path.name}: not a video FFmpeg can read ({reason}); give an mp4, "
                           "mov, mkv or webm file") from exc


def probe(path: str | Path, min_seconds: float = MIN_SECONDS) -> VideoInfo:
    """Check that `path` is a decodable video (not a still picture) with an audio track and at
    least `min_seconds`; one InvalidInput naming the problem otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise InvalidInput(f"{path.name} is empty (0 bytes)")
    with _open(path) as container:
        fmt = container.format.name
        if not container.streams.video:
            raise InvalidInput(f"{path.name} has no video stream (format {fmt}); give a video of the person talking")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if fmt.endswith("_pipe") or fmt.split(",")[0] in _IMAGE_FORMATS:
            raise InvalidInput(f"{path.name} is a still image ({codec}), not a video: prepare needs "
                               f"{min_seconds:g} s or more of the person talking, with sound")
        first, rotation, n_decoded = None, 0, 0
        try:
            for frame in container.decode(stream):
                if first is None:
                    first, rotation = frame, _rotation(frame, stream)
                n_decoded += 1
                if n_decoded > 1:
                    break
        except Exception as exc:  # av raises many kinds of decode errors
            raise InvalidInput(f"could not decode {path.name}: its {codec} video is damaged ({exc})") from exc
        if first is None:
            raise InvalidInput(f"{path.name} has a video stream but no decodable frames")
        if n_decoded == 1:
            raise InvalidInput(f"{path.name} holds a single picture, not a video: prepare needs "
                               f"{min_seconds:g} s or more of the person talking, with sound")
        duration = _duration(container, stream)
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        if not container.streams.audio:
            raise InvalidInput(f"{path.name} has no audio track: the subject learns its mouth from the "
                               "video's own speech, so give a video with sound")
        audio = container.streams.audio[0]
        audio_codec, audio_rate = audio.codec_context.name, int(audio.codec_context.sample_rate or 0)
    if duration is None:
        duration = _decoded_duration(path)
    if duration < min_seconds:
        raise InvalidInput(f"{path.name} is {duration:.1f} s long; prepare needs at least {min_seconds:g} s "
                           "of the person talking (1–5 minutes gives the best subject)")
    return VideoInfo(path, width, height, rotation, rate, duration, codec, fmt, audio_codec, audio_rate)


def _rotation(frame, stream) -> int:
    """Counter-clockwise display rotation in degrees, a multiple of 90 in [0, 360)."""
    deg = frame.rotation
    if not deg:  # files whose rotation lives only in the old `rotate` tag (clockwise)
        try:
            deg = -int(float(stream.metadata.get("rotate", 0)))
        except ValueError:
            deg = 0
    return int(round(deg / 90.0)) % 4 * 90


def _duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return None


def _decoded_duration(path: Path) -> float:
    """Duration from the last frame's timestamp (for containers without one, e.g. some webm)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        start, last, step = None, 0.0, 0.0
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            t = float(packet.pts * stream.time_base)
            start = t if start is None else min(start, t)
            last = max(last, t)
            if packet.duration:
                step = float(packet.duration * stream.time_base)
        return last - (start or 0.0) + step


def _selected(info: VideoInfo, fps: float) -> Iterator[tuple[int, object]]:
    """(i, source frame) for every output frame i: the source frame nearest to time i/fps."""
    n_out = info.n_frames(fps)
    with _open(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        i, prev, prev_t = 0, None, 0.0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base) - start
            # the previous frame serves the output times nearer to it than to this one
            while prev is not None and i < n_out and i / fps <= (prev_t + t) / 2:
                yield i, prev
                i += 1
            if i >= n_out:
                return
            prev, prev_t = frame, t
        while prev is not None and i < n_out:
            yield i, prev
            i += 1


def frames(info: VideoInfo, fps: float, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Upright uint8 RGB frames [H,W,3] at `fps`: frame i shows the source frame nearest to
    time i/fps. `max_side` scales the picture down first (landmarks need no more)."""
    size = decoded_size(info, max_side)
    for _, frame in _selected(info, fps):
        yield _picture(frame, info.rotation, size)


def frames_at(info: VideoInfo, fps: float, indices: set[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(i, frame) for the output frames in `indices` only (the others are decoded, not converted)."""
    size = decoded_size(info, None)
    for i, frame in _selected(info, fps):
        if i in indices:
            yield i, _picture(frame, info.rotation, size)


def decoded_size(info: VideoInfo, max_side: int | None) -> tuple[int, int]:
    """(width, height) to decode at, before rotation, both even."""
    w, h = (info.height, info.width) if info.rotation % 180 else (info.width, info.height)
    if max_side and max(w, h) > max_side:
        s = max_side / max(w, h)
        w, h = max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)
    return w, h


def _picture(frame, rotation: int, size: tuple[int, int]) -> np.ndarray:
    if (frame.width, frame.height) == size:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(width=size[0], height=size[1], format="rgb24")
    return np.ascontiguousarray(np.rot90(rgb, rotation // 90)) if rotation else rgb


def audio(info: VideoInfo, n_frames: int, fps: float) -> AudioClip:
    """The first audio track as 16 kHz mono, aligned to the video's start and cut (or padded
    with silence) to exactly `n_frames / fps` seconds."""
    import av

    with _open(info.path) as container:
        stream = container.streams.audio[0]
        video = container.streams.video[0]
        rate = stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts: list[np.ndarray] = []
        first_t = None
        try:
            for frame in container.decode(stream):
                if first_t is None and frame.pts is not None:
                    first_t = float(frame.pts * stream.time_base)
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            raise InvalidInput(f"could not decode the audio track of {info.path.name} ({exc})") from exc
        v0 = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
    if not parts:
        raise InvalidInput(f"{info.path.name} has an audio track without any decodable sound")
    samples = np.concatenate(parts).astype(np.float32)
    # the audio may start before or after the first video frame
    offset = int(round(((first_t if first_t is not None else v0) - v0) * rate))
    samples = np.pad(samples, (offset, 0)) if offset > 0 else samples[-offset:]
    samples = resample(samples, rate, ANALYSIS_SAMPLE_RATE)
    n = int(round(n_frames / fps * ANALYSIS_SAMPLE_RATE))
    samples = np.pad(samples, (0, max(0, n - len(samples))))[:n]
    if not np.all(np.isfinite(samples)):
        raise InvalidInput(f"the audio track of {info.path.name} decodes to non-finite samples")
    if float(np.sqrt(np.mean(samples ** 2))) < 1e-4:
        raise InvalidInput(f"the audio track of {info.path.name} is silent: the subject learns its mouth "
                           "from the video's own speech")
    return AudioClip(np.clip(samples, -1.0, 1.0), ANALYSIS_SAMPLE_RATE)
